"""Fusion stage: one score per candidate, the boosts that applied, and the fusions by name."""

import numpy as np
import pytest

from index import SearchConfig, analyse
from index._candidates import Candidates
from index._fuse import FUSIONS, fusion, weighted_sum

from conftest import fictional_engine


@pytest.fixture(scope="module")
def engine(encoder, fictional_index_dir, tmp_path_factory):
    return fictional_engine(fictional_index_dir, tmp_path_factory.mktemp("fuse") / "index", encoder)


def _cands(engine, dense, keyword=None):
    n = len(engine._rows)
    rows = list(range(n))
    kw = np.zeros(n) if keyword is None else np.asarray(keyword, float)
    return Candidates(rows, {r: dense[r] for r in rows}, kw, n)


def test_weighted_sum_adds_the_boosts_that_apply(engine):
    cfg = SearchConfig()
    n = len(engine._rows)
    cands = _cands(engine, [0.5] * n)
    hits = weighted_sum(cands, analyse("moldes na China, Zhejiang"), engine._columns, cfg, "hybrid")
    top = hits[0]
    assert top.record.id == "test-mould-works" and top.sectors == ["moulds"]
    assert {"country"} <= set(top.signals) and top.on_topic
    assert top.score == pytest.approx(0.5 + cfg.boost_sector + cfg.boost_country + cfg.boost_place)
    plain = [h for h in hits if h.record.id == "test-wine-coop"][0]
    assert plain.score == pytest.approx(0.5) and not plain.signals and not plain.on_topic
    assert all(h.row == engine._rows.index(h.record.id) for h in hits)


def test_mode_dense_and_bm25_are_the_raw_scores(engine):
    n = len(engine._rows)
    dense = [0.1 * i for i in range(n)]
    keyword = [0.0] * n
    keyword[0] = 1.0
    cands = _cands(engine, dense, keyword)
    a = analyse("moulds")
    by_dense = weighted_sum(cands, a, engine._columns, SearchConfig(), "dense")
    assert [h.score for h in by_dense] == sorted(dense, reverse=True)
    by_kw = weighted_sum(cands, a, engine._columns, SearchConfig(), "bm25")
    assert by_kw[0].score == 1.0 and by_kw[0].row == 0


def test_fusions_are_named():
    assert fusion("weighted") is weighted_sum and "weighted" in FUSIONS
    with pytest.raises(ValueError, match="unknown fusion 'nope'"):
        fusion("nope")
