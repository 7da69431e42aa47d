"""Opportunity posts in the index: a post read as an asker, the posts' own small index, both ways
matching over the shipped organisations, and expiry by date. Real encoder, real FAISS."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from index import Post, PostIndex, organisations_for, post_analysis, post_record

FAR = dt.date(2099, 1, 1)


def cork_supplier_search(**kw) -> Post:
    """Fictional: a Ningbo homeware maker seeks Portuguese cork suppliers."""
    data = dict(id="post-cork", type="supplier", lang="zh", title="寻找葡萄牙软木原料供应商",
                description="我们是宁波的一家家居用品公司，寻找葡萄牙的软木颗粒和软木板供应商，用于生产软木地垫。",
                sectors=["软木", "家居用品"], side_sought="PT", closes=FAR)
    data.update(kw)
    return Post(**data)


def mould_offer(**kw) -> Post:
    """Fictional: a Portuguese mould maker offers conformal cooling to Chinese plastic-part makers."""
    data = dict(id="post-mould", type="tech_offer", lang="pt", title="Arrefecimento conformal para moldes de injeção",
                description="Oferecemos tecnologia de arrefecimento conformal por fabrico aditivo que reduz o tempo de ciclo "
                            "na injeção de peças plásticas; procuramos fabricantes de moldes chineses que a adotem ou licenciem.",
                sectors=["moldes", "fabrico aditivo"], side_sought="CN", closes=FAR)
    data.update(kw)
    return Post(**data)


@pytest.fixture(scope="module")
def post_index(shipped_engine):
    index = PostIndex(shipped_engine.encoder, shipped_engine.config, shipped_engine.calibration)
    index.sync([cork_supplier_search(), mould_offer(), mould_offer(id="post-old", closes=dt.date(2020, 1, 1))])
    return index


def test_a_post_is_an_asker_on_the_side_it_seeks():
    a = post_analysis(cork_supplier_search())
    assert a.countries == ["PT"]
    assert "supplier" in a.needs.roles
    assert "cork" in a.needs.asker.sectors or "cork" in a.sector_slugs
    offer = post_analysis(mould_offer())
    assert offer.countries == ["CN"] and "customer" in offer.needs.roles


def test_a_post_record_is_on_the_authors_side_with_its_type_and_deadline():
    rec = post_record(mould_offer())
    assert rec.country == "PT" and rec.name.startswith("Arrefecimento")
    assert rec.extra_fields()["post_type"] == "tech_offer" and rec.extra_fields()["closes"] == "2099-01-01"


def test_bad_posts_are_refused():
    with pytest.raises(ValidationError):
        cork_supplier_search(type="franchise")
    with pytest.raises(ValidationError):
        cork_supplier_search(side_sought="ES")
    with pytest.raises(ValidationError):
        cork_supplier_search(id="Post With Spaces")
    with pytest.raises(ValidationError):
        cork_supplier_search(title="")


def test_post_to_organisations_reaches_the_trade_on_the_side_sought(shipped_engine):
    found = organisations_for(shipped_engine, cork_supplier_search(), 5)
    ids = [h.record.id for h in found.hits]
    assert ids and all(h.record.country == "PT" for h in found.hits)
    assert {"pt-corticeira-amorim", "pt-apcor"} & set(ids[:3])
    moulds = [h.record.id for h in organisations_for(shipped_engine, mould_offer(), 5).hits]
    assert moulds and all(i.startswith("cn-") for i in moulds) and any("mould" in i for i in moulds[:3])


def test_organisation_to_posts_both_ways_and_never_an_expired_one(shipped_engine, post_index):
    assert set(post_index.posts) == {"post-cork", "post-mould"}  # the closed one never enters
    ningbo = post_index.for_organisation(shipped_engine.records["cn-ningbo-mould-capital"], 5, organisations=shipped_engine)
    assert [h.record.id for h in ningbo.hits][:1] == ["post-mould"]
    amorim = post_index.for_organisation(shipped_engine.records["pt-corticeira-amorim"], 5, organisations=shipped_engine)
    assert "post-cork" in [h.record.id for h in amorim.hits]  # found from the post's side: Amorim seeks no buyer
    # a day after its closing date a post is gone from every answer, even before the next sync
    later = post_index.search("moldes", None, 5, today=FAR + dt.timedelta(days=1))
    assert later is not None and later.hits == []


def test_search_over_posts_selects_types(post_index):
    both = {h.record.id for h in post_index.search("软木 供应商 模具", None, 10).hits}
    assert "post-cork" in both
    only = post_index.search("软木 供应商", ["tech_offer"], 10)
    assert "post-cork" not in {h.record.id for h in only.hits}


def test_an_empty_post_index_answers_none(shipped_engine):
    empty = PostIndex(shipped_engine.encoder, shipped_engine.config, shipped_engine.calibration)
    empty.sync([mould_offer(closes=dt.date(2000, 1, 1))])
    assert empty.engine is None and empty.search("moldes") is None
    assert empty.for_organisation(shipped_engine.records["pt-apcor"]) is None
