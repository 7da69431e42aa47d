"""Judgement stage: which hits are matches; pure, over hits and a query analysis."""

from corpus import Organisation
from index import Hit, analyse
from index._judge import apply_floor, is_match, judge_floor

FLOOR = {"score": 0.3, "dense": 0.4, "dense_off_sector": 0.5}


def _hit(rid, country, score, dense, on_topic=False):
    rec = Organisation(id=rid, kind="company", name=rid, country=country, description="x")
    return Hit(rec, score, dense, 0.0, on_topic=on_topic)


def test_the_asked_side_and_topic_make_a_match():
    a = analyse("moldes na China")
    assert is_match(_hit("a", "CN", 0.4, 0.3, on_topic=True), a, FLOOR)
    assert not is_match(_hit("b", "PT", 0.4, 0.3, on_topic=True), a, FLOOR)  # the asker's own side
    assert not is_match(_hit("c", "CN", 0.4, 0.3), a, FLOOR)  # another trade, not close
    assert is_match(_hit("d", "CN", 0.6, 0.6), a, FLOOR)  # another trade but reads very close


def test_the_other_side_follows_the_matches_for_a_plain_query():
    a = analyse("moldes China")
    hits = [_hit("cn", "CN", 0.5, 0.5, True), _hit("pt", "PT", 0.45, 0.5, True)]
    assert [h.record.id for h in apply_floor(hits, a, FLOOR)] == ["cn", "pt"]
    assert [h.record.id for h in apply_floor(hits, a, FLOOR, other_side=False)] == ["cn"]


def test_nothing_fits_gives_the_nearest_and_a_browse_is_not_judged():
    a = analyse("moldes China")
    hits = [_hit(str(i), "PT", 0.1, 0.1) for i in range(5)]
    judged = judge_floor(hits, a, FLOOR, filtered=False)
    assert judged.hits == [] and judged.total == 0 and [h.record.id for h in judged.nearest] == ["0", "1", "2"]
    browse = judge_floor(hits, analyse("partners"), FLOOR, filtered=True)
    assert browse.hits == hits and browse.total is None
    assert judge_floor(hits, a, None, filtered=False).hits == hits
