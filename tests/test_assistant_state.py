"""The SQLite state store: the query log's writer thread batches rows without losing them."""

import logging
import time

from assistant._state import StateStore


def test_query_log_rows_are_readable_at_once_and_close_writes_the_rest(tmp_path):
    store = StateStore(tmp_path / "state.sqlite", log_delay=60)  # a long batch delay: reads must not wait it out
    for i in range(3):
        store.log_query("api", "pt", f"moldes {i}", i, "10.0.0.1")
    started = time.monotonic()
    rows = store.queries()
    assert time.monotonic() - started < 10
    assert [r["query"] for r in rows] == ["moldes 2", "moldes 1", "moldes 0"]
    assert store.query_counts()["totals"] == {"all": 3, "zero_results": 1}
    store.log_query("telegram", "zh", "模具", 5, "42")
    store.close()  # the queued row is written before the file closes
    reopened = StateStore(tmp_path / "state.sqlite")
    assert [r["query"] for r in reopened.queries()] == ["模具", "moldes 2", "moldes 1", "moldes 0"]
    assert reopened.queries()[0]["user_hash"] != "42"  # pseudonym, not the raw id
    reopened.close()


def test_user_pseudonyms_are_keyed_per_store_and_stable(tmp_path):
    """The same user keeps one pseudonym across restarts; another installation cannot compute it."""
    import hashlib

    first = StateStore(tmp_path / "a.sqlite")
    first.log_query("api", "pt", "cortiça", 3, "10.0.0.7")
    first.close()
    again = StateStore(tmp_path / "a.sqlite")
    again.log_query("api", "pt", "moldes", 3, "10.0.0.7")
    mine = {q["user_hash"] for q in again.queries()}
    again.close()
    other = StateStore(tmp_path / "b.sqlite")
    other.log_query("api", "pt", "cortiça", 3, "10.0.0.7")
    theirs = other.queries()[0]["user_hash"]
    other.close()
    assert len(mine) == 1 and theirs not in mine
    unsalted = {hashlib.sha256(f"{p}api:10.0.0.7".encode()).hexdigest()[:16] for p in ("", "cpc:")}
    assert not (mine | {theirs}) & unsalted


def test_a_full_backlog_drops_rows_instead_of_blocking_the_search(tmp_path, caplog):
    store = StateStore(tmp_path / "state.sqlite", log_backlog=1, log_delay=60)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="cpc.state"):
        for i in range(6):
            store.log_query("api", "en", f"q{i}", 1, "10.0.0.1")
    assert time.monotonic() - started < 1
    assert "backlog full" in caplog.text
    assert 1 <= len(store.queries()) <= 2
    store.close()
