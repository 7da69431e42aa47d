"""Opportunity map and unmet demand (assistant/_opportunities.py, routes in _opportunities_api.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from assistant import _opportunities as opp
from conftest import STAFF_KEY

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}


@pytest.fixture(scope="module")
def pairs(shipped_engine):
    return opp.candidate_pairs(shipped_engine, "en")


def test_the_map_holds_cross_border_pairs_with_reasons_best_first(shipped_engine, pairs):
    found = opp.opportunity_map(shipped_engine, [], "en", pairs=pairs)
    assert len(found) >= 20
    scores = [o.score + (0.05 if o.mutual else 0) for o in found]
    assert scores == sorted(scores, reverse=True)
    records = shipped_engine.records
    for o in found:
        assert records[o.a].country != records[o.b].country and o.a < o.b
        assert o.why and all(r for r in o.why.values())
    assert len({(o.a, o.b) for o in found}) == len(found)  # a pair found from both sides counts once
    # the top of the map pairs members of one trade or of linked trades on the two sides
    top = found[:10]
    assert sum(1 for o in top if o.mutual) >= 5
    chart = opp.by_sector_pair(found, "pt")
    assert sum(c["pairs"] for c in chart) == len(found) and chart[0]["pairs"] >= chart[-1]["pairs"]


def test_the_map_holds_matches_only(shipped_engine, pairs):
    """A member's partners past its matches are shown "less close" in search; on the map they would
    read as opportunities, so they are left out."""
    matched, less_close = set(), set()
    for rid in shipped_engine.records:
        for hit in shipped_engine.matches(rid, limit=5, lang="en").hits:
            (less_close if hit.less_close else matched).add(frozenset((rid, hit.record.id)))
    assert less_close  # the shipped corpus has some: the check below can fail
    assert {frozenset((o.a, o.b)) for o in pairs} <= matched


def test_pairs_somebody_started_leave_the_map(shipped_engine, pairs, store):
    first = opp.opportunity_map(shipped_engine, [], "en", pairs=pairs)[0]
    lead_id = opp.propose(store, shipped_engine, first.a, first.b, "en")
    lead = store.lead(lead_id)
    assert {o["id"] for o in lead["organisations"]} == {first.a, first.b} and lead["channel"] == "staff"
    after = opp.opportunity_map(shipped_engine, store.leads(), "en", pairs=pairs)
    assert (first.a, first.b) not in {(o.a, o.b) for o in after}
    # a user's request about one member, made by someone from the other member, starts the pair too
    second = after[0]
    other = shipped_engine.records[second.b]
    store.add_lead("web-1", "web", second.a, "x", "en", "hello", asker_org=other.name.upper())
    assert (second.a, second.b) not in {(o.a, o.b) for o in opp.opportunity_map(shipped_engine, store.leads(), "en", pairs=pairs)}


def test_unmet_demand_groups_by_sector_side_and_language_per_day():
    day = 86400
    t0 = time.mktime((2026, 11, 2, 12, 0, 0, 0, 0, 0))
    rows = [{"created": t0, "lang": "pt", "query": "fabricantes de drones na China"},
            {"created": t0 + 60, "lang": "pt", "query": "drones agrícolas na China"},
            {"created": t0 + day, "lang": "en", "query": "drone makers in China"},
            {"created": t0 + day, "lang": "zh", "query": "葡萄牙的无人机企业"},
            {"created": t0 + 2 * day, "lang": "en", "query": "asdf qwerty"}]
    out = opp.unmet_demand(rows, "en")
    assert out["total"] == 5 and len(out["days"]) == 3
    assert sum(sum(v.values()) for v in out["series"].values()) == 5
    top = out["groups"][0]
    assert top["count"] == 2 and top["lang"] == "pt" and top["side"] == "CN" and len(top["examples"]) == 2
    assert any(g["sector"] == "" for g in out["groups"])  # no sector recognised: kept, not dropped


def test_staff_routes(live_api):
    with httpx.Client(base_url=live_api.url, timeout=120) as c:
        assert c.get("/api/v1/staff/opportunities").status_code == 401
        r = c.get("/api/v1/staff/opportunities", params={"lang": "zh", "limit": 5}, headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["lang"] == "zh" and len(body["opportunities"]) == 5 and body["by_sector_pair"]
        top = body["opportunities"][0]
        r = c.post("/api/v1/staff/opportunities/introduce", json={"a": top["a"]["id"], "b": top["b"]["id"]}, headers=AUTH)
        assert r.status_code == 201 and r.json()["lead_id"]
        again = c.post("/api/v1/staff/opportunities/introduce", json={"a": top["b"]["id"], "b": top["a"]["id"]}, headers=AUTH)
        assert again.status_code == 409
        after = c.get("/api/v1/staff/opportunities", params={"lang": "zh", "limit": 5}, headers=AUTH).json()
        assert (top["a"]["id"], top["b"]["id"]) not in {(o["a"]["id"], o["b"]["id"]) for o in after["opportunities"]}
        for bad, status in (({"a": "nope", "b": top["a"]["id"]}, 404), ({"a": top["a"]["id"], "b": top["a"]["id"]}, 422),
                            ({"a": top["a"]["id"]}, 422), ({"a": "x", "b": "y", "extra": 1}, 422)):
            assert c.post("/api/v1/staff/opportunities/introduce", json=bad, headers=AUTH).status_code == status, bad
        c.post("/api/v1/search", json={"query": "fabricantes de aviões de papel em Marte"})
        r = c.get("/api/v1/staff/unmet-demand", params={"lang": "pt"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["total"] >= 0
        assert c.get("/api/v1/staff/unmet-demand", params={"days": 0}, headers=AUTH).status_code == 422
        page = c.get("/staff/map")
        assert page.status_code == 200 and "staff-map.js" in page.text and "Content-Security-Policy" in page.headers
