"""One contract for every state store: the SQLite file and a real PostgreSQL server
(``postgres_db`` in conftest) must behave the same, also under threads and several processes."""

from __future__ import annotations

import json
import socket
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant._state import SessionConflict, SessionState, SQLiteStateStore, StateStore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """(open, kind, where): ``open(**options)`` opens another store on the same data; all are closed after the test."""
    if request.param == "sqlite":
        where = str(tmp_path / "state.sqlite")

        def make(**options) -> StateStore:
            return SQLiteStateStore(where, **options)
    else:
        where = request.getfixturevalue("postgres_db")
        from assistant._state_pg import PostgresStateStore

        def make(**options) -> StateStore:
            return PostgresStateStore(where, **options)
    opened: list[StateStore] = []

    def open_store(**options) -> StateStore:
        opened.append(make(**options))
        return opened[-1]

    yield open_store, request.param, where
    for store in opened:
        store.close()


@pytest.fixture
def store(backend) -> StateStore:
    return backend[0]()


# -- sessions ---------------------------------------------------------------------------------
def test_a_session_saved_with_a_stale_version_is_refused(backend):
    open_store = backend[0]
    one, two = open_store(), open_store()  # two workers
    state, version = one.load_versioned("s1")
    assert version == 0 and state == SessionState()
    mine, theirs = one.load_versioned("s1"), two.load_versioned("s1")
    mine[0].query, theirs[0].query = "cork", "moulds"
    assert two.save("s1", theirs[0], version=theirs[1])
    with pytest.raises(SessionConflict, match="s1"):
        one.save("s1", mine[0], version=mine[1])
    state, version = one.load_versioned("s1")
    assert state.query == "moulds" and version == 1
    state.query = "cork"
    assert one.save("s1", state, version=version)
    assert two.load_versioned("s1") == (SessionState(query="cork"), 2)
    assert two.save("s1", SessionState(query="anything"))  # without a version the last writer wins
    assert one.load("s1").query == "anything"


def test_an_expired_session_starts_fresh_and_can_be_saved_over(backend):
    store = backend[0](ttl_seconds=60)
    assert store.save("s", SessionState(query="old", turns=3), now=1000.0)
    assert store.load("s", now=1030.0).turns == 3
    state, version = store.load_versioned("s", now=2000.0)
    assert state == SessionState() and version == 1
    state.turns = 1
    assert store.save("s", state, now=2000.0, version=version)
    assert store.load("s", now=2001.0).turns == 1


def test_concurrent_turns_each_apply_once_with_retries(backend):
    """Eight threads on two stores each add one turn, retrying on conflict: none is lost."""
    open_store = backend[0]
    stores = [open_store(), open_store()]
    conflicts = []

    def turn(i: int) -> None:
        store = stores[i % 2]
        while True:
            state, version = store.load_versioned("busy")
            state.turns += 1
            state.shown.append(str(i))
            try:
                store.save("busy", state, version=version)
                return
            except SessionConflict:
                conflicts.append(i)

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    state = stores[0].load("busy")
    assert state.turns == 8 and sorted(state.shown) == sorted(str(i) for i in range(8))


