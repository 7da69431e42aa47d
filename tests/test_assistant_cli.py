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


def cpc(*args, data_dir, check=True, env=None):
    env = dict(os.environ, CPC_DATA_DIR=str(data_dir), **(env or {}))
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
    """Not on a terminal (a pipe here, a service's log in production): progress as JSON log lines,
    every line of stderr one JSON object, no progress bar."""
    proc = cpc("index", "build", "--corpus", str(DATA / "fictional.jsonl"), data_dir=tmp_path / "fresh")
    assert "built index: 6 records" in proc.stdout and "vectors in FAISS (flat)" in proc.stdout
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # each line is JSON, or this fails
    progress = [r for r in lines if r["logger"] == "cpc.progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"] and "embedding corpus" in progress[-1]["message"]
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
        deadline = time.monotonic() + 15  # a worker logs a request after answering it: on a busy host, later
        while True:
            pids = [r["pid"] for r in rows(offset) if r.get("route") == "/api/v1/organisations/{org_id}"]
            if len(pids) >= 32 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
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


# -- the configured stores: a Milvus server and PostgreSQL, for every command and for N workers --------
@pytest.fixture(scope="module")
def stores(milvus_server, postgres_url, tmp_path_factory):
    """A data folder whose index `cpc index build` put into the Milvus server, and a database of its
    own for the state: the environment every command and the service get."""
    import uuid

    import psycopg

    name = "cli_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    env = {"CPC_VECTOR_URL": milvus_server, "CPC_STATE_URL": postgres_url.rsplit("/", 1)[0] + "/" + name}
    data_dir = tmp_path_factory.mktemp("stores") / "var"
    proc = cpc("index", "build", "--corpus", str(DATA / "fictional.jsonl"), data_dir=data_dir, env=env)
    return data_dir, env, proc


def test_index_build_puts_the_vectors_into_the_configured_milvus(stores):
    data_dir, env, proc = stores
    assert f"vectors in Milvus ({env['CPC_VECTOR_URL']})" in proc.stdout
    gen = data_dir / "index" / (data_dir / "index" / "CURRENT").read_text().strip()
    assert json.loads((gen / "manifest.json").read_text())["index_type"] == "milvus"
    ref = json.loads((gen / "dense-raw.json").read_text())
    assert ref["backend"] == "milvus" and ref["url"] == env["CPC_VECTOR_URL"]
    assert not list(gen.glob("*.faiss"))


def test_every_command_honours_the_configured_stores(stores, tmp_path):
    """search, match, ingest, delete and privacy purge on a Milvus server and PostgreSQL: what one
    command writes the next one finds there (the vectors in Milvus, the state in the database)."""
    import psycopg

    data_dir, env, _ = stores
    run = lambda *args, check=True: cpc(*args, data_dir=data_dir, env=env, check=check)  # noqa: E731
    out = json.loads(run("search", "rolhas de cortiça", "--json", "--limit", "3").stdout)
    assert out["results"][0]["id"] == "test-cork-lab"
    matched = json.loads(run("match", "test-cork-lab", "--json", "--limit", "3").stdout)
    assert matched["organisation"] == "test-cork-lab" and "test-cork-lab" not in [h["id"] for h in matched["results"]]

    path = tmp_path / "robot.jsonl"
    path.write_text(json.dumps({"id": "test-robot-lab", "kind": "institution", "name": "Test Robot Lab", "country": "CN",
                                "sectors": ["electronics"], "lang": "en",
                                "description": "A fictional test laboratory building industrial robots."}) + "\n")
    assert "imported 1" in run("ingest", str(path)).stdout
    from pymilvus import MilvusClient

    from index._milvus import client_target

    gen = data_dir / "index" / (data_dir / "index" / "CURRENT").read_text().strip()
    ref = json.loads((gen / "dense-raw.json").read_text())
    milvus = MilvusClient(client_target(env["CPC_VECTOR_URL"])[0])
    held = lambda: milvus.query(ref["collection"], filter='record == "test-robot-lab"', output_fields=["id"])  # noqa: E731
    assert held(), "the ingested record's vectors are not in the Milvus collection"
    assert json.loads(run("search", "工业机器人", "--json", "--limit", "1").stdout)["results"][0]["id"] == "test-robot-lab"
    assert "deleted 1" in run("delete", "test-robot-lab").stdout
    assert not held()
    assert "test-robot-lab" not in run("search", "industrial robots", "--json").stdout

    with psycopg.connect(env["CPC_STATE_URL"], autocommit=True) as conn:  # a query-log row 30 days old, in the database
        conn.execute(_PG_SCHEMA_PROBE)
        conn.execute("INSERT INTO query_log(created, channel, lang, query, results, user_hash) "
                     "VALUES (extract(epoch from now()) - 30 * 86400, 'web', 'en', 'old', 0, 'u')")
    assert "deleted 1 query-log row(s)" in run("privacy", "purge", "--older-than", "7").stdout
    assert not (data_dir / "state.sqlite").exists()  # nothing went to the data folder's SQLite instead


