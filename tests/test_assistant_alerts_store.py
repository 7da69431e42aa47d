"""The alert tables (assistant/_alerts_store.py) behave the same in SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from assistant._state import SQLiteStateStore, StateStore


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        where = str(tmp_path / "state.sqlite")

        def make() -> StateStore:
            return SQLiteStateStore(where)
    else:
        where = request.getfixturevalue("postgres_db")
        from assistant._state_pg import PostgresStateStore

        def make() -> StateStore:
            return PostgresStateStore(where)
    opened: list[StateStore] = []

    def open_store() -> StateStore:
        opened.append(make())
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def test_subscriptions_keep_the_need_and_the_vector(backend):
    store = backend()
    vector = np.arange(4, dtype=np.float32).tobytes()
    a = store.add_alert("telegram", "tg-1", "pt", "moldes na China", {"countries": ["CN"]}, {"lang": "pt", "sectors": ["moulds"]},
                        vector)
    b = store.add_alert("email", "ana@example.pt", "en", "cork", {}, {"lang": "en"}, None, email="ana@example.pt",
                        base_url="https://cpc.example")
    assert a != b
    sub = store.alert(a)
    assert sub["query"] == "moldes na China" and sub["filters"] == {"countries": ["CN"]} and sub["active"]
    assert sub["understood"]["sectors"] == ["moulds"] and sub["last_digest"] is None
    assert store.alert(b)["base_url"] == "https://cpc.example" and store.alert(999) is None
    got = dict((s["id"], v) for s, v in store.alert_vectors())
    assert np.frombuffer(got[a], np.float32).tolist() == [0, 1, 2, 3] and got[b] is None
    assert [s["id"] for s in store.alerts(channel="telegram", address="tg-1")] == [a]
    # stopping one identity's alerts drops its pending notices, keeps the others'
    store.add_notices([(a, "r1", "R1"), (b, "r1", "R1")])
    assert store.stop_alerts("telegram", "tg-1") == 1 and store.stop_alerts("telegram", "tg-1") == 0
    assert store.notices(a) == [] and len(store.notices(b)) == 1
    assert [s["id"] for s in store.alerts()] == [b] and len(store.alerts(active=None)) == 2
    assert store.stop_alert(b) and not store.stop_alert(b)
    assert store.alert_vectors() == []


def test_notices_are_unique_and_sent_once(backend):
    store = backend()
    a = store.add_alert("web", "web-1", "en", "moulds", {}, {"lang": "en"})
    assert store.add_notices([(a, "r1", "R1"), (a, "r2", "R2")], now=100.0) == 2
    assert store.add_notices([(a, "r1", "R1 again"), (a, "r3", "R3")], now=200.0) == 1  # r1 known: never twice
    (due,) = store.due_notices(now=300.0)
    assert due[0]["id"] == a and [n["record_id"] for n in due[1]] == ["r1", "r2", "r3"]
    assert store.mark_sent(a, ["r1", "r2", "r3"], now=300.0) == 3
    assert store.mark_sent(a, ["r1"], now=301.0) == 0  # a retry marks nothing twice
    assert store.due_notices(now=400.0) == []
    store.add_notices([(a, "r4", "R4")], now=500.0)
    assert store.due_notices(now=600.0, every=86400) == []  # today's digest went out
    assert [n["record_id"] for n in store.due_notices(now=300.0 + 86400)[0][1]] == ["r4"]


def test_a_restart_keeps_pending_notices(backend):
    store = backend()
    a = store.add_alert("telegram", "tg-9", "zh", "模具", {}, {"lang": "zh"})
    store.add_notices([(a, "r1", "宁波模具")])
    store.close()
    again = backend()
    (due,) = again.due_notices()
    assert due[1][0]["record_name"] == "宁波模具"


def test_notices_written_by_two_workers_at_once_are_kept_once(backend):
    one, two = backend(), backend()
    a = one.add_alert("web", "web-1", "en", "moulds", {}, {"lang": "en"})
    added: list[int] = []
    start = threading.Barrier(4)

    def write(store):
        start.wait()
        added.append(store.add_notices([(a, f"r{i}", "x") for i in range(30)]))

    threads = [threading.Thread(target=write, args=(s,)) for s in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(added) == 30 and len(one.notices(a)) == 30


def test_seen_updates_the_window_and_erase_removes(backend):
    store = backend()
    a = store.add_alert("wechat", "wx-o1", "zh", "模具", {}, {"lang": "zh"})
    store.seen_alerts("wechat", "wx-o1", now=12345.0)
    assert store.alert(a)["last_seen"] == 12345.0
    store.add_notices([(a, "r1", "x")])
    counts = store.erase_session("wx-o1", "wechat")
    assert counts["alerts"] == 1 and store.alert(a) is None and store.notices(a) == []
    assert "alerts" not in store.erase_session("wx-nobody", "wechat")


def test_records_to_match_are_kept_until_their_notices_are_written(backend):
    store, other = backend(), backend()  # two processes' stores on one database
    a = store.add_alert("web", "web-1", "en", "moulds", {}, {"lang": "en"})
    assert store.to_match() == ([], None)
    store.mark_to_match(["r1", "r2", "r1"])
    other.mark_to_match(["r2", "r3"])
    ids, last = store.to_match()
    assert ids == ["r1", "r2", "r3"] and last is not None
    other.mark_to_match(["r4"])  # written after it was read: not answered by this matching
    assert store.add_notices([(a, "r1", "R1"), (a, "r3", "R3")], matched=last) == 2
    assert other.to_match()[0] == ["r4"]
    # no notice to write still answers the markers
    assert store.add_notices([], matched=other.to_match()[1]) == 0 and store.to_match() == ([], None)
    # a batch larger than one statement: counted once, pairs already known skipped
    rows = [(a, f"x{i}", f"X{i}") for i in range(store.NOTICE_BATCH * 2 + 7)]
    assert store.add_notices(rows + rows[:3]) == len(rows)
    assert store.add_notices(rows[:10] + [(a, "y", "Y")]) == 1
    assert len(store.notices(a)) == len(rows) + 3
