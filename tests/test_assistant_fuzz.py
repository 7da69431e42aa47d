"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), against a
real uvicorn server over a copy of the shipped index: no 5xx, and every response - refusals
included - is one the schema declares, in the declared shape.

Bounded: a fixed seed and a few dozen generated cases per operation. POST /api/v1/admin/reindex
is left out (each call embeds the whole corpus, about a minute); tests/test_assistant_faults.py
covers it. The chat webhooks are not in the schema (raw platform bodies; their own tests fuzz
the hostile cases).
"""

from __future__ import annotations


import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import LiveServer, private_copy

KEY = "fuzz-staff-key-3d90"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text_body(ctx, value):
    """Admin ingest bodies are plain text (JSON lines or CSV)."""
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": str(value).encode("utf-8", "surrogatepass")}


@pytest.fixture(scope="module")
def fuzz_server(shipped_data_dir, encoder, tmp_path_factory):
    """Its own copy of the data: fuzzed admin calls may delete or add records there."""
    from assistant.app import create_app
    from assistant.settings import Settings
    data_dir = tmp_path_factory.mktemp("fuzz") / "var"
    catalog = private_copy(shipped_data_dir, data_dir, encoder)
    with LiveServer(create_app(Settings(data_dir=data_dir, admin_token=KEY), catalog)) as live:
        yield live
    catalog.close()


def app_schema() -> dict:
    """The schema the app serves at /openapi.json, built without starting it (collection needs it
    before any fixture runs; schemathesis's lazy fixture loader does not work with pytest 9)."""
    from assistant.app import create_app
    from assistant.settings import Settings

    return create_app(Settings(admin_token=KEY, telegram_token=None, wechat_token=None)).openapi()


schema = schemathesis.openapi.from_dict(app_schema()).exclude(path="/api/v1/admin/reindex")


def test_the_served_schema_is_the_fuzzed_one(fuzz_server):
    import httpx

    assert httpx.get(fuzz_server.url + "/openapi.json", timeout=30).json() == app_schema()


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, fuzz_server):
    case.call_and_validate(base_url=fuzz_server.url, headers=AUTH, checks=CHECKS, timeout=60)
