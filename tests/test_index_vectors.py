"""One contract for every vector store: exact FAISS, FAISS HNSW-SQ8 and Milvus (milvus-lite).

The milvus-lite cases are skipped only when pymilvus or milvus-lite is not installed (the
``milvus`` extra, part of ``test``)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from index._vectors import FaissVectorStore, VectorFilter, VectorStore, new_vector_store, open_vector_store

DIM = 64
BACKENDS = ["faiss-flat", "faiss-hnsw", "milvus-lite"]
HAVE_MILVUS = all(importlib.util.find_spec(m) is not None for m in ("pymilvus", "milvus_lite"))


@pytest.fixture(scope="module")
def milvus_url(tmp_path_factory):
    if not HAVE_MILVUS:
        pytest.skip("pymilvus / milvus-lite not installed (pip install -e '.[milvus]')")
    return str(tmp_path_factory.mktemp("milvus") / "vectors.db")


@pytest.fixture(params=BACKENDS)
def make(request):
    """A factory of empty stores of one backend."""
    if request.param == "faiss-flat":
        return lambda: new_vector_store(DIM, exact_max=1_000_000)
    if request.param == "faiss-hnsw":  # thresholds of a few vectors: HNSW and its filtered path from the start
        return lambda: FaissVectorStore(DIM, exact_max=8, exact_filtered_max=4)
    url = request.getfixturevalue("milvus_url")
    return lambda: new_vector_store(DIM, url, label="test")


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clustered(n: int, seed: int = 0, clusters: int = 30, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    return unit(centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim)))


COUNTRIES, SECTORS = ("PT", "CN"), ("wine", "cork", "moulds", "textiles", "tourism")


def columns_of(i: int) -> dict:
    return {"record": f"rec-{i // 2}", "country": COUNTRIES[i % 2].lower(), "region": f"region-{i % 5}",
            "city": f"city-{i % 11}", "kind": "company" if i % 3 else "cluster",
            "sector": [SECTORS[i % 5], SECTORS[(i // 5) % 5]]}


def filled(make, n: int = 200, seed: int = 0):
    store = make()
    vectors = clustered(n, seed)
    store.upsert(np.arange(n, dtype=np.int64) * 16, vectors, [columns_of(i) for i in range(n)])
    return store, vectors


def brute(vectors: np.ndarray, q: np.ndarray, allowed: list[int], k: int) -> list[int]:
    scores = vectors[allowed] @ q
    return [allowed[j] * 16 for j in np.argsort(-scores, kind="stable")[:k]]


def assert_near(store, ids: np.ndarray, truth: list[int]) -> None:
    """The exact store finds the true top k; an approximate one (8-bit codes) nearly all of them."""
    if store.kind == "flat":
        assert ids.tolist() == truth
    else:
        assert len(set(ids.tolist()) & set(truth)) >= 0.8 * len(truth)


def where(n: int, pred) -> list[int]:
    return [i for i in range(n) if pred(columns_of(i))]


def test_upsert_replaces_by_id(make):
    store, vectors = filled(make, 50)
    assert isinstance(store, VectorStore) and store.dim == DIM
    assert len(store) == store.count() == 50
    new = unit(np.ones(DIM))
    store.upsert(np.array([16 * 7]), new[None], [{"record": "rec-3", "country": "es", "sector": ["olive-oil"]}])
    assert len(store) == 50  # replaced, not added
    scores, ids = store.search(new, 1)
    assert ids.tolist() == [16 * 7] and scores[0] == pytest.approx(1.0, abs=0.02)
    assert store.count(VectorFilter(include=(("country", ("es",)),))) == 1
    assert store.count(VectorFilter(include=(("sector", ("olive-oil",)),))) == 1
    assert store.count(VectorFilter(include=(("city", ("city-7",)),))) == len(where(50, lambda c: c["city"] == "city-7")) - 1
    assert np.allclose(store.fetch([16 * 7])[0], new, atol=0.02)


def test_delete_removes_only_what_is_there(make):
    store, vectors = filled(make, 60)
    assert store.delete(np.array([0, 16, 16 * 999])) == 2
    assert store.delete(np.array([0])) == 0
    assert len(store) == 58
    _, ids = store.search(vectors[1], 60)
    assert 16 not in ids.tolist() and 0 not in ids.tolist() and len(ids) == 58
    with pytest.raises(KeyError):
        store.fetch([16])
    assert store.delete(np.zeros(0, np.int64)) == 0


def test_filters_include_exclude_and_multivalued_sector(make):
    n = 200
    store, vectors = filled(make, n)
    q = vectors[3]
    cases = [
        (VectorFilter(include=(("country", ("cn",)),)), lambda c: c["country"] == "cn"),
        (VectorFilter(include=(("sector", ("cork", "moulds")),)), lambda c: {"cork", "moulds"} & set(c["sector"])),
        (VectorFilter(include=(("country", ("pt",)), ("kind", ("cluster",)))),
         lambda c: c["country"] == "pt" and c["kind"] == "cluster"),
        (VectorFilter(exclude=(("region", ("region-1", "region-2")),)), lambda c: c["region"] not in ("region-1", "region-2")),
        (VectorFilter(exclude=(("record", ("rec-1", "rec-7")),)), lambda c: c["record"] not in ("rec-1", "rec-7")),
        (VectorFilter(include=(("sector", ("wine",)),), exclude=(("sector", ("cork",)), ("country", ("cn",)))),
         lambda c: "wine" in c["sector"] and "cork" not in c["sector"] and c["country"] != "cn"),
        (VectorFilter(include=(("city", ("nowhere",)),)), lambda c: False),
        (VectorFilter(include=(("country", ()),), exclude=(("city", ()),)), lambda c: True),  # empty fields filter nothing
    ]
    for flt, pred in cases:
        allowed = where(n, pred)
        assert store.count(flt) == len(allowed), flt
        scores, ids = store.search(q, 10, flt)
        assert set(i // 16 for i in ids.tolist()) <= set(allowed) and len(ids) == min(10, len(allowed)), flt
        assert_near(store, ids, brute(vectors, q, allowed, 10))
        assert list(scores) == sorted(scores, reverse=True)


def test_k_results_come_back_after_filtering(make):
    n = 400
    store, vectors = filled(make, n)
    broad = VectorFilter(include=(("country", ("pt",)),))  # half the vectors
    narrow = VectorFilter(include=(("city", ("city-4",)),), exclude=(("record", ("rec-2",)),))
    for flt, pred in ((broad, lambda c: c["country"] == "pt"),
                      (narrow, lambda c: c["city"] == "city-4" and c["record"] != "rec-2")):
        allowed = where(n, pred)
        _, ids = store.search(vectors[0], 10, flt)
        assert len(ids) == 10 and set(i // 16 for i in ids.tolist()) <= set(allowed)
        _, ids = store.search(vectors[0], 1000, flt)
        assert sorted(ids.tolist()) == [i * 16 for i in allowed]  # more asked than allowed: all of them


def test_fetch_in_the_order_asked(make):
    store, vectors = filled(make, 40)
    got = store.fetch([16 * 5, 0, 16 * 39, 16 * 5])
    assert got.shape == (4, DIM)
    assert np.allclose(got, vectors[[5, 0, 39, 5]], atol=0.02)
    with pytest.raises(KeyError):
        store.fetch([16 * 5, 3])


def test_save_and_open_round_trip(make, tmp_path):
    store, vectors = filled(make, 120)
    store.delete(np.array([16 * 2]))
    flt = VectorFilter(include=(("sector", ("tourism",)),), exclude=(("country", ("pt",)),))
    before = [store.search(vectors[i], 10, f) for i in (0, 9) for f in (None, flt)]
    store.save(tmp_path, "dense-raw")
    opened = open_vector_store(tmp_path, "dense-raw")
    assert (opened.kind, opened.dim, len(opened)) == (store.kind, DIM, 119)
    after = [opened.search(vectors[i], 10, f) for i in (0, 9) for f in (None, flt)]
    for (s1, i1), (s2, i2) in zip(before, after):
        assert i1.tolist() == i2.tolist() and np.allclose(s1, s2, atol=1e-5)
    assert opened.count(flt) == store.count(flt)
    with pytest.raises(FileNotFoundError):
        open_vector_store(tmp_path, "dense-other")


def test_an_opened_faiss_store_is_copied_on_write(tmp_path):
    """Opened memory-mapped from one generation, changed, saved into the next: the first stays as it was."""
    for exact_max in (1_000_000, 8):
        store = FaissVectorStore(DIM, exact_max=exact_max)
        vectors = clustered(100)
        store.upsert(np.arange(100) * 16, vectors, [columns_of(i) for i in range(100)])
        old, new = tmp_path / f"old-{exact_max}", tmp_path / f"new-{exact_max}"
        old.mkdir(), new.mkdir()
        store.save(old, "d")
        opened = open_vector_store(old, "d")
        opened.upsert(np.array([16 * 500]), vectors[:1], [{"country": "es"}])
        opened.delete(np.array([16]))
        opened.save(new, "d")
        again = open_vector_store(old, "d")
        assert len(again) == 100 and again.count(VectorFilter(include=(("country", ("es",)),))) == 0
        later = open_vector_store(new, "d")
        assert len(later) == 100 and later.search(vectors[0], 2)[1].tolist() in ([0, 16 * 500], [16 * 500, 0])


def test_tombstones_are_compacted(tmp_path):
    store = FaissVectorStore(DIM, exact_max=8, compact_share=0.25)
    vectors = clustered(400)
    store.upsert(np.arange(400) * 16, vectors, [columns_of(i) for i in range(400)])
    store.delete(np.arange(0, 400, 3) * 16)  # a third: past the share, rebuilt without them
    assert len(store) == len(store._ids) == 266 and store.kind == "hnsw-sq8"
    flt = VectorFilter(include=(("country", ("cn",)),))
    allowed = [i for i in where(400, lambda c: c["country"] == "cn") if i % 3]
    assert store.count(flt) == len(allowed)
    assert_near(store, store.search(vectors[1], 5, flt)[1], brute(vectors, vectors[1], allowed, 5))


def test_hnsw_recall_against_exact(make):
    """recall@10 of each store against brute force on clustered vectors, unfiltered and under a
    broad (~50%) and a narrow (~2%) filter."""
    n = 3000
    store, vectors = filled(make, n, seed=1)
    rng = np.random.default_rng(7)
    queries = unit(vectors[rng.integers(0, n, 40)] + (0.3 / np.sqrt(DIM)) * rng.standard_normal((40, DIM)))
    for flt, pred in ((None, lambda c: True),
                      (VectorFilter(include=(("country", ("pt",)),)), lambda c: c["country"] == "pt"),
                      (VectorFilter(include=(("city", ("city-3",)), ("kind", ("cluster",)))),
                       lambda c: c["city"] == "city-3" and c["kind"] == "cluster")):
        allowed = where(n, pred)
        recall = np.mean([len(set(store.search(q, 10, flt)[1].tolist()) & set(brute(vectors, q, allowed, 10))) / 10
                          for q in queries])
        assert recall >= 0.95, (flt, recall)


@pytest.mark.parametrize("value", ['say "hi"', "back\\slash", '" or true or "', "x\\\" or id >= 0 or \\\"", "it's",
                                   "línea\nnova 中文", "[]", "a\\"])
def test_values_with_quotes_cannot_break_or_widen_a_filter(make, value):
    store = make()
    vectors = clustered(6)
    cols = [{"record": value, "city": value, "sector": [value, "x"]}] + [{"record": f"r{i}", "city": "plain", "sector": ["x"]}
                                                                          for i in range(1, 6)]
    store.upsert(np.arange(6) * 16, vectors, cols)
    for col in ("record", "city", "sector"):
        only = VectorFilter(include=((col, (value,)),))
        assert store.count(only) == 1
        assert store.search(vectors[3], 6, only)[1].tolist() == [0]
        assert store.count(VectorFilter(exclude=((col, (value,)),))) == 5
    assert store.count(VectorFilter(include=(("city", (value + "x",)),))) == 0


def test_bad_input_is_refused_and_changes_nothing(make):
    store, vectors = filled(make, 10)
    with pytest.raises(ValueError, match="dimensions|must be"):
        store.upsert(np.array([999]), np.ones((1, DIM + 1)), [{}])
    with pytest.raises(ValueError, match="twice"):
        store.upsert(np.array([999, 999]), vectors[:2], [{}, {}])
    with pytest.raises(ValueError, match="unknown filter column"):
        store.upsert(np.array([999]), vectors[:1], [{"colour": "red"}])
    with pytest.raises(ValueError, match="unknown filter column"):
        store.search(vectors[0], 3, VectorFilter(include=(("colour", ("red",)),)))
    assert len(store) == 10 and store.search(vectors[0], 1)[1].tolist() == [0]


@pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus / milvus-lite not installed")
def test_pruned_generations_drop_their_milvus_collections(milvus_url, tmp_path):
    """A full build makes a new collection; once the generation referring to the old one is pruned,
    the old collection is dropped, and the collection still referred to stays."""
    from index import _storage
    from index._milvus import _client

    refs = []
    for _ in range(3):
        store = new_vector_store(DIM, milvus_url, label="gen")
        store.upsert(np.arange(3), clustered(3), [{}, {}, {}])
        tmp = _storage.new_generation_dir(tmp_path)
        store.save(tmp, "dense-raw")
        _storage.commit_generation(tmp)
        refs.append(store.collection)
    held = set(_client(milvus_url).list_collections())
    kept = {ref for gen in tmp_path.glob("gen-*") for ref in [json.loads((gen / "dense-raw.json").read_text())["collection"]]}
    assert len(kept) == 2 and refs[2] in kept  # the current generation and one before it
    assert [ref in held for ref in refs] == [ref in kept for ref in refs]  # the pruned one's collection is gone
    reopened = open_vector_store(_storage.current_generation(tmp_path), "dense-raw")
    assert len(reopened) == 3 and reopened.collection == refs[2]
    shutil.rmtree(tmp_path)


@pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus / milvus-lite not installed")
def test_the_engine_on_milvus_ranks_as_on_faiss(milvus_url, encoder, tmp_path):
    """CPC_VECTOR_URL set: the engine builds, filters, updates, saves and loads through Milvus, and
    ranks the fictional records exactly as with the exact FAISS store."""
    from corpus import Organisation, load_records
    from index import Filters, SearchConfig, SearchEngine

    from conftest import DATA

    records = load_records(DATA / "fictional.jsonl").records
    on_faiss = SearchEngine.build(records, encoder)
    on_milvus = SearchEngine.build(records, encoder, SearchConfig(vector_url=milvus_url))
    assert on_milvus.raw.kind == on_milvus.manifest["index_type"] == "milvus"
    queries = [("cork stoppers", None), ("moldes de injeção", Filters(countries=("CN",))), ("葡萄酒", Filters(exclude_ids=("test-wine-coop",))),
               ("partners", Filters(sectors=("wine", "cork"), exclude_countries=("CN",)))]

    def ranking(engine, query, filters):
        return [(h.record.id, round(h.dense, 4)) for h in engine.search(query, filters, limit=6, mode="dense").hits]

    for query, filters in queries:
        assert ranking(on_milvus, query, filters) == ranking(on_faiss, query, filters)
    robot = Organisation.model_validate({
        "id": "test-robot-lab", "kind": "institution", "name": "Test Robot Lab", "country": "CN", "city": "Shenzhen",
        "sectors": ["electronics"], "lang": "en", "description": "A fictional test laboratory building industrial robots."})
    on_milvus.upsert([robot])
    assert on_milvus.search("工业机器人", limit=1).hits[0].record.id == "test-robot-lab"
    on_milvus.delete(["test-cork-lab"])
    on_milvus.save(tmp_path)
    loaded = SearchEngine.load(tmp_path, encoder, SearchConfig(vector_url=milvus_url))
    assert loaded.raw.collection == on_milvus.raw.collection and len(loaded.raw) == len(on_milvus.raw)
    assert "test-cork-lab" not in [h.record.id for h in loaded.search("cork", limit=10, mode="dense").hits]
    assert loaded.search("robots", Filters(cities=("shenzhen",)), limit=1).hits[0].record.id == "test-robot-lab"


@pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus / milvus-lite not installed")
def test_a_generation_whose_collection_is_gone_asks_for_a_rebuild(milvus_url, tmp_path):
    store = new_vector_store(DIM, milvus_url, label="gone")
    store.save(tmp_path, "dense-raw")
    store.drop()
    with pytest.raises(LookupError, match="rebuild"):
        open_vector_store(tmp_path, "dense-raw")


def test_cpc_vector_url_is_checked_when_read(monkeypatch):
    from pydantic import ValidationError

    from assistant.settings import Settings

    for url in ("milvus://vectors.internal:19530", "milvus-lite:///srv/cpc/vectors.db", "var/vectors.db"):
        monkeypatch.setenv("CPC_VECTOR_URL", url)
        assert Settings().vector_url == url
    monkeypatch.setenv("CPC_VECTOR_URL", " ")
    assert Settings().vector_url is None  # blank: FAISS
    monkeypatch.setenv("CPC_VECTOR_URL", "postgres://db/vectors")
    with pytest.raises(ValidationError, match="milvus://host:port"):
        Settings()
    with pytest.raises(ValueError, match="neither"):
        new_vector_store(DIM, "postgres://db/vectors")


# -- FAISS HNSW: later writes go to an exact delta; the saved HNSW file is shared by link -------
def test_hnsw_writes_go_to_an_exact_delta_and_the_next_generation_links_the_index(tmp_path):
    import os

    store = FaissVectorStore(DIM, exact_max=8, exact_filtered_max=4, delta_min=50)
    vectors = clustered(300, seed=3)
    store.upsert(np.arange(300, dtype=np.int64) * 16, vectors, [columns_of(i) for i in range(300)])
    first = tmp_path / "gen-1"
    first.mkdir()
    store.save(first, "dense")
    opened = open_vector_store(first, "dense")
    assert opened.kind == "hnsw-sq8" and opened.index.ntotal == 300

    # replace record 0's vector, add two new ones: the HNSW index is untouched, the delta holds them
    fresh = clustered(3, seed=99)
    opened.upsert(np.array([0, 300 * 16, 301 * 16]), fresh, [columns_of(0), columns_of(300), columns_of(301)])
    assert opened.index.ntotal == 300 and len(opened._delta) == 3 and len(opened) == 302
    for j, vid in enumerate([0, 300 * 16, 301 * 16]):
        scores, ids = opened.search(fresh[j], 5)
        assert ids[0] == vid and scores[0] == pytest.approx(1.0, abs=1e-5)  # exact, from the delta
        np.testing.assert_allclose(opened.fetch([vid])[0], fresh[j], atol=1e-6)
    # a filter applies to the delta too: record 300's vector is PT, record 301's CN
    only_cn = VectorFilter(include=(("country", ("cn",)),))
    assert 300 * 16 not in opened.search(fresh[1], 50, only_cn)[1].tolist()
    assert opened.search(fresh[2], 1, only_cn)[1].tolist() == [301 * 16]
    assert opened.count(only_cn) == 151

    second = tmp_path / "gen-2"
    second.mkdir()
    opened.save(second, "dense")
    assert os.stat(second / "dense.faiss").st_ino == os.stat(first / "dense.faiss").st_ino  # linked, not rewritten
    again = open_vector_store(second, "dense")
    assert len(again) == 302 and again.search(fresh[1], 1)[1].tolist() == [300 * 16]
    assert again.search(vectors[0], 300)[1].tolist().count(0) == 1  # the old vector of id 0 is gone

    # past delta_min the delta joins the HNSW index in a rebuild, and the file is written anew
    more = clustered(60, seed=7)
    again.upsert(np.arange(400, 460, dtype=np.int64) * 16, more, [columns_of(i) for i in range(400, 460)])
    assert len(again._delta) == 0 and again.index.ntotal == 362 and len(again) == 362
    third = tmp_path / "gen-3"
    third.mkdir()
    again.save(third, "dense")
    assert os.stat(third / "dense.faiss").st_ino != os.stat(first / "dense.faiss").st_ino
    assert open_vector_store(third, "dense").search(more[5], 1)[1].tolist() == [405 * 16]


# -- several workers over one store: a worker's generation may lag behind the store ------------
def test_fetch_known_says_which_ids_are_held(make):
    store, vectors = filled(make, 20)
    held, got = store.fetch_known([3 * 16, 999_999, 7 * 16])
    assert held.tolist() == [True, False, True]
    tolerance = 1e-5 if store.kind in ("flat", "milvus") else 0.02  # HNSW keeps 8-bit codes
    np.testing.assert_allclose(got[[0, 2]], vectors[[3, 7]], atol=tolerance)
    assert not got[1].any()


@pytest.fixture(params=["faiss", "milvus-lite", "milvus-server"])
def vector_url(request, tmp_path):
    if request.param == "faiss":
        return None
    if request.param == "milvus-lite":
        if not HAVE_MILVUS:
            pytest.skip("pymilvus / milvus-lite not installed")
        return str(tmp_path / "lite" / "vectors.db")
    return request.getfixturevalue("milvus_server")


def test_two_workers_delete_upsert_and_search_over_one_store(vector_url, encoder, tmp_path):
    """Two engines over one index folder, as two workers of `cpc serve --workers` hold it: one deletes
    and adds records; the other, still on the older generation, keeps answering (no error for the
    vectors deleted under it on Milvus, which changes in place; new vectors ignored) until it loads
    the newer generation, which then agrees with the writer."""
    from corpus import Organisation, load_records
    from index import SearchConfig, SearchEngine, load_query_samples

    from conftest import DATA

    config = SearchConfig(vector_url=vector_url)
    root = tmp_path / "index"
    samples = list(load_query_samples())[::8]  # calibration from a share of its queries: quicker, as good here
    SearchEngine.build(load_records(DATA / "fictional.jsonl").records, encoder, config, query_samples=samples).save(root)
    writer = SearchEngine.load(root, encoder, config)
    reader = SearchEngine.load(root, encoder, config)
    queries = ["cork stoppers", "rolhas de cortiça", "软木塞", "moulds", "wine"]
    before = {q: [h.record.id for h in reader.search(q, limit=6).hits] for q in queries}
    assert "test-cork-lab" in before["cork stoppers"]

    writer.delete(["test-cork-lab"])
    robot = Organisation.model_validate({
        "id": "test-robot-lab", "kind": "institution", "name": "Test Robot Lab", "country": "CN", "city": "Shenzhen",
        "sectors": ["electronics"], "lang": "en", "description": "A fictional test laboratory building cork robots."})
    writer.upsert([robot])
    writer.save(root)
    for q in queries:  # the lagging worker: answers, every mode, nothing it does not hold
        for mode in ("hybrid", "dense", "bm25"):
            ids = [h.record.id for h in reader.search(q, limit=6, mode=mode).hits]
            assert "test-robot-lab" not in ids
    assert [h.record.id for h in reader.search("cork", limit=6, mode="bm25").hits][:1] == ["test-cork-lab"]

    caught_up = SearchEngine.load(root, encoder, config)
    for q in queries + ["robots"]:
        assert ([h.record.id for h in caught_up.search(q, limit=6).hits]
                == [h.record.id for h in writer.search(q, limit=6).hits])
    assert "test-cork-lab" not in [h.record.id for h in caught_up.search("cork stoppers", limit=6).hits]
