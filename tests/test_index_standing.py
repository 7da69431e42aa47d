"""Standing queries (index/_standing.py): the numpy judgement of many kept searches against a few
records must be exactly what each search returns as matches among them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from index import Filters, analyse
from index._normalise import vocabulary_of
from index._standing import Need, _by_search, matches_among, supported

SAMPLES = Path(__file__).resolve().parents[1] / "index" / "data" / "query_samples.jsonl"


def need(engine, text: str, filters: Filters = Filters(), lang: str | None = None) -> Need:
    a = analyse(text, lang=lang, extra_places=engine.record_places, vocabulary=vocabulary_of(engine._columns))
    return Need.from_analysis(text, a, engine.encode_query(a.focus, a.lang, engine.config.calibrate), filters)


@pytest.fixture(scope="module")
def needs(shipped_engine):
    rows = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [(r["text"], r["lang"]) for r in rows[::6]]  # pt, zh and en, short and long, in and out of the corpus
    out = [need(shipped_engine, t, lang=lang) for t, lang in texts]
    out += [need(shipped_engine, "moldes China"), need(shipped_engine, "moulds", Filters(countries=("PT",))),
            need(shipped_engine, "industrial partners", Filters(countries=("CN",))),  # a browse within filters
            need(shipped_engine, "cork suppliers", Filters(countries=("PT", "CN"))),
            need(shipped_engine, "纺织 集群", Filters(kinds=("cluster",)))]
    return out


def test_the_shipped_engine_is_judged_in_numpy(shipped_engine):
    assert supported(shipped_engine)


def test_every_need_gets_what_its_search_returns_among_the_new_records(shipped_engine, needs):
    engine = shipped_engine
    n = len(engine._columns.ids)
    rng = np.random.default_rng(5)
    for new in (np.arange(n), np.sort(rng.choice(n, 12, replace=False)), np.array([0])):
        got = matches_among(engine, needs, new.tolist())
        want = [_by_search(engine, x, new) for x in needs]
        for x, g, w in zip(needs, got, want):
            assert g == w, x.query
    # the comparison is not empty: most needs have matches, some have none (out of corpus)
    everything = matches_among(engine, needs, list(range(n)))
    assert sum(bool(m) for m in everything) > len(needs) // 2
    assert any(not m for m in everything)


def test_another_judgement_falls_back_to_the_search(shipped_engine, needs):
    floor_engine = shipped_engine.__class__.__new__(shipped_engine.__class__)
    floor_engine.__dict__.update(shipped_engine.__dict__)
    floor_engine.config = dataclasses.replace(shipped_engine.config, judgement="floor")
    assert not supported(floor_engine)
    rows = list(range(len(shipped_engine._columns.ids)))
    got = matches_among(floor_engine, needs[:6], rows)
    assert got == [_by_search(floor_engine, x, np.asarray(rows)) for x in needs[:6]]


def test_nothing_new_or_no_needs_is_nothing(shipped_engine, needs):
    assert matches_among(shipped_engine, needs[:3], []) == [[], [], []]
    assert matches_among(shipped_engine, [], [0, 1]) == []
