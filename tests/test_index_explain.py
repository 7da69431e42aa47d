"""Explain stage: the shown hits get their records and the query words they hold."""

import pytest

from corpus import load_records
from index import analyse
from index._candidates import Hit, Shown
from index._explain import explain

from conftest import fictional_engine


@pytest.fixture(scope="module")
def engine(encoder, fictional_index_dir, tmp_path_factory):
    return fictional_engine(fictional_index_dir, tmp_path_factory.mktemp("explain") / "index", encoder)


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


def test_a_complement_is_named_only_when_what_flows_fits_the_record():
    from corpus import DEFAULT_CORPUS
    from index._explain import complement_holds, main_sector

    shipped = {r.id: r for r in load_records(DEFAULT_CORPUS).records}
    textile_city = shipped["cn-keqiao-china-textile-city"]
    assert "retail" in textile_city.sectors and main_sector(textile_city) == "textiles"
    assert not complement_holds(textile_city, ["wine"], "retail")  # a textile market does not buy wine
    assert complement_holds(shipped["cn-helan-mountain-wine-region"], ["cork"], "wine")  # wineries buy stoppers
    assert complement_holds(textile_city, ["wine"], "textiles")  # no link: not a value-chain claim, kept


def test_explain_drops_the_complements_that_do_not_hold(engine):
    from corpus import DEFAULT_CORPUS

    shipped = {r.id: r for r in load_records(DEFAULT_CORPUS).records}
    a = analyse("Somos exportadores de vinho portugueses e procuramos distribuidores na China")
    assert "wine" in a.needs.asker.sectors
    hit = Hit(Shown("cn-keqiao-china-textile-city", "CN"), 1.0, 0.5, 0.0, complements=["retail"])  # type: ignore[arg-type]
    [done] = explain([hit], shipped, None, a)
    assert done.complements == []
