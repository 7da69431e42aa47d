"""Retrieval stage: dense and keyword candidates of one query over a real FAISS index."""

import numpy as np
import pytest

from corpus import load_records
from index import Filters, SearchEngine, analyse, tokenize
from index._retrieve import keyword_candidates, keyword_scores, place_tokens, retrieve, second_of_keywords

from conftest import fictional_engine


@pytest.fixture(scope="module")
def engine(encoder, fictional_index_dir, tmp_path_factory):
    return fictional_engine(fictional_index_dir, tmp_path_factory.mktemp("retrieve") / "index", encoder)


def _run(engine, text, mode="hybrid", filters=None, need=10):
    a = analyse(text)
    mask = engine.allowed_mask(filters)
    n = len(engine._rows) if mask is None else int(mask.sum())
    qv = engine.encode_query(a.focus, a.lang, True) if mode != "bm25" else None
    timings = {}
    return retrieve(engine, a, len(engine._rows), mask, n, engine.vector_filter(filters), need, mode, qv, True,
                    100, 6.0, timings), timings


def test_hybrid_candidates_hold_every_record_with_dense_scores(engine):
    cands, timings = _run(engine, "injection moulds Ningbo")
    assert sorted(cands.rows) == list(range(len(engine._rows)))  # a small index: every record is a candidate
    assert set(cands.dense) == set(cands.rows) and "keyword" in timings
    best = max(cands.dense, key=cands.dense.get)
    assert engine._rows[best] == "test-mould-works"
    assert cands.total == len(engine._rows)


def test_bm25_candidates_are_only_rows_with_a_keyword_score(engine):
    cands, _ = _run(engine, "moulds", mode="bm25")
    assert cands.dense == {} and cands.rows
    assert all(cands.keyword[r] > 0 for r in cands.rows) and cands.total == len(cands.rows)
    assert engine._rows[cands.rows[0]] == "test-mould-works"


def test_filters_hold_inside_retrieval(engine):
    cands, _ = _run(engine, "cork", filters=Filters(countries=("CN",)))
    assert {engine._rows[r] for r in cands.rows} <= {"test-mould-works", "test-ev-zone", "test-solar-park"}
    assert cands.total == 3


def test_keyword_scores_are_scaled_by_the_best_or_the_floor(engine):
    keyword, rows = keyword_scores(engine._bm25, tokenize("moulds"), len(engine._rows), None, 1e-9)
    assert keyword.max() == pytest.approx(1.0) and list(rows) == list(np.flatnonzero(keyword > 0))
    floored, _ = keyword_scores(engine._bm25, tokenize("moulds"), len(engine._rows), None, 1e6)
    assert floored.max() < 1e-3  # a weak best match does not look strong under a high floor
    none, rows = keyword_scores(engine._bm25, [], len(engine._rows), None, 6.0)
    assert not none.any() and len(rows) == 0


def test_a_place_named_in_one_language_finds_a_record_that_writes_it_in_another(encoder):
    from corpus import Organisation

    def org(rid, name, region, description):
        return Organisation.model_validate({"id": rid, "kind": "company", "name": name, "country": "CN",
                                            "region": region, "description": description})

    recs = [org("cn-tea-a", "示例茶业公司", "福建", "福建安溪的一家乌龙茶生产企业。"),
            # not "茶叶": an English question's "tea" is also searched as 茶叶 (index/_dictionary.py)
            org("cn-tea-b", "示例绿茶贸易公司", "浙江", "浙江杭州的一家绿茶贸易企业。"),
            org("cn-tea-c", "示例红茶公司", "云南", "云南的一家红茶和普洱茶企业。")]  # BM25 idf needs a third record
    small = SearchEngine.build(recs, encoder)
    a = analyse("tea growers in Fujian")
    assert "福建" in place_tokens(a) and "福建" not in a.tokens
    cands, _ = _run(small, "tea growers in Fujian")
    row = small._columns.row_of["cn-tea-a"]
    assert cands.keyword[row] > 0 and cands.keyword[small._columns.row_of["cn-tea-b"]] == 0


def test_keywords_read_while_the_encoders_work_give_the_same_candidates(encoder, fictional_index_dir, tmp_path,
                                                                        monkeypatch):
    """The search reads the keywords, and on a large generation the second signal of their best,
    before the query vector is in hand: the candidates and their scores are the ones read after it
    (the second signal's to float32's last bit: BLAS sums a row by its place in the batch)."""
    import index._second as second

    monkeypatch.setattr(second, "EXACT_MAX", 1)  # the second signal scores the candidates only, from its file
    eng = fictional_engine(fictional_index_dir, tmp_path / "index", encoder)
    assert not eng._second.exact
    n = len(eng._rows)
    for text, mask in (("injection moulds Ningbo", None), ("vinho do porto", None),
                       ("moulds", eng.allowed_mask(Filters(countries=("CN",))))):
        a = analyse(text)
        qv, sv = eng.encode_query(a.focus, a.lang, True), eng.encode_second(a.focus)
        allowed = n if mask is None else int(mask.sum())
        inline = retrieve(eng, a, n, mask, allowed, None, 10, "hybrid", qv, True, 100, 6.0, {}, sv, 20)
        early = keyword_candidates(eng, a, n, mask, 10, "hybrid", 100, 6.0)
        second_of_keywords(eng, early, sv, n)
        assert early.best and set(early.use) == set(early.best) and "keyword" in early.timings
        timings = {}
        read = retrieve(eng, a, n, mask, allowed, None, 10, "hybrid", qv, True, 100, 6.0, timings, sv, 20, early)
        assert (read.rows, read.dense, list(read.use)) == (inline.rows, inline.dense, list(inline.use))
        assert read.use == pytest.approx(inline.use, abs=1e-6)
        assert np.array_equal(read.keyword, inline.keyword) and {"keyword", "second"} <= set(timings)
