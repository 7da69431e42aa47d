"""The console's posts page (/staff/posts) in headless Chromium: it counts members' posts waiting in
the moderation queue, staff publish one through the form, and it is searchable at once.
Every post here is fictional."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from test_web_browser import expect, watch

KEY = "posts-staff-key"
SOON = (dt.date.today() + dt.timedelta(days=60)).isoformat()


@pytest.fixture(scope="module")
def site(shipped_catalog, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("posts-page-state"), admin_token=KEY), shipped_catalog)
    with LiveServer(app) as live:
        yield live


def member_post(site, title: str) -> str:
    with httpx.Client(base_url=site.url, timeout=120) as client:
        sid = client.post("/api/v1/chat", json={"text": "Olá"}).json()["session_id"]
        r = client.post("/api/v1/posts", json={
            "session_id": sid, "type": "distribution", "lang": "pt", "title": title, "side_sought": "CN", "closes": SOON,
            "description": "Produtor fictício de azeite procura distribuidor ou agente na China.", "sectors": ["azeite"]})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def test_staff_review_and_publish_posts_in_the_console(browser, site, tmp_path):
    shots = Path(os.environ.get("CPC_SCREENSHOTS", tmp_path))
    approved, rejected = member_post(site, "Distribuidor de azeite na China (A)"), member_post(site, "Azeite (B)")
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 1000})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/staff")
    page.get_by_role("link", name="Opportunity posts").click()
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body[data-loaded=true]")).to_be_visible()
    expect(page.locator("#pending-note")).to_have_text("2 member posts waiting.")  # reviewed in the moderation queue
    page.screenshot(path=str(shots / "staff-posts-en.png"), full_page=True)
    for post_id, verb, body in ((approved, "approve", {}), (rejected, "reject", {"reason": "falta a região de origem"})):
        r = httpx.post(f"{site.url}/api/v1/staff/posts/{post_id}/{verb}", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200, r.text  # the per-kind routes keep working beside the queue
    page.reload()
    expect(page.locator(f"#live-table tr[data-id='{approved}']")).to_be_visible()
    expect(page.locator("#pending-note")).to_have_text("0 member posts waiting.")
    form = page.locator("#publish-form")
    form.get_by_label("Type").select_option("tech_offer")
    form.get_by_label("Title").fill("Fictional cork insulation technology for licensing")
    form.get_by_label("Description").fill("A fictional Portuguese lab offers a cork-based insulation panel process to Chinese builders.")
    form.get_by_label("Sectors (comma-separated)").fill("cork, construction")
    form.get_by_label("Side sought").select_option("CN")
    form.get_by_label("Closes").fill(SOON)
    form.get_by_role("button", name="Publish").click()
    expect(page.locator("#live-table")).to_contain_text("Fictional cork insulation technology")
    assert problems == []
    ctx.close()
    found = httpx.post(f"{site.url}/api/v1/search", timeout=120,
                       json={"query": "cork insulation", "filters": {"type": ["tech_offer"]}}).json()
    assert [r["title"] if "title" in r else r["name"] for r in found["results"]] == ["Fictional cork insulation technology for licensing"]
    states = {p["id"]: p for p in httpx.get(f"{site.url}/api/v1/staff/posts", headers={"Authorization": f"Bearer {KEY}"}).json()["posts"]}
    assert states[approved]["status"] == "published" and states[rejected]["reason"] == "falta a região de origem"
