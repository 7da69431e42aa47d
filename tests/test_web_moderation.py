"""The moderation queue (/staff/moderation) in headless Chromium: the console's navigation shows how
many items wait; a member's profile and a member's post wait in one list, oldest first; staff
correct the post and approve it, and reject the profile with a reason written in English, which the
Portuguese member reads in the chat inside a Portuguese message, marked as the original. Screenshots
go to test-artifacts/ (or CPC_SCREENSHOTS). The firm and the post are fictional."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import httpx
import pytest

from conftest import ARTIFACTS
from test_web_browser import expect, watch
from test_web_join import KEY, site  # noqa: F401 (site: the app over its own copy of the index, as joining needs)

SOON = (dt.date.today() + dt.timedelta(days=60)).isoformat()


@pytest.fixture(scope="module")
def sent(site):
    """A Portuguese member's profile, then a Chinese member's post, both from the web chat."""
    with httpx.Client(base_url=site.url, timeout=120) as client:
        pt = client.post("/api/v1/chat", json={"text": "Olá"}).json()["session_id"]
        profile = client.post("/api/v1/profiles", json={
            "session_id": pt, "lang": "pt", "name": "Têxteis Exemplo Lda (teste)", "kind": "empresa", "country": "Portugal",
            "sectors": "têxteis técnicos", "offers": "Tecidos técnicos para vestuário de proteção.",
            "contact": "geral@texteis-exemplo.example", "consent": True})
        assert profile.status_code == 201, profile.text
        zh = client.post("/api/v1/chat", json={"text": "你好"}).json()["session_id"]
        post = client.post("/api/v1/posts", json={
            "session_id": zh, "type": "supplier", "lang": "zh", "title": "寻找葡萄牙软木供应商（测试）", "side_sought": "PT",
            "closes": SOON, "description": "虚构的宁波家居公司寻找葡萄牙软木颗粒供应商。", "sectors": ["软木"]})
        assert post.status_code == 201, post.text
    return {"profile": str(profile.json()["id"]), "post": post.json()["id"], "pt_session": pt}


def test_staff_decide_a_profile_and_a_post_in_one_queue(browser, site, sent):
    shots = Path(os.environ.get("CPC_SCREENSHOTS", ARTIFACTS))
    shots.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 1000})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/staff")
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    badge = page.locator("#moderation-count")
    expect(badge).to_have_text("2")
    expect(badge).to_have_attribute("aria-label", "2 waiting for review")
    page.locator("#moderation-link").click()  # the key carries over (the tab's session storage)
    expect(page.locator("body[data-loaded=true]")).to_be_visible()
    cards = page.locator("#queue > li")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_have_attribute("data-kind", "profile")  # sent first, waiting longest
    expect(cards.nth(1)).to_have_attribute("data-kind", "post")
    expect(page.locator("#counts")).to_have_text("2 waiting — profiles: 1, posts: 1.")
    post = page.locator(f"[data-kind=post][data-id='{sent['post']}']")
    expect(post).to_contain_text("Supplier search")
    expect(post.get_by_label("Title — the member's own words (Chinese)")).to_have_value("寻找葡萄牙软木供应商（测试）")
    page.screenshot(path=str(shots / "staff-moderation-en.png"), full_page=True)

    post.get_by_label("Title — the member's own words (Chinese)").fill("寻找葡萄牙软木颗粒供应商（测试）")
    post.get_by_role("button", name="Approve").click()
    expect(page.locator("#status")).to_have_text(f"Post {sent['post']} published.")
    expect(cards).to_have_count(1)

    profile = page.locator(f"[data-kind=profile][data-id='{sent['profile']}']")
    profile.get_by_role("button", name="Reject").click()
    expect(page.locator("#status")).to_have_text("Write the reason.")  # nothing sent without one
    profile.get_by_label("Reason (sent to the member)").fill("Please add your website so partners can check the firm.")
    profile.get_by_role("button", name="Reject").click()
    expect(page.locator("#status")).to_have_text(f"Profile {sent['profile']} rejected; the member was told.")
    expect(page.locator("#queue")).to_have_text("Nothing is waiting for review.")

    page.get_by_role("button", name="中文").click()  # every label of the page switches
    expect(page.locator("#queue-title")).to_have_text("待审核")
    expect(page.locator("#counts")).to_have_text("共0项待审核：资料0项，合作机会0项。")
    page.screenshot(path=str(shots / "staff-moderation-zh.png"), full_page=True)
    assert problems == []
    ctx.close()

    store = site.app.state.assistant.store
    assert store.post(sent["post"])["title"] == "寻找葡萄牙软木颗粒供应商（测试）" and store.post(sent["post"])["status"] == "published"
    told = httpx.get(f"{site.url}/api/v1/chat/messages", params={"session_id": sent["pt_session"]}).json()["messages"]
    (news,) = [m["text"] for m in told if "não foi aprovado" in m["text"]]
    assert "Please add your website" in news and "(original, em inglês)" in news
    actions = {(e["action"], e["target"]) for e in store.audit_entries()}
    assert {("post.approve", sent["post"]), ("profile.reject", sent["profile"])} <= actions
