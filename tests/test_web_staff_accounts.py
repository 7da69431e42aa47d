"""Named accounts in the staff console, in headless Chromium: a staff member signs in, works a
lead from the inbox (note, status, reply) and the audit log shows their name; a viewer cannot
change a lead; a change without the CSRF token is refused; the inbox filters live in the address;
the console works at 390 px."""

from __future__ import annotations

import re

import httpx
import pytest

from conftest import ARTIFACTS, LiveServer
from test_web_browser import api_lead, expect, no_horizontal_scroll, watch

KEY = "accounts-browser-key"
PASSWORDS = {"ana": "ana's long password", "vic": "vic's long password", "ada": "ada's long password"}


@pytest.fixture(scope="module")
def site(shipped_catalog, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("accounts-browser"), admin_token=KEY)
    with LiveServer(create_app(settings, shipped_catalog)) as live:
        for name, role in (("ana", "staff"), ("vic", "viewer"), ("ada", "admin")):
            r = httpx.post(f"{live.url}/api/v1/admin/accounts", json={"name": name, "role": role, "password": PASSWORDS[name]},
                           headers={"Authorization": f"Bearer {KEY}"})
            assert r.status_code == 201, r.text
        yield live


def sign_in(page, site, name):
    page.goto(site.url + "/staff")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_contain_text(name)
    # the console's first loads done: at 390 px the leads laid out above the search form moved its
    # button under a click once (no search was sent)
    expect(page.locator("body[data-loaded=true]")).to_be_attached()


def test_staff_member_works_a_lead_from_the_inbox_and_the_audit_names_them(browser, site):
    lead = api_lead(site)
    lead_id = lead["lead_id"]
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/staff")
    page.get_by_label("Name", exact=True).fill("ana")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("Wrong name or password")
    page.get_by_label("Password").fill(PASSWORDS["ana"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_have_text("ana (staff)")
    assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly: no script can read it

    # the inbox is the first thing in the console, above search and the query log
    assert page.evaluate("document.querySelector('#console').firstElementChild.id") == "inbox"
    card = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(card.locator('[data-marker="unread"]')).to_be_visible()

    # partner suggestions for the lead's organisation, from the matches route
    card.locator(".suggestions summary").click()
    expect(card.locator(".suggested li").first).to_be_visible()

    # a change without the CSRF token is refused, even from the console's own page with its cookie
    status = page.evaluate(f"""fetch('/api/v1/leads/{lead_id}', {{method: 'PATCH', headers: {{'Content-Type': 'application/json'}},
        body: JSON.stringify({{note: 'forged'}})}}).then(r => r.status)""")
    assert status == 403

    # opening the follow-up reads the lead: the unread marker goes
    card.get_by_text("Follow up").click()
    expect(card.locator('[data-marker="unread"]')).to_have_count(0)
    card.locator(f"#lead-{lead_id}-note").fill("Called Mary, she wants samples")
    card.get_by_role("button", name="Add note").click()
    expect(card.locator(".notes")).to_contain_text("ana")
    expect(card.locator(".notes")).to_contain_text("Called Mary")
    card.locator(f"#lead-{lead_id}-reply").fill("Thank you, we are preparing an introduction.")
    card.get_by_role("button", name="Send reply").click()
    expect(page.locator("#leads-status")).to_contain_text(f"Reply sent for lead {lead_id}")
    card.get_by_role("button", name=re.compile(r"as contacted$")).click()
    expect(card.locator(".badge.status-contacted")).to_be_visible()
    assert "forged" not in httpx.get(f"{site.url}/api/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {KEY}"}).text

    # inbox filters live in the address: a reload keeps them
    page.locator("#lead-status").select_option("contacted")
    expect(page).to_have_url(re.compile(r"#status=contacted"))
    page.reload()
    expect(page.locator("#lead-status")).to_have_value("contacted")
    expect(page.locator(f'#leads [data-lead="{lead_id}"]')).to_be_visible()  # still signed in: the cookie
    assert not problems, problems

    # the admin reads the audit log: ana's note, reply and status change, by name
    admin = ctx.new_page()
    problems += watch(admin)
    admin.context.clear_cookies()
    sign_in(admin, site, "ada")
    expect(admin.get_by_role("link", name="Accounts and audit")).to_be_visible()
    admin.get_by_role("link", name="Accounts and audit").click()
    rows = admin.locator("#audit tbody tr")
    expect(rows.first).to_be_visible()
    for action in ("lead.update", "lead.reply"):
        row = admin.locator(f'#audit tr[data-action="{action}"]').filter(has_text="ana").first
        expect(row).to_contain_text(str(lead_id))
    expect(admin.locator('#audit tr[data-action="account.add"]').first).to_contain_text("token")
    admin.screenshot(path=str(ARTIFACTS / "staff-audit.png"), full_page=True)
    assert not problems, problems
    ctx.close()


def test_a_viewer_cannot_change_a_lead(browser, site):
    lead_id = api_lead(site)["lead_id"]
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    problems = watch(page)
    sign_in(page, site, "vic")
    card = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(card).to_be_visible()
    expect(card.get_by_role("button", name=re.compile(r"as contacted$"))).to_be_hidden()
    expect(page.get_by_role("link", name="Accounts and audit")).to_be_hidden()
    # even with the CSRF token, the server refuses a viewer's change
    result = page.evaluate(f"""fetch('/api/v1/staff/me').then(r => r.json()).then(me => fetch('/api/v1/leads/{lead_id}',
        {{method: 'PATCH', headers: {{'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf}},
          body: JSON.stringify({{status: 'closed', outcome: 'spam'}})}})).then(r => r.status)""")
    assert result == 403
    assert httpx.get(f"{site.url}/api/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {KEY}"}).json()["status"] == "new"
    page.goto(site.url + "/staff/admin")
    expect(page.locator("#admin-error")).to_be_visible()
    assert not problems, problems
    ctx.close()


def test_the_console_at_390_px(browser, site):
    ctx = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    problems = watch(page)
    sign_in(page, site, "ana")
    page.get_by_label("Query (pt, zh or en)").fill("cork stoppers")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results tbody tr").first).to_be_visible()
    no_horizontal_scroll(page)
    first = page.locator("#results tbody tr").first
    assert first.bounding_box()["width"] <= 390
    assert first.get_by_role("button", name=re.compile("^Open")).bounding_box()["x"] + 10 < 390  # reachable without scrolling sideways
    page.screenshot(path=str(ARTIFACTS / "staff-search-390.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.reload()
    expect(page.get_by_label("Name", exact=True)).to_be_visible()  # signed out on the server too: no resume
    assert not problems, problems
    ctx.close()
