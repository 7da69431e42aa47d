"""Explain stage: the shown hits get their records and the query words they hold."""

import pytest

from corpus import load_records
from index import SearchEngine, analyse
from index._candidates import Hit, Shown
from index._explain import explain

from conftest import DATA


@pytest.fixture(scope="module")
def engine(encoder):
    return SearchEngine.build(load_records(DATA / "fictional.jsonl").records, encoder)


def test_records_are_read_and_terms_matched(engine):
    row = engine._rows.index("test-mould-works")
    hit = Hit(Shown("test-mould-works", "CN"), 1.0, 0.5, 0.5, row=row)  # type: ignore[arg-type]
    a = analyse("injection moulds")
    [done] = explain([hit], engine.records, engine._bm25, a)
    assert done.record.name and done.record.sectors == ["moulds", "plastics"]
    assert "moulds" in done.terms or "mould" in " ".join(done.terms)


def test_without_keywords_only_the_record_is_read(engine):
    row = engine._rows.index("test-cork-lab")
    hit = Hit(Shown("test-cork-lab", "PT"), 1.0, 0.5, 0.0, row=row)  # type: ignore[arg-type]
    [done] = explain([hit], engine.records, None, analyse("cortiça"))
    assert done.record.country == "PT" and done.terms == []
