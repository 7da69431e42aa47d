"""The posts' core without HTTP: the chat dialogue's answers, the review, "my requests" statuses."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant import _posts as posts
from assistant._state import SessionState

SOON = (dt.date.today() + dt.timedelta(days=30)).isoformat()


@pytest.fixture
def desk(store):
    return posts.PostDesk(store, lambda: None)  # nothing here reads the index


@pytest.mark.parametrize("text, expected", [
    ("1", "rd_partner"), ("6.", "supplier"), ("Joint venture", "joint_venture"), ("技术需求", "tech_request"),
    ("oferta de tecnologia", "tech_offer"), ("7", None), ("talvez", None),
])
def test_the_type_is_read_from_a_number_or_its_label(text, expected):
    assert posts._type_of(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("2027-03-31", dt.date(2027, 3, 31)), ("31/03/2027", dt.date(2027, 3, 31)), ("2027年3月31日", dt.date(2027, 3, 31)),
    ("2027-02-30", None), ("next month", None),
])
def test_closing_dates_in_three_spellings(text, expected):
    assert posts._date_of(text) == expected


def test_sides_by_country_name_in_three_languages():
    assert posts._side_of("Portugal") == "PT" and posts._side_of("中国") == "CN" and posts._side_of("na China") == "CN"
    assert posts._side_of("Espanha") is None


def test_the_dialogue_collects_a_post_that_waits_for_review(desk, store):
    state = SessionState()
    question, chips = posts.start(state, "en")
    assert "Which type?" in question and len(chips) == 6
    answers = ["5", "Distributor for fictional ceramic tiles", "A fictional tile maker seeks a distributor in China.",
               "ceramic tiles, building materials", "China"]
    for answer in answers:
        reply, _, step = posts.handle(desk, state, answer, "wechat", "wx-abc")
    assert step == "post_closes"
    reply, _, step = posts.handle(desk, state, "2001-01-01", "wechat", "wx-abc")
    assert step == "post_closes" and "future date" in reply  # asked again, nothing stored
    assert store.posts() == []
    reply, _, step = posts.handle(desk, state, SOON, "wechat", "wx-abc")
    assert step == "post_submitted" and state.post_draft is None
    [row] = store.posts()
    assert (row["type"], row["side_sought"], row["status"], row["address"]) == ("distribution", "CN", "pending", "wx-abc")
    assert row["sectors"] == ["ceramic tiles", "building materials"]
    assert posts.posts_of(store, "wx-abc") == [{"id": row["id"], "type": "distribution", "title": row["title"],
                                                 "closes": SOON, "status": "pending", "reason": None, "lang": "en"}]


def test_cancel_in_any_language_drops_the_draft(desk, store):
    for word, lang in (("cancelar", "pt"), ("取消", "zh"), ("cancel", "en")):
        state = SessionState()
        posts.start(state, lang)
        posts.handle(desk, state, "1", "web", "s")
        reply, _, step = posts.handle(desk, state, word, "web", "s")
        assert step == "post_cancelled" and state.post_draft is None and reply == posts.say("cancelled", lang)
    assert store.posts() == []


def test_review_outcome_is_told_in_the_authors_language_and_expiry_shows_in_my_requests(desk, store):
    row = desk.submit({"type": "supplier", "lang": "zh", "title": "寻找软木供应商（虚构）", "description": "虚构的测试需求。",
                       "sectors": ["软木"], "side_sought": "PT", "closes": SOON}, "telegram", "tg-7")
    rejected = desk.review(row["id"], False, "缺少公司名称", "ana")
    assert desk.verdict(rejected) == "您的合作机会“寻找软木供应商（虚构）”未能发布。原因：缺少公司名称"
    assert desk.review(row["id"], True, None, "ana") is None  # reviewed once
    old = store.add_post({**row, "id": "post-old", "closes": "2020-01-01"}, "published", "telegram", "tg-7")
    statuses = {p["id"]: p["status"] for p in posts.posts_of(store, "tg-7")}
    assert statuses == {row["id"]: "rejected", old["id"]: "expired"}


def test_bad_posts_are_refused_before_anything_is_written(desk, store):
    with pytest.raises(ValueError, match="past"):
        desk.submit({"type": "supplier", "lang": "en", "title": "t", "description": "d", "side_sought": "PT",
                     "closes": "2001-01-01"}, "web", "s")
    with pytest.raises(ValueError):
        desk.submit({"type": "franchise", "lang": "en", "title": "t", "description": "d", "side_sought": "PT",
                     "closes": SOON}, "web", "s")
    assert store.posts() == []


def test_filters_type_reads_organisations_and_post_types():
    assert posts.wanted_types([]) == (True, None)
    assert posts.wanted_types(["post"]) == (False, list(posts.POST_TYPES))
    assert posts.wanted_types(["organisation", "supplier"]) == (True, ["supplier"])
