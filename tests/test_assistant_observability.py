"""Request ids, JSON log lines without user texts at INFO, and Prometheus metrics that move,
on a real uvicorn server in this process (so its log records can be captured)."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import LiveServer

SECRET_QUERY = "segredo-7731 fornecedores de cortiça"
SECRET_CHAT = "mensagem-8842 fabricantes de moldes na China"


@pytest.fixture(scope="module")
def logs():
    """Everything logged while the module runs, formatted as the service formats it."""
    from assistant._observability import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(["a-secret-token-value"]))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    handler.stream = stream
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


def lines(handler) -> list[dict]:
    handler.flush()
    return [json.loads(line) for line in handler.stream.getvalue().splitlines() if line.strip()]


def request_line(handler, rid: str) -> dict:
    """The access line of one request; the server writes it just after the response went out."""
    deadline = time.time() + 5
    while True:
        found = [x for x in lines(handler) if x.get("request_id") == rid and x["logger"] == "cpc.request"]
        if found or time.time() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.02)


@pytest.fixture(scope="module")
def client(shipped_catalog, tmp_path_factory, logs):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("obs"), admin_token="obs-key")
    with LiveServer(create_app(settings, shipped_catalog)) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def test_one_json_line_per_request_with_its_id_and_no_user_text(client, logs):
    r = client.post("/api/v1/search", json={"query": SECRET_QUERY}, headers={"X-Request-ID": "req-obs-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-obs-1"
    r = client.post("/api/v1/chat", json={"text": SECRET_CHAT}, headers={"X-Request-ID": "req-obs-2"})
    assert r.status_code == 200
    search = request_line(logs, "req-obs-1")
    assert search["level"] == "info" and search["method"] == "POST" and search["route"] == "/api/v1/search"
    assert search["status"] == 200 and search["duration_ms"] > 0 and re.fullmatch(r"[0-9a-f]{12}", search["client"])
    assert search["lang"] == "pt" and search["query_chars"] == len(SECRET_QUERY) and search["results"] > 0
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", search["time"])
    chat = request_line(logs, "req-obs-2")
    assert chat["lang"] == "pt" and chat["text_chars"] == len(SECRET_CHAT) and chat["intent"] == "search"
    server_side = [x for x in lines(logs) if not x["logger"].startswith(("httpx", "httpcore"))]  # not this test's client
    text = json.dumps(server_side, ensure_ascii=False)
    assert "segredo-7731" not in text and "mensagem-8842" not in text
    assert "127.0.0.1" not in text  # addresses only hashed


def test_user_text_only_at_debug(client, logs):
    logging.getLogger("cpc.api").setLevel(logging.DEBUG)
    try:
        client.post("/api/v1/search", json={"query": SECRET_QUERY}, headers={"X-Request-ID": "req-obs-debug"})
    finally:
        logging.getLogger("cpc.api").setLevel(logging.NOTSET)
    debug = [x for x in lines(logs) if x.get("request_id") == "req-obs-debug" and x["level"] == "debug"]
    assert debug and "segredo-7731" in debug[0]["message"]  # the line carries the request id too


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 129, "quote\"d"])
def test_a_missing_or_unusable_request_id_is_replaced(client, logs, given):
    headers = {} if given is None else {"X-Request-ID": given}
    r = client.get("/api/v1/organisations/no-such-org", headers=headers)
    rid = r.headers["x-request-id"]
    assert r.status_code == 404 and re.fullmatch(r"[0-9a-f]{32}", rid)
    line = request_line(logs, rid)
    assert line["route"] == "/api/v1/organisations/{org_id}" and line["status"] == 404


def test_refusals_are_logged_and_unmatched_routes_share_one_label(client, logs):
    r = client.get("/no/such/path/8c1e")
    line = request_line(logs, r.headers["x-request-id"])
    assert line["route"] == "unmatched" and line["status"] == 404
    r = client.post("/api/v1/search", content=b"x" * 70_000, headers={"Content-Type": "application/json"})
    line = request_line(logs, r.headers["x-request-id"])
    assert r.status_code == 413 and line["status"] == 413


def test_formatter_masks_secrets_and_keeps_exceptions():
    from assistant._observability import JsonFormatter

    fmt = JsonFormatter(["123456:TEST-token_abc", "short"])
    try:
        raise ValueError("calling https://api.telegram.org/bot123456:TEST-token_abc/sendMessage")
    except ValueError:
        import sys

        record = logging.LogRecord("httpx", logging.ERROR, __file__, 1, "POST %s", ("bot123456:TEST-token_abc",), sys.exc_info())
    line = json.loads(fmt.format(record))
    assert "TEST-token_abc" not in json.dumps(line) and "bot***" in line["message"] and "ValueError" in line["exc"]


def scrape(client) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", headers={"Authorization": "Bearer obs-key"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_expose_the_series_and_they_move(client):
    before = scrape(client)
    assert value(before, "cpc_index_records") >= 60 and value(before, "cpc_index_vectors") >= value(before, "cpc_index_records")
    assert value(before, "process_resident_memory_bytes") > 10_000_000

    client.post("/api/v1/search", json={"query": "moldes"})
    client.post("/api/v1/search", json={"query": "moldes", "offset": 10})  # a further page: not a new search
    zero = client.post("/api/v1/search", json={"query": "cortiça", "filters": {"country": "CN", "kind": "institution",
                                                                                 "sectors": ["cork"]}})
    assert zero.status_code == 200 and zero.json()["total"] == 0
    client.post("/api/v1/chat", json={"text": "Portuguese cork companies"})
    client.get("/api/v1/organisations/no-such-org")
    after = scrape(client)

    assert value(after, "cpc_searches_total", source="api") - value(before, "cpc_searches_total", source="api") == 2
    assert value(after, "cpc_zero_result_searches_total", source="api") - value(before, "cpc_zero_result_searches_total", source="api") == 1
    assert value(after, "cpc_searches_total", source="assistant") - value(before, "cpc_searches_total", source="assistant") == 1
    search = dict(method="POST", route="/api/v1/search")
    assert value(after, "cpc_http_requests_total", status="200", **search) - value(before, "cpc_http_requests_total", status="200", **search) == 3
    assert value(after, "cpc_http_request_duration_seconds_count", **search) - value(before, "cpc_http_request_duration_seconds_count", **search) == 3
    assert value(after, "cpc_http_request_duration_seconds_bucket", le="+Inf", **search) >= 3
    assert value(after, "cpc_http_requests_total", method="GET", route="/api/v1/organisations/{org_id}", status="404") >= 1
    assert value(after, "cpc_query_encode_seconds_count") - value(before, "cpc_query_encode_seconds_count") >= 3
    assert value(after, "cpc_query_encode_seconds_sum") > value(before, "cpc_query_encode_seconds_sum")
    assert value(after, "cpc_search_seconds_count", source="assistant") >= 1


def test_log_lines_go_to_the_stderr_of_the_moment_not_a_closed_one(monkeypatch):
    """A `cpc` command run in process set up logging on the stderr of that moment (a test's
    capture); once that stream was closed, every later line was lost with a "Logging error"."""
    from assistant._observability import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    try:
        configure_logging("info")
        logging.getLogger("cpc.test").warning("before the swap")
        monkeypatch.setattr(sys, "stderr", second)
        first.close()
        logging.getLogger("cpc.test").warning("after the swap")
        lines = [json.loads(line) for line in second.getvalue().splitlines()]
        assert [line["message"] for line in lines] == ["after the swap"]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