_PG_SCHEMA_PROBE = """CREATE TABLE IF NOT EXISTS query_log (id BIGSERIAL PRIMARY KEY, created DOUBLE PRECISION NOT NULL,
    channel TEXT NOT NULL, lang TEXT NOT NULL, query TEXT NOT NULL, results INTEGER NOT NULL, user_hash TEXT NOT NULL)"""


def test_workers_on_a_milvus_lite_file_are_refused_at_once(tmp_path):
    import time

    t0 = time.monotonic()
    proc = cpc("serve", "--workers", "2", data_dir=tmp_path / "var", check=False,
               env={"CPC_VECTOR_URL": str(tmp_path / "vectors.db")})
    assert proc.returncode == 2 and time.monotonic() - t0 < 30
    assert "milvus-lite file" in proc.stderr and "milvus-lite server" in proc.stderr and "milvus://" in proc.stderr
    assert not (tmp_path / "var" / "index").exists()  # refused before building anything


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus text-format sample over the series whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_two_workers_on_milvus_and_postgresql_serve_through_writes_and_a_killed_worker(stores, tmp_path):
    """`cpc serve --workers 2` on a Milvus server and PostgreSQL: ingest, delete and reindex through
    either worker while searches run, with no 5xx; a worker killed outright is replaced and the
    searches keep being answered; /readyz names both stores; one /metrics scrape counts the
    searches of both workers (the killed one's included); every log line is JSON."""
    import signal
    import threading
    import time

    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _server import start_server

    data_dir, env, _ = stores
    key = "scale-staff-key-5e21"
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    log_path = tmp_path / "serve.log"
    group, url = start_server(data_dir, log_path, env={**env, "CPC_ADMIN_TOKEN": key}, timeout=300, workers=2)
    statuses: list[int] = []
    stop = threading.Event()

    def search_all_along() -> None:
        queries = ["cork stoppers", "moldes", "葡萄酒", "industrial robots", "tourism partners"]
        n = 0
        while not stop.is_set():
            try:  # a fresh connection each: the kernel hands them to either worker
                r = httpx.post(url + "/api/v1/search", json={"query": queries[n % len(queries)], "limit": 5}, timeout=60)
                statuses.append(r.status_code)
            except httpx.HTTPError as exc:
                statuses.append(-1)
                print("search failed:", exc)
            n += 1
            time.sleep(0.05)

    searcher = threading.Thread(target=search_all_along, daemon=True)
    try:
        rows = lambda: [json.loads(x) for x in log_path.read_text(encoding="utf-8").splitlines()]  # noqa: E731
        workers = sorted({r["pid"] for r in rows() if r.get("message") == "Application startup complete."})
        assert len(workers) == 2
        for store, backend in (("state", "postgresql"), ("vectors", "milvus")):  # one start-up line each, per worker
            assert {r["pid"] for r in rows() if r.get("store") == store and r["message"].startswith(f"{store.replace('vectors', 'vector')} store: {backend}")} == set(workers)
        ready = httpx.get(url + "/readyz", timeout=10).json()
        assert ready["stores"]["state"]["backend"].startswith("postgresql") and ready["stores"]["state"]["ok"]
        assert ready["stores"]["vectors"]["backend"].startswith("milvus") and ready["stores"]["vectors"]["ok"]
        searcher.start()

        ids = [f"test-scale-{n}" for n in range(4)]
        for pair in (ids[:2], ids[2:]):  # two writes (each a child process of ~6 s), on fresh connections
            lines = [json.dumps({"id": rid, "kind": "company", "name": f"Scale {rid[-1]} Robotics", "country": "CN",
                                 "lang": "en", "sectors": ["electronics"], "description": "A fictional maker of welding robots."})
                     for rid in pair]
            r = httpx.post(url + "/api/v1/admin/ingest", content="\n".join(lines).encode(), headers=auth, timeout=120)
            assert r.status_code == 200 and r.json()["imported"] == 2, r.text
        r = httpx.delete(f"{url}/api/v1/admin/organisations/{ids[0]}", headers=auth, timeout=120)
        assert r.status_code == 200, r.text
        r = httpx.post(url + "/api/v1/admin/reindex", headers=auth, timeout=300)
        assert r.status_code == 200 and r.json()["index_type"] == "milvus", r.text
        r = httpx.delete(f"{url}/api/v1/admin/organisations/{ids[1]}", headers=auth, timeout=120)
        assert r.status_code == 200, r.text

        deadline = time.monotonic() + 20
        while True:  # both workers follow: each serves what the writes left, by itself or by the other
            found = [[h["id"] for h in httpx.post(url + "/api/v1/search", json={"query": "welding robots", "limit": 10},
                                                   timeout=60).json()["results"]] for _ in range(8)]
            if all(set(ids[2:]) <= set(f) and not set(ids[:2]) & set(f) for f in found) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert all(set(ids[2:]) <= set(f) and not set(ids[:2]) & set(f) for f in found), found

        before_kill = len(statuses)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 120  # the supervisor replaces it; connections for its socket wait for the new one
        while not ({r["pid"] for r in rows() if r.get("message") == "Application startup complete."} - set(workers)):
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.5)
        answered = len(statuses)
        while len(statuses) < answered + 10:
            assert time.monotonic() < deadline, "searches stopped being answered after a worker was killed"
            time.sleep(0.2)
        stop.set()
        searcher.join(timeout=120)
        assert statuses[:before_kill] and set(statuses[:before_kill]) == {200}, sorted(set(statuses[:before_kill]))
        # after the kill: at most the one request the killed worker was answering is lost (its connection
        # reset), never a 5xx
        after = statuses[before_kill:]
        assert all(code == 200 or code == -1 for code in after) and after.count(-1) <= 1, after

        served = {r["pid"] for r in rows() if r.get("route") == "/api/v1/search" and r.get("status") == 200}
        assert workers[0] in served and len(served) >= 2, "searches did not go through both workers"
        logged = sum(1 for r in rows() if r.get("route") == "/api/v1/search")
        deadline = time.monotonic() + 10
        while True:  # a count lands just after its answer is sent
            scraped = metric(httpx.get(url + "/metrics", headers=auth, timeout=10).text, "cpc_http_requests_total",
                             route="/api/v1/search")
            if scraped == logged or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert scraped == logged  # every worker's, the killed one's too, in one scrape
    finally:
        stop.set()
        group.terminate()
        assert group.wait(timeout=60) == 0
    assert not (data_dir / "metrics" / f"run-{group.pid}").exists()  # the run's metrics folder is removed


