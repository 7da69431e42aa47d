"""The opportunity map page (/staff/map) in headless Chromium: both charts render from the live API,
"propose introduction" works, and screenshots are kept for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from conftest import ARTIFACTS, LiveServer
from test_web_browser import expect, watch

KEY = "map-staff-key"


@pytest.fixture(scope="module")
def site(shipped_catalog, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("map-state"), admin_token=KEY)
    app = create_app(settings, shipped_catalog)
    with LiveServer(app) as live:
        # questions that found nothing, on three days, for the unmet-demand chart
        store = app.state.assistant.store
        for q, lang in (("fabricantes de drones agrícolas na China", "pt"), ("drone makers in China", "en"),
                        ("葡萄牙的无人机企业", "zh"), ("empresas de satélites em Portugal", "pt"),
                        ("space satellite companies in Portugal", "en")):
            store.log_query("web", lang, q, 0, "203.0.113.7")
        store.flush_query_log()
        yield live


def test_map_page_renders_both_charts_and_proposes_an_introduction(browser, site):
    shots = Path(os.environ.get("CPC_SCREENSHOTS", ARTIFACTS))  # test-artifacts/, as the other browser tests
    shots.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 1000})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/staff")
    page.get_by_role("link", name="Opportunity map").click()
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body[data-loaded=true]")).to_be_visible()
    bars = page.locator("#pairs-chart svg rect")
    assert bars.count() >= 3
    expect(page.locator("#pairs-chart svg")).to_contain_text("↔")
    rows = page.locator("#pairs-table tbody tr")
    assert rows.count() >= 10
    first = rows.first.locator("td").first.inner_text()
    assert "↔" in first
    assert page.locator("#unmet-chart svg rect").count() >= 1
    expect(page.locator("#unmet-table")).to_contain_text("drone")
    page.screenshot(path=str(shots / "staff-map-en.png"), full_page=True)
    rows.first.get_by_role("button", name="Propose introduction").click()
    expect(rows.first).to_contain_text("Lead no.")
    # in Chinese: every label of the page switches, the charts are drawn again
    page.get_by_role("button", name="中文").click()
    expect(page.locator("#pairs-title")).to_have_text("尚未启动的合作（按行业组合）")
    expect(page.locator("body[data-loaded=true] #pairs-table tbody tr").first).to_be_visible()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "staff-map-zh.png"), full_page=True)
    assert problems == []
    ctx.close()


def test_a_wrong_key_brings_the_sign_in_back_with_the_reason(browser, site):
    """The sign-in the map, posts and moderation pages share (static/staff-common.js)."""
    ctx = browser.new_context(locale="en-GB")
    page = ctx.new_page()
    page.goto(site.url + "/staff/map")
    page.get_by_label("Staff key").fill("not-the-staff-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text("Wrong key.")
    expect(page.locator("#map-app")).to_be_hidden()
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body[data-loaded=true]")).to_be_visible()
    expect(page.locator("#signin")).to_be_hidden()
    ctx.close()


def test_a_late_refusal_of_the_first_key_does_not_undo_the_second_sign_in(browser, site):
    """Mistyped, then retyped at once: the first key's last refusal arrives after the second key
    signed in. It must not bring the sign-in back over the loaded page (it did, now and then, in a
    loaded test run)."""
    ctx = browser.new_context(locale="en-GB")
    page = ctx.new_page()
    held = []  # the first key's call for the unmet-demand chart, answered only when the test says so

    def hold_the_wrong_keys(route):
        if route.request.headers.get("authorization") == "Bearer not-the-staff-key":
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/v1/staff/unmet-demand*", hold_the_wrong_keys)
    page.goto(site.url + "/staff/map")
    page.get_by_label("Staff key").fill("not-the-staff-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text("Wrong key.")
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body[data-loaded=true]")).to_be_visible()
    expect(page.locator("#signin")).to_be_hidden()
    assert len(held) == 1
    with page.expect_response(lambda r: "unmet-demand" in r.url and r.status == 403):
        held[0].continue_()
    page.wait_for_timeout(300)  # the page has read the late answer
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#map-app")).to_be_visible()
    ctx.close()