# -- leads, staff messages, query log -----------------------------------------------------------
def test_leads_and_staff_messages(store):
    first = store.add_lead("web-1", "web", "pt-cork", "Cork Cluster", "pt", "Quero contactar",
                           orgs=[["pt-cork", "Cork Cluster"], ["cn-mould", "Mould Park"]], name="Ana",
                           contact="ana@example.org", contact_kind="email", need="cortiça para exportar",
                           conversation=[["user", "cortiça"]], consent_at=123.0)
    second = store.add_lead("tg-2", "telegram", "cn-mould", "Mould Park", "zh", "我想联系")
    assert second > first
    assert [lead["id"] for lead in store.leads()] == [second, first]  # newest first
    lead = store.lead(first)
    assert lead["organisations"] == [{"id": "pt-cork", "name": "Cork Cluster"}, {"id": "cn-mould", "name": "Mould Park"}]
    assert lead["conversation"] == [["user", "cortiça"]] and lead["consent_at"] == 123.0 and lead["status"] == "new"
    assert [lead["id"] for lead in store.leads(text="CORTIÇA")] == [first]  # any case, any field
    assert [lead["id"] for lead in store.leads(text="mould park")] == [second, first]
    assert [lead["id"] for lead in store.leads(channel="telegram", lang="zh")] == [second]
    assert store.lead(999_999) is None and store.update_lead(999_999, status="closed") is None

    updated = store.update_lead(first, status="closed", outcome="met", assignee=" Rui ", note="called", author="rui")
    assert updated["status"] == "closed" and updated["outcome"] == "met" and updated["assignee"] == "Rui"
    assert updated["closed_at"] is not None and [n["text"] for n in updated["notes"]] == ["called"]
    reopened = store.update_lead(first, status="contacted", note="again")
    assert reopened["outcome"] is None and reopened["closed_at"] is None and len(reopened["notes"]) == 2
    assert store.set_lead_status(second, "contacted") and store.leads(status="contacted", assignee="Rui")[0]["id"] == first

    m1 = store.add_staff_message(first, "web-1", "web", "Olá Ana", "waiting", author="rui")
    m2 = store.add_staff_message(first, "web-1", "web", "Já falámos", "waiting")
    m3 = store.add_staff_message(second, "tg-2", "telegram", "你好", "sent")
    assert [m["text"] for m in store.staff_messages(session_id="web-1")] == ["Olá Ana", "Já falámos"]
    assert [m["id"] for m in store.staff_messages(session_id="web-1", after=m1["id"])] == [m2["id"]]
    by_lead = store.messages_by_lead([first, second, 12345])
    assert [m["id"] for m in by_lead[first]] == [m1["id"], m2["id"]] and [m["id"] for m in by_lead[second]] == [m3["id"]]
    assert by_lead[12345] == [] and store.messages_by_lead([]) == {}
    store.mark_shown("web-1")
    assert {m["delivery"] for m in store.staff_messages(lead_id=first)} == {"shown"}
    assert store.staff_messages(lead_id=second)[0]["delivery"] == "sent"


def test_query_log_is_pseudonymous_and_counted(backend):
    open_store = backend[0]
    store = open_store(log_delay=60)  # reads must not wait out the batch delay
    store.log_query("web", "pt", "cortiça", 4, "203.0.113.9")
    store.log_query("telegram", "zh", "模具", 0, "42")
    store.log_query("web", "en", "x" * 5000, 0, "203.0.113.9")
    rows = store.queries()
    assert [r["query"][:7] for r in rows] == ["xxxxxxx", "模具", "cortiça"] and len(rows[0]["query"]) == 1000
    assert rows[0]["user_hash"] == rows[2]["user_hash"] != rows[1]["user_hash"]
    assert "203.0.113.9" not in json.dumps(rows)
    assert [r["query"] for r in store.queries(zero_only=True, limit=1)] == ["x" * 1000]
    assert store.query_counts() == {"by_lang": {"pt": 1, "zh": 1, "en": 1}, "by_channel": {"web": 2, "telegram": 1},
                                    "totals": {"all": 3, "zero_results": 2}}
    store.close()
    again = open_store()  # the pseudonyms' key is kept: the same user, the same pseudonym after a restart
    again.log_query("web", "pt", "rolhas", 1, "203.0.113.9")
    assert again.queries(limit=1)[0]["user_hash"] == rows[2]["user_hash"]
    assert again.secret("web_session_key") == again.secret("web_session_key") != again.secret("other")


def test_erase_and_purge(store):
    store.save("web-9", SessionState(query="cork"))
    lead = store.add_lead("web-9", "web", "o1", "Org", "en", "hi")
    store.add_staff_message(lead, "web-9", "web", "hello", "waiting")
    other = store.add_lead("web-8", "web", "o1", "Org", "en", "keep me")
    store.log_query("web", "en", "cork", 1, "web-9")
    store.log_query("web", "en", "moulds", 1, "web-8")
    assert store.erase_session("web-9", "web") == {"leads": 1, "messages": 1, "sessions": 1, "queries": 1, "questions": 0}
    assert store.load_versioned("web-9") == (SessionState(), 0)
    assert [lead["id"] for lead in store.leads()] == [other] and [q["query"] for q in store.queries()] == ["moulds"]

    store.update_lead(other, status="closed")
    store.add_staff_message(other, "web-8", "web", "bye", "sent")
    later = time.time() + 3 * 86400
    assert store.purge(None, 5, now=later) == {"queries": 0, "leads": 0, "messages": 0}
    assert store.purge(1, 2, now=later) == {"queries": 1, "leads": 1, "messages": 1}
    assert store.leads() == [] and store.queries() == []