def test_a_command_beside_the_process_holding_a_milvus_lite_file_says_so(encoder, tmp_path):
    """A milvus-lite file is one process's: `cpc search` beside the process that has it open (a
    server, here this test) ends with a clear error naming the server alternative, not a traceback."""
    from conftest import HAVE_MILVUS

    if not HAVE_MILVUS:
        pytest.skip("pymilvus / milvus-lite not installed")
    from index import Catalog, SearchConfig, load_query_samples
    from index._engine import SearchEngine

    lite = str(tmp_path / "vectors.db")
    data_dir = tmp_path / "var"
    catalog = Catalog(data_dir, encoder, SearchConfig(vector_url=lite))
    from corpus import load_records

    records = load_records(DATA / "fictional.jsonl").records
    engine = SearchEngine.build(records, encoder, catalog.config, query_samples=list(load_query_samples())[::8])
    catalog._commit(engine, lambda: catalog.store.replace_all(records), None)
    catalog.close()  # the folder is free; the file stays open in this process, as a server would hold it
    proc = cpc("search", "cork", data_dir=data_dir, check=False, env={"CPC_VECTOR_URL": lite})
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and "milvus-lite file" in errors[0] and "milvus-lite server" in errors[0] and "milvus://" in errors[0]
    assert "Traceback" not in "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("{"))


def test_a_built_in_command_does_not_import_the_extensions():
    """`cpc search` and the other built-in commands leave the extensions (the chat connectors, the
    evaluation) unimported: ~0.8 s a command. `cpc --help` and `cpc eval` still find them."""
    probe = ("import sys\nfrom assistant.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('loaded:', sorted(m for m in ('connectors', 'eval') if m in sys.modules))")
    run = lambda *args: subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,  # noqa: E731
                                       timeout=120, env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    out = run("search", "--help")
    assert "--explain" in out.stdout and "loaded: []" in out.stdout, out.stdout + out.stderr
    out = run("staff", "list", "--help")
    assert "loaded: []" in out.stdout, out.stdout + out.stderr
    out = run("--help")
    assert "telegram" in out.stdout and "eval" in out.stdout and "loaded: ['connectors', 'eval']" in out.stdout, out.stdout
    out = run("eval", "--help")
    assert "--bitext" in out.stdout, out.stdout + out.stderr
