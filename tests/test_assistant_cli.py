"""The ``cpc`` command line, run as a real process against a data folder."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA


@pytest.fixture
def data_dir(shipped_data_dir, tmp_path):
    target = tmp_path / "var"
    shutil.copytree(shipped_data_dir, target)
    return target


def cpc(*args, data_dir, check=True):
    env = dict(os.environ, CPC_DATA_DIR=str(data_dir))
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"cpc {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_search_json_ranks_chinese_mould_clusters_first(data_dir):
    out = json.loads(cpc("search", "fabricantes de moldes na China", "--json", data_dir=data_dir).stdout)
    assert out["lang"] == "pt"
    top = out["results"][:3]
    assert all(h["country"] == "CN" and h["kind"] == "cluster" and "moulds" in h["sectors"] for h in top), top


def test_search_text_output_and_filters(data_dir):
    out = cpc("search", "cork", "--country", "PT", "--kind", "company", "--limit", "2", data_dir=data_dir).stdout
    assert "Corticeira Amorim" in out and "PT" in out
    bad = cpc("search", "cork", "--country", "FR", data_dir=data_dir, check=False)
    assert bad.returncode == 2 and "unknown country 'FR'" in bad.stderr


def test_ingest_is_all_or_nothing(data_dir, tmp_path):
    good = (DATA / "fictional.jsonl").read_text(encoding="utf-8").splitlines()
    bad_line = json.dumps({"id": "test-bad", "kind": "cluster", "name": "X", "country": "Portugal", "description": "d"})
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(good[:2] + [bad_line]) + "\n", encoding="utf-8")
    proc = cpc("ingest", str(path), data_dir=data_dir, check=False)
    assert proc.returncode == 2
    assert f"{path}:3: country:" in proc.stderr
    assert "test-mould-works" not in cpc("search", "测试模具厂", "--json", "--limit", "3", data_dir=data_dir).stdout

    proc = cpc("ingest", str(path), "--skip-invalid", data_dir=data_dir)
    assert "imported 2 record(s); skipped 1" in proc.stdout and f"{path}:3: country" in proc.stderr
    out = json.loads(cpc("search", "测试模具厂", "--json", "--limit", "1", data_dir=data_dir).stdout)
    assert out["results"][0]["id"] == "test-mould-works"


def test_ingest_csv_then_delete(data_dir, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(
        "id,kind,name,country,region,sectors,lang,description,name_zh,description_zh\n"
        "test-csv-org,institution,Instituto de Teste,PT,Centro,moldes,pt,Um instituto fictício de teste de moldes.,测试研究院,一个虚构的模具测试研究院。\n",
        encoding="utf-8",
    )
    assert "imported 1" in cpc("ingest", str(path), data_dir=data_dir).stdout
    out = json.loads(cpc("search", "测试研究院", "--json", "--limit", "1", data_dir=data_dir).stdout)
    assert out["results"][0]["id"] == "test-csv-org" and out["results"][0]["name"] == "测试研究院"
    assert "deleted 1" in cpc("delete", "test-csv-org", data_dir=data_dir).stdout
    out = json.loads(cpc("search", "测试研究院", "--json", "--limit", "5", data_dir=data_dir).stdout)
    assert "test-csv-org" not in [h["id"] for h in out["results"]]


def test_index_build_shows_progress(tmp_path):
    proc = cpc("index", "build", "--corpus", str(DATA / "fictional.jsonl"), data_dir=tmp_path / "fresh")
    assert "built index: 6 records" in proc.stdout
    assert "embedding corpus" in proc.stderr and "100%" in proc.stderr
    assert (tmp_path / "fresh" / "index" / "CURRENT").exists()


def test_search_explain_and_match(data_dir):
    out = cpc("search", "We are a Portuguese olive oil producer looking for food importers in China", "--explain",
              data_dir=data_dir).stdout
    assert out.startswith("understood: ") and '"asker"' in out and "why: " in out
    typed = cpc("search", "fornecedores de cortica em Portgual", "--explain", data_dir=data_dir).stdout
    assert "normalised: cortica -> cortiça (accents); Portgual -> Portugal (typo)" in typed
    data = json.loads(cpc("match", "pt-apcor", "--lang", "zh", "--json", data_dir=data_dir).stdout)
    assert data["organisation"] == "pt-apcor" and data["lang"] == "zh"
    assert all(h["country"] == "CN" for h in data["results"] + data["nearest"])
    missing = cpc("match", "no-such-org", data_dir=data_dir, check=False)
    assert missing.returncode == 2 and "no organisation" in missing.stderr


def test_privacy_purge_older_than(data_dir):
    import sqlite3
    import time

    from assistant._state import SQLiteStateStore

    store = SQLiteStateStore(data_dir / "state.sqlite")
    store.log_query("web", "en", "old query", 1, "u1")
    store.log_query("web", "en", "new query", 1, "u2")
    store.flush_query_log()
    lead = store.add_lead("u1", "web", "pt-apcor", "APCOR", "en", "x", name="Mary")
    store.update_lead(lead, status="closed", outcome="declined")
    store.close()
    db = sqlite3.connect(data_dir / "state.sqlite")
    with db:
        db.execute("UPDATE query_log SET created = created - 10 * 86400 WHERE query = 'old query'")
        db.execute("UPDATE leads SET closed_at = closed_at - 10 * 86400")
    db.close()
    nothing = cpc("privacy", "purge", data_dir=data_dir, check=False)
    assert nothing.returncode == 2 and "--older-than" in nothing.stderr
    assert cpc("privacy", "purge", "--older-than", "-1", data_dir=data_dir, check=False).returncode == 2
    out = cpc("privacy", "purge", "--older-than", "7", data_dir=data_dir)
    assert "deleted 1 query-log row(s), 1 closed lead(s)" in out.stdout
    db = sqlite3.connect(data_dir / "state.sqlite")
    queries = [q for (q,) in db.execute("SELECT query FROM query_log")]  # the copied folder may hold other tests' rows
    assert "new query" in queries and "old query" not in queries
    assert db.execute("SELECT COUNT(*) FROM leads WHERE id = ?", (lead,)).fetchone() == (0,)
    db.close()
    env_run = subprocess.run([sys.executable, "-m", "assistant.cli", "privacy", "purge"], capture_output=True, text=True,
                             env=dict(os.environ, CPC_DATA_DIR=str(data_dir), CPC_RETENTION_QUERY_LOG_DAYS="1"), timeout=300)
    assert env_run.returncode == 0 and "deleted 0 query-log row(s)" in env_run.stdout


# -- cpc serve --workers -----------------------------------------------------------------------------------
def served_by(log_path: Path, route: str) -> set[int]:
    """The worker pids that logged answering ``route``."""
    rows = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    return {r["pid"] for r in rows if r["logger"] == "cpc.request" and r.get("route") == route and r.get("status") == 200}


def test_serve_with_two_workers_spreads_connections_while_one_worker_is_held_up(data_dir, tmp_path):
    """Connections are spread over the workers by the kernel, not taken by whichever worker wakes
    first: with one worker held up for a moment (a busy host, a long step on its event loop) while
    32 connections open, the other does not take them all, as it would on one shared socket. Those
    of the held-up worker wait for it. Failing by chance: 1 in 9,000 (32 fair coin tosses, more than
    26 alike)."""
    import signal
    import socket
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _server import start_server

    log_path = tmp_path / "serve.log"
    group, url = start_server(data_dir, log_path, timeout=300, workers=2)
    host, port = url.removeprefix("http://").split(":")

    def rows(offset: int = 0) -> list[dict]:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return [json.loads(x) for x in log.read().decode("utf-8").splitlines() if x.startswith("{")]

    try:
        workers = sorted({r["pid"] for r in rows() if r.get("message") == "Application startup complete."})
        assert len(workers) == 2 and group.pid not in workers
        offset = log_path.stat().st_size
        os.kill(workers[1], signal.SIGSTOP)  # well within the supervisor's 5 s health check
        try:
            conns = [socket.create_connection((host, int(port)), timeout=60) for _ in range(32)]
            for conn in conns:
                conn.sendall(f"GET /api/v1/organisations/no-such-organisation HTTP/1.1\r\nHost: {host}\r\n"
                             "Connection: close\r\n\r\n".encode())
            time.sleep(0.5)  # the running worker takes what it is given
        finally:
            os.kill(workers[1], signal.SIGCONT)
        for conn in conns:
            with conn:
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
        pids = [r["pid"] for r in rows(offset) if r.get("route") == "/api/v1/organisations/{org_id}"]
        assert len(pids) == 32
        shares = sorted(pids.count(pid) for pid in set(pids))
        assert len(shares) == 2 and shares[-1] <= 26, shares
    finally:
        group.terminate()
        assert group.wait(timeout=60) == 0


def test_serve_with_two_workers_writes_through_either_and_both_follow(data_dir, tmp_path):
    """Two workers on one port: admin writes succeed whichever worker takes them, each worker serves
    what the other wrote without a restart, and a separate `cpc serve` on the folder stays read-only
    (409) until the group stops, then takes the folder over."""
    import time

    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _server import start_server

    key = "workers-staff-key-31c9"
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    log1, log2 = tmp_path / "group.log", tmp_path / "single.log"
    group, url = start_server(data_dir, log1, env={"CPC_ADMIN_TOKEN": key}, timeout=300, workers=2)
    single = None
    try:
        assert f"pid {group.pid} [group {group.pid}]" in (data_dir / "writer.lock").read_text()
        log_text = log1.read_text(encoding="utf-8")
        assert log_text.count("embedding corpus") == 0  # the index was there: nothing rebuilt, by anyone
        single, url2 = start_server(data_dir, log2, env={"CPC_ADMIN_TOKEN": key}, timeout=300)

        ids = []
        for n in range(16):  # a fresh connection each: the kernel hands them to either worker
            ids.append(f"test-worker-{n}")
            line = json.dumps({"id": ids[-1], "kind": "company", "name": f"Worker {n} Moulds", "country": "PT",
                               "lang": "en", "sectors": ["moulds"], "description": "A fictional mould maker."})
            r = httpx.post(url + "/api/v1/admin/ingest", content=line.encode(), headers=auth, timeout=120)
            assert r.status_code == 200 and r.json()["imported"] == 1, r.text
            if n >= 3 and len(served_by(log1, "/api/v1/admin/ingest")) == 2:
                break
        assert len(served_by(log1, "/api/v1/admin/ingest")) == 2, "one worker took every write"

        deadline = time.monotonic() + 15
        while True:  # every worker serves every record written, by itself or by the other
            codes = [httpx.get(f"{url}/api/v1/organisations/{rid}", timeout=30).status_code for rid in ids * 2]
            if set(codes) == {200} or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert set(codes) == {200} and len(served_by(log1, "/api/v1/organisations/{org_id}")) == 2

        # a separate server on the folder: read-only, following the group's generations
        refused = httpx.delete(f"{url2}/api/v1/admin/organisations/{ids[0]}", headers=auth, timeout=30)
        assert refused.status_code == 409 and f"pid {group.pid}" in refused.json()["error"], refused.text
        deadline = time.monotonic() + 15
        while httpx.get(f"{url2}/api/v1/organisations/{ids[-1]}", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "the separate server did not follow the group's index"
            time.sleep(0.3)
        cli = cpc("delete", ids[0], data_dir=data_dir, check=False)
        assert cli.returncode == 3 and f"pid {group.pid}" in cli.stderr, cli.stderr

        group.terminate()
        assert group.wait(timeout=60) == 0
        r = httpx.delete(f"{url2}/api/v1/admin/organisations/{ids[0]}", headers=auth, timeout=120)
        assert r.status_code == 200, r.text  # the group is gone: the separate server took the folder over
    finally:
        for proc in (group, single):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