# -- short-lived shared state -------------------------------------------------------------------
def test_claim_is_won_once_among_threads(backend):
    open_store = backend[0]
    stores = [open_store(), open_store()]
    won: list[tuple[int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race(i: int) -> None:
        start.wait()
        for key in range(40):
            if stores[i % 2].claim(f"thread-race:{key}", 60):
                with lock:
                    won.append((key, i))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(key for key, _ in won) == list(range(40))  # every key won, by exactly one thread


_CHILD = r"""
import json, pathlib, sys, time
kind, where, go, mode = sys.argv[1:5]
if kind == "sqlite":
    from assistant._state import SQLiteStateStore as Store
else:
    from assistant._state_pg import PostgresStateStore as Store
store = Store(where)
print("ready", flush=True)
while not pathlib.Path(go).exists():
    time.sleep(0.002)
if mode == "claim":
    won = [k for k in range(150) if store.claim(f"process-race:{k}", 60)]
else:  # 50 in the bucket, no refill to speak of: 60 tries each
    won = [k for k in range(60) if store.take("process-budget", 1.0, 1e-6, 50.0, now=1000.0) == 0.0]
store.close()
print(json.dumps(won), flush=True)
"""


def _race_in_processes(backend, tmp_path, mode: str) -> list[list[int]]:
    """Two processes, started together on the same store, each running ``mode``; what each won."""
    _, kind, where = backend
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, kind, where, str(go), mode], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        go.touch()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def test_claim_is_won_once_between_processes(backend, tmp_path):
    first, second = _race_in_processes(backend, tmp_path, "claim")
    assert sorted(first + second) == list(range(150))  # each key handled once, none lost
    assert not set(first) & set(second)


def test_a_budget_is_shared_between_processes(backend, tmp_path):
    first, second = _race_in_processes(backend, tmp_path, "budget")
    assert len(first) + len(second) == 50  # not 50 each


def test_claim_put_get_pop_expire(store):
    assert store.claim("once", 0.3) and not store.claim("once", 60)
    store.put("token", {"session_id": "tg-1", "ids": {"1": "pt-cork"}}, 0.3)
    store.put("kept", ["rest of the text", "zh"], 60)
    assert store.get("token") == {"session_id": "tg-1", "ids": {"1": "pt-cork"}}
    assert store.get("missing") is None and store.pop("missing") is None
    time.sleep(0.5)
    assert store.get("token") is None and store.pop("token") is None  # expired
    assert store.claim("once", 60)  # an expired claim can be made again
    store.put("kept", ["replaced", "pt"], 60)
    assert store.get("kept") == ["replaced", "pt"]
    assert store.pop("kept") == ["replaced", "pt"] and store.pop("kept") is None


def test_pop_gives_a_value_to_one_of_several_racers(backend):
    open_store = backend[0]
    stores = [open_store(), open_store()]
    for round_ in range(5):
        stores[0].put(f"overflow-{round_}", round_, 60)
        got, start = [], threading.Barrier(6)

        def race(i: int) -> None:
            start.wait()
            value = stores[i % 2].pop(f"overflow-{round_}")
            if value is not None:
                got.append(value)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert got == [round_]


def test_budgets_refill_and_carry_debt(store):
    # a request budget: 3 at once, one back a second; a refused take spends nothing
    assert [store.take("rate:a", 1, 1.0, 3, now=100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]
    assert store.take("rate:a", 1, 1.0, 3, now=100.5) == pytest.approx(0.5)
    assert store.take("rate:a", 1, 1.0, 3, now=101.0) == 0.0
    assert store.take("rate:b", 1, 1.0, 3, now=101.0) == 0.0  # keys are separate
    assert store.balance("rate:a", 1.0, 3, now=111.0) == pytest.approx(3.0)  # never more than the capacity
    # a cost budget: charged after the work, into debt at most one capacity deep
    assert store.take("cost:a", 0, 1.0, 10, debt=True, now=0.0) == 0.0
    store.take("cost:a", 12, 1.0, 10, debt=True, now=0.0)
    assert store.balance("cost:a", 1.0, 10, now=0.0) == pytest.approx(-2.0)
    assert store.take("cost:a", 0, 1.0, 10, debt=True, now=1.0) == pytest.approx(1.0, abs=0.01)
    store.take("cost:a", 1000, 1.0, 10, debt=True, now=3.0)
    assert store.take("cost:a", 0, 1.0, 10, debt=True, now=3.0) == pytest.approx(10.0, abs=0.01)
    assert store.balance("cost:new", 1.0, 10, now=3.0) == 10.0


def test_an_unreachable_database_is_a_clear_error_without_the_password():
    from assistant._state_pg import PostgresStateStore

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RuntimeError, match=rf"state database \(CPC_STATE_URL\) at 127\.0\.0\.1:{port}, database cpc") as err:
        PostgresStateStore(f"postgresql://cpc:hunter2@127.0.0.1:{port}/cpc", connect_timeout=1)
    assert "hunter2" not in str(err.value)


# -- threads with the team and the FAQ (assistant/_threads.py, _faq.py) ----------------------------
def test_a_leads_thread_holds_both_sides_and_unread_markers(store):
    assert store.open_thread("tg-1") is None
    lead = store.add_lead("tg-1", "telegram", "pt-a", "A", "zh", "我感兴趣", contact="telegram", contact_kind="telegram")
    assert store.open_thread("tg-1") is None  # staff have not written yet
    store.add_staff_message(lead, "tg-1", "email", "E-mail → x", "e-mail")
    assert store.open_thread("tg-1") is None  # an introduction e-mail opens no chat thread
    sent = store.add_staff_message(lead, "tg-1", "telegram", "您好", "sent", "Rita")
    assert sent["sender"] == "staff"
    assert store.open_thread("tg-1") == {"lead_id": lead, "status": "new", "last_staff": sent["id"]}
    answer = store.add_user_message(lead, "tg-1", "telegram", "好的，谢谢！")
    assert (answer["sender"], answer["delivery"]) == ("user", "unread")
    thread = store.staff_messages(lead_id=lead)
    assert [(m["sender"], m["text"]) for m in thread] == [("staff", "E-mail → x"), ("staff", "您好"), ("user", "好的，谢谢！")]
    assert store.messages_by_lead([lead])[lead] == thread
    assert store.lead(lead)["last_inbound"] == answer["created"]
    assert store.mark_read(lead) == 1 and store.mark_read(lead) == 0
    assert store.staff_messages(lead_id=lead)[-1]["delivery"] == "read"
    newer = store.add_lead("tg-1", "telegram", "pt-b", "B", "zh", "x")
    assert store.open_thread("tg-1")["lead_id"] == lead  # the newest lead staff wrote to
    assert [x["id"] for x in store.session_leads("tg-1")] == [newer, lead]
    store.update_lead(lead, status="closed", outcome="no_fit")
    assert store.open_thread("tg-1") is None
    assert store.erase_session("tg-1", "telegram")["messages"] == 3


def test_faq_entries_seeded_once_edited_and_versioned(backend):
    open_store = backend[0]
    one, two = open_store(), open_store()
    seed = [{"questions": {"en": ["what is it?"], "zh": ["这是什么？"]}, "answers": {"en": "A thing.", "zh": "一个东西。"}}]
    assert one.faq_entries() == [] and one.faq_version() == (0, 0.0)
    assert one.seed_faq(seed) == 1 and two.seed_faq(seed) == 0  # once per store, whichever worker starts first
    [entry] = two.faq_entries()
    assert entry["questions"]["zh"] == ["这是什么？"] and entry["answers"]["en"] == "A thing."
    v1 = one.faq_version()
    added = one.add_faq({"pt": ["quanto custa?"]}, {"pt": "Nada."})
    v2 = two.faq_version()
    assert v2 != v1 and v2[0] == 2
    assert two.update_faq(added["id"], {"pt": ["é grátis?"]}, {"pt": "Sim."})["answers"] == {"pt": "Sim."}
    assert one.update_faq(999_999, {}, {}) is None
    v3 = one.faq_version()
    assert one.delete_faq(entry["id"]) and not one.delete_faq(entry["id"])
    assert two.faq_version() != v3
    assert [e["questions"] for e in two.faq_entries()] == [{"pt": ["é grátis?"]}]
    assert one.seed_faq(seed) == 0  # deleted by staff: never seeded again


def test_unanswered_questions_are_logged_and_erased_with_the_user(store):
    store.log_unanswered("pt", "a aliança tem escritório em Macau?", "web-5", "web")
    store.log_unanswered("en", "does the alliance run trade fairs?", "web-6", "web")
    logged = store.unanswered()
    assert [q["text"] for q in logged] == ["does the alliance run trade fairs?", "a aliança tem escritório em Macau?"]
    assert set(logged[0]) == {"id", "created", "lang", "text"}  # no pseudonym leaves the store
    assert store.erase_session("web-5", "web")["questions"] == 1
    assert store.delete_unanswered(logged[0]["id"]) and store.unanswered() == []


def test_member_profiles_are_kept_moderated_once_and_deleted(backend):
    """join (members): a profile row, its owner's listing, a compare-and-set status change that two
    workers race on (one wins), and deletion."""
    open_store = backend[0]
    one, two = open_store(), open_store()
    data = {"name": "Moldes Exemplo Lda (teste)", "kind": "company", "country": "PT", "sectors": ["moldes", "plásticos"],
            "offers": "Moldes de injeção", "contact": "geral@moldes-exemplo.example"}
    pid = one.add_profile("telegram", "tg-42", "pt", data, 1700000000.0, email=None)
    other = two.add_profile("web", "conv-1", "zh", {**data, "name": "示例模具（测试）"}, 1700000001.0)
    got = two.profile(pid)
    assert got["status"] == "pending" and got["data"] == data and got["consent_at"] == 1700000000.0 and got["owner"] == "tg-42"
    assert [p["id"] for p in one.profiles(channel="telegram", owner="tg-42")] == [pid]
    assert [p["id"] for p in one.profiles(status="pending")] == [pid, other]  # the queue: oldest first
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(
        s.update_profile(pid, status="approved", org_id="member-1", published=1.0, expect=("pending",)))) for s in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert one.profile(pid)["status"] == "approved" and one.profile(pid)["org_id"] == "member-1"
    assert one.update_profile(other, status="rejected", reason="incompleto", expect=("pending",))
    assert two.profile(other)["reason"] == "incompleto"
    assert one.update_profile(other, data={**data, "city": "Leiria"}, status="pending", expect=("rejected", "approved"))
    assert two.profile(other)["reason"] is None and two.profile(other)["data"]["city"] == "Leiria"
    assert one.delete_profile(pid) and not two.delete_profile(pid) and two.profile(pid) is None


