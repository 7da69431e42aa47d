"""Derived sectors: free-form labels and descriptions mapped to taxonomy sectors, with the real encoder."""

import pytest

from corpus import Organisation
from index import SearchEngine
from index._sectors import SECTOR_VID_BASE, SectorMapper, sector_passage, sector_words, source_labels


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


def test_a_generic_conjunct_of_a_placed_label_is_not_read_alone(mapper):
    # alone, "serviços" is closest to legal services by embeddings; in "ambiente e serviços" the
    # glossary already placed the label (Mota-Engil's labels had made it a law firm)
    assert mapper.map_labels(["serviços"]).keys() == {"legal-services"}
    found = {d.sector for d in mapper.map_record(_org(country="PT", sector_labels="Construção; ambiente e serviços"))}
    assert found == {"construction", "environment"}
    # a label the glossary places nowhere is still read by its conjuncts
    found = {d.sector: d for d in mapper.map_record(_org(country="PT", sector_labels="estruturas metálicas e caixilharia"))}
    assert "metalworking" in found and found["metalworking"].source == "label-embedding"


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


# -- a record reached in another language than its own (sector passage, keyword words) ------------

def _mould_maker():
    return _org(id="cn-mould-maker", name="示例精密模具有限公司", sectors=["注塑模具"], city="Ningbo",
                description="一家位于宁波的企业，为家电和汽车行业设计并生产注塑模具。")


def _others():
    return [
        _org(id="cn-tea-house", name="示例茶叶贸易公司", sectors=["茶叶贸易"], description="一家经营乌龙茶的贸易公司。"),
        _org(id="cn-textile-mill", name="示例纺织有限公司", sectors=["纺织"], description="一家生产棉布和化纤面料的纺织厂。"),
        _org(id="pt-wine-estate", country="PT", lang="pt", name="Quinta Exemplo", sectors=["vinhos do Douro"],
             description="Uma quinta familiar no Douro que produz vinho do Porto."),
    ]


def test_sector_words_and_passage_name_the_derived_sectors_in_three_languages():
    words = sector_words(["moulds"], synonyms=False)
    assert "Moulds and tooling" in words and "Moldes e ferramentas especiais" in words and "模具" in words
    assert "toolmaking" not in words and "toolmaking" in sector_words(["moulds"])
    text = sector_passage(_mould_maker(), ["moulds"])
    assert text.startswith("示例精密模具有限公司") and "Moulds and tooling" in text and "company" in text
    assert sector_passage(_mould_maker(), []) == ""  # nothing derived: no second passage


@pytest.fixture(scope="module")
def bridged(encoder):
    return SearchEngine.build([_mould_maker(), *_others()], encoder)


def test_a_record_written_in_chinese_is_found_by_an_english_question_through_its_sector_words(bridged, tmp_path):
    vids = bridged.vids["cn-mould-maker"]
    assert len(vids) == 2 and vids[-1] == SECTOR_VID_BASE + bridged.seq["cn-mould-maker"]  # description, sector passage
    assert set(bridged.lang_slots) == {"pt", "zh", "en"}  # the sector passage takes no language slot
    result = bridged.search("tooling makers", limit=2)
    top = result.hits[0]
    assert top.record.id == "cn-mould-maker"
    assert "tooling" in top.terms  # only its derived sector's English label says so: its own text is Chinese
    assert top.record.description.startswith("一家位于宁波")  # the record shows what its source wrote
    bridged.save(tmp_path)
    loaded = SearchEngine.load(tmp_path, bridged.encoder)
    assert loaded.vids["cn-mould-maker"] == vids
    assert loaded.search("tooling makers", limit=1).hits[0].record.id == "cn-mould-maker"


def test_the_sector_passage_lifts_a_record_a_foreign_question_reads_far_from(bridged):
    """Its score is the best of its passages: the sector passage, in English too, reads closer to
    an English question than the Chinese description does."""
    from index._retrieve import exact_dense

    row = bridged._columns.row_of["cn-mould-maker"]
    qv = bridged.encode_query("injection mould maker", "en", False)
    vids = bridged.vids["cn-mould-maker"]
    held, vectors = bridged.raw.fetch_known(vids)
    sims = vectors @ qv
    assert sims[1] > sims[0]  # the sector passage beats the description for this question
    assert exact_dense(bridged, qv, [row], False)[row] == pytest.approx(float(sims.max()), abs=1e-5)


def test_an_english_question_reaches_a_chinese_only_record_through_the_api(encoder, tmp_path_factory):
    import httpx
    from conftest import LiveServer

    from assistant.app import create_app
    from assistant.settings import Settings
    from corpus import record_json
    from index import Catalog

    root = tmp_path_factory.mktemp("bridged-api")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(record_json(r) + "\n" for r in [_mould_maker(), *_others()]), encoding="utf-8")
    catalog = Catalog(root / "var", encoder)
    catalog.open(corpus)
    try:
        with LiveServer(create_app(Settings(data_dir=root / "var", admin_token=None), catalog)) as server:
            body = httpx.post(f"{server.url}/api/v1/search", json={"query": "tooling makers", "limit": 3},
                              timeout=60).json()
    finally:
        catalog.close()
    first = body["results"][0]
    assert first["id"] == "cn-mould-maker", body["results"]
    assert "tooling" in first["why"]["terms"]
