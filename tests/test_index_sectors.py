"""Derived sectors: free-form labels and descriptions mapped to taxonomy sectors, with the real encoder."""

import pytest

from corpus import Organisation
from index import SearchEngine
from index._sectors import SectorMapper, source_labels


def _org(**kw):
    base = {"id": "x-org", "kind": "company", "name": "X", "country": "CN", "description": "一家企业。"}
    return Organisation.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def mapper(encoder):
    return SectorMapper(encoder.encode)


def test_source_labels_are_kept_as_written_and_split():
    rec = _org(sectors="Indústria de moldes; plásticos", sector_labels=["高端装备制造、新材料"])
    assert "Indústria de moldes" in rec.sectors  # the schema keeps an unknown label as written
    labels = source_labels(rec)
    assert "Indústria de moldes" in labels and "高端装备制造" in labels and "新材料" in labels


def test_glossary_maps_labels_in_any_language(mapper):
    found = {d.sector: d for d in mapper.map_record(_org(sectors="Indústria de moldes; plásticos"))}
    assert found["moulds"].confidence == 0.9 and found["moulds"].source == "label"
    assert found["plastics"].confidence == 1.0  # "plásticos" is a taxonomy term: the schema made it a slug
    zh = {d.sector for d in mapper.map_record(_org(sector_labels="注塑模具制造、纺织面料"))}
    assert {"moulds", "textiles"} <= zh


def test_embeddings_place_a_label_the_glossary_does_not_know(mapper):
    found = mapper.map_labels(["estruturas metálicas"])  # no taxonomy term in it
    assert set(found) == {"metalworking"} and found["metalworking"].source == "label-embedding"
    assert 0.5 <= found["metalworking"].confidence < 0.9


def test_an_untagged_record_is_found_and_explained_by_its_labels(encoder, tmp_path):
    recs = [
        _org(id="cn-precision-parts", sectors=["注塑模具制造、精密加工"], city="Ningbo",
             description="一家位于宁波的企业，为汽车和家电行业生产精密零部件。"),
        _org(id="cn-tea-house", sectors=["茶叶贸易"], description="一家经营乌龙茶的贸易公司。"),
        _org(id="pt-wine-estate", country="PT", sectors=["vinhos do Douro"], lang="pt",
             description="Uma quinta familiar no Douro."),
    ]
    engine = SearchEngine.build(recs, encoder)
    result = engine.search("moldes de injeção na China", limit=3)
    top = result.hits[0]
    assert top.record.id == "cn-precision-parts" and top.sectors == ["moulds"]
    assert top.record.sectors == ["注塑模具制造、精密加工"]  # the source label stays on the record
    shown = engine.derived_sectors("cn-precision-parts")
    assert {"sector": "moulds", "confidence": 0.9, "source": "label"} in shown
    engine.save(tmp_path)
    loaded = SearchEngine.load(tmp_path, encoder)  # kept in the generation
    assert loaded.derived_sectors("cn-precision-parts") == shown
    assert loaded.search("moldes de injeção na China", limit=1).hits[0].sectors == ["moulds"]