# -- opportunity posts (assistant/_posts_store.py) ------------------------------------------------------
_POST = {"id": "post-fx-1", "type": "supplier", "lang": "pt", "title": "Procuramos granulado de cortiça (fictício)",
         "description": "Fabricante fictício procura fornecedor de granulado.", "sectors": ["cortiça", "pavimentos"],
         "side_sought": "CN", "closes": "2030-06-30", "author": None}


def test_posts_are_stored_reviewed_once_and_erased_with_their_author(backend):
    open_store = backend[0]
    one, two = open_store(), open_store()  # two workers
    v0 = one.posts_version()
    row = one.add_post(_POST, "pending", "telegram", "tg-42")
    assert row["status"] == "pending" and row["sectors"] == ["cortiça", "pavimentos"] and row["closes"] == "2030-06-30"
    assert two.post("post-fx-1") == row and two.posts_version() != v0
    with pytest.raises(Exception):
        two.add_post(_POST, "pending", "web", "other")  # one id, one post
    v1 = two.posts_version()
    done = two.set_post_status("post-fx-1", "rejected", expect="pending", reason="sem empresa", reviewer="ana")
    assert done["status"] == "rejected" and done["reason"] == "sem empresa" and done["reviewer"] == "ana"
    assert one.set_post_status("post-fx-1", "published", expect="pending") is None  # reviewed once: the other worker lost
    assert one.posts_version() != v1
    assert [p["id"] for p in one.posts(address="tg-42")] == ["post-fx-1"] and one.posts(status="published") == []
    with pytest.raises(ValueError):
        one.set_post_status("post-fx-1", "approved-ish")
    # staff's corrections are written with the decision, in one statement; only the editable fields
    one.add_post({**_POST, "id": "post-fx-2"}, "pending", "web", "web-9")
    with pytest.raises(ValueError):
        one.set_post_status("post-fx-2", "published", expect="pending", fields={"channel": "telegram"})
    assert two.post("post-fx-2")["status"] == "pending"
    done = two.set_post_status("post-fx-2", "published", expect="pending", reviewer="ana",
                               fields={"title": "Granulado de cortiça (corrigido)", "sectors": ["cortiça"], "closes": "2030-07-31"})
    assert (done["title"], done["sectors"], done["closes"], done["status"]) == (
        "Granulado de cortiça (corrigido)", ["cortiça"], "2030-07-31", "published")
    assert one.set_post_status("post-fx-2", "published", expect="pending", fields={"title": "x"}) is None
    assert one.post("post-fx-2")["title"] == "Granulado de cortiça (corrigido)"
    assert one.erase_session("tg-42", "telegram")["posts"] == 1
    assert two.post("post-fx-1") is None
