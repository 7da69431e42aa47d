"""The chat page and the staff console in headless Chromium, used as a person would.

Debian's chromium driven by playwright (never a downloaded browser) against the real app on a
loopback port. Screenshots go to test-artifacts/. Without /usr/bin/chromium the tests are
skipped, except in CI where they must run.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import httpx
import pytest

from conftest import ARTIFACTS, LiveServer

KEY = "browser-staff-key"
CORK_ZH = "我们想找葡萄牙的软木合作伙伴"
CORK_PT = "procuro fornecedores de cortiça"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def site(shipped_catalog, tmp_path_factory):
    """The app with a staff key and its own state (sessions, leads, query log)."""
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("browser-state"), admin_token=KEY)
    app = create_app(settings, shipped_catalog)
    with LiveServer(app) as live:
        live.app = app
        yield live


def watch(page) -> list[str]:
    """Uncaught script errors and blocked resources (CSP): a page that works must have none."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    return problems


def expect(locator):
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def api_lead(site, search="Portuguese cork companies", interest="I'm interested in 1",
             answers=("yes", "Mary Jones", "Acme Bottling", "mary@acme.example", "ok", "send")) -> dict:
    """A consented lead made through the chat API (for tests about the console)."""
    sid = httpx.post(f"{site.url}/api/v1/chat", json={"text": search}, timeout=60).json()["session_id"]
    for text in (interest, *answers):
        reply = httpx.post(f"{site.url}/api/v1/chat", json={"session_id": sid, "text": text}, timeout=60).json()
    assert reply["handoff"] and reply["lead_id"], reply
    return reply | {"session_id": sid}


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"


def test_chat_in_chinese_then_more_then_portuguese_and_after_a_reload(browser, site):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/")

    # the interface follows the browser's language
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    box = page.get_by_label("您的消息")
    box.fill(CORK_ZH)
    box.press("Enter")

    cards = page.locator(".cards > .card")
    expect(cards).to_have_count(3)  # the corpus has three cork organisations: only matches are listed
    names = cards.locator("h3").all_inner_texts()
    assert all(HAN.search(n) for n in names), names
    assert any(n.startswith(("葡萄牙软木协会", "阿莫林软木")) for n in names[:2]), names
    first = cards.first
    expect(first).to_contain_text("葡萄牙")  # country, in the reply's language
    expect(first.locator(".tags")).to_contain_text("软木")
    expect(first.get_by_role("button", name="详细信息")).to_be_visible()
    expect(first.get_by_role("link", name=re.compile("网站"))).to_have_attribute("href", re.compile("^https?://"))
    expect(page.locator("#live")).to_contain_text("最相关的机构")  # the reply goes to the aria-live region
    page.screenshot(path=str(ARTIFACTS / "chat-desktop.png"))

    page.get_by_role("button", name="更多结果").click()
    expect(cards).to_have_count(8)  # past the matches: five less close ones, said to be so
    expect(page.locator(".msg.user .bubble").last).to_have_text("更多")
    expect(page.locator(".msg.bot").last).to_contain_text("相关度较低")
    numbers = page.locator(".msg.bot").last.locator(".num").all_inner_texts()
    assert [re.sub(r"\D", "", n) for n in numbers] == ["4", "5", "6", "7", "8"]

    # switch the interface to Portuguese and ask in Portuguese
    page.get_by_role("button", name="Português").click()
    expect(page.locator("html")).to_have_attribute("lang", "pt")
    expect(page.get_by_role("button", name="Português")).to_have_attribute("aria-pressed", "true")
    box = page.get_by_label("A sua mensagem")
    box.fill(CORK_PT)
    box.press("Enter")
    reply = page.locator(".msg.bot").last
    expect(reply).to_contain_text("Estas são as organizações mais relevantes para «procuro fornecedores de cortiça»")
    expect(reply.locator(".card")).to_have_count(3)
    pt_names = reply.locator(".card h3").all_inner_texts()
    assert any(n.startswith(("APCOR", "Corticeira Amorim")) for n in pt_names[:2]) and not any(HAN.search(n) for n in pt_names)
    expect(reply.locator(".card").first.get_by_role("button", name="Tenho interesse")).to_be_visible()
    # cards of the earlier search lose their buttons: their numbers now mean something else
    expect(page.locator(".msg.bot").nth(1).locator(".card button")).to_have_count(0)
    session = page.evaluate("localStorage.getItem('cpc.chat.session')")

    # a reload shows the conversation and the server still knows it
    page.reload()
    expect(page.locator(".msg.user")).to_have_count(3)
    expect(page.locator(".cards > .card")).to_have_count(11)
    expect(page.locator("html")).to_have_attribute("lang", "pt")
    box = page.get_by_label("A sua mensagem")
    box.fill("mais")
    box.press("Enter")
    reply = page.locator(".msg.bot").last
    expect(reply).to_contain_text("Essas eram todas as correspondências próximas para «procuro fornecedores de cortiça»")
    numbers = reply.locator(".num").all_inner_texts()
    assert [re.sub(r"\D", "", n) for n in numbers] == ["4", "5", "6", "7", "8"]
    assert page.evaluate("localStorage.getItem('cpc.chat.session')") == session

    # the session is the server's signed token, bound to this browser's HttpOnly cookie
    token = json.loads(session)
    assert re.fullmatch(r"web-[\w-]{22}\.[\w-]{22}", token), token
    cookie = next(c for c in ctx.cookies() if c["name"] == "cpc_browser")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert "cpc_browser" not in page.evaluate("document.cookie")  # out of the page's scripts' reach
    transcript = page.evaluate("localStorage.getItem('cpc.chat.transcript')")
    assert not problems, problems
    ctx.close()

    # another browser with this one's storage copied over (session token and transcript): the
    # server does not continue the conversation there; the page says so and drops the old buttons
    other = browser.new_context(locale="pt-PT", viewport={"width": 1280, "height": 900})
    other.add_init_script(f"localStorage.setItem('cpc.chat.session', {json.dumps(session)});"
                          f"localStorage.setItem('cpc.chat.transcript', {json.dumps(transcript)});")
    page = other.new_page()
    problems = watch(page)
    page.goto(site.url + "/")
    expect(page.locator(".msg.user")).to_have_count(4)
    box = page.get_by_label("A sua mensagem")
    box.fill("mais")
    box.press("Enter")
    expect(page.locator(".msg.bot").last).to_contain_text("Não tenho nenhuma lista nesta conversa")
    expect(page.locator(".msg.restart")).to_contain_text("Começou uma nova conversa")
    expect(page.locator(".card button")).to_have_count(0)
    fresh = json.loads(page.evaluate("localStorage.getItem('cpc.chat.session')"))
    assert fresh != token and fresh.startswith("web-")
    assert not problems, problems
    other.close()


def test_chat_on_a_phone_with_the_keyboard_and_without_the_server(browser, site):
    ctx = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844}, is_mobile=True,
                              has_touch=True, device_scale_factor=2)
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    box = page.get_by_label("Your message")
    send = page.get_by_role("button", name="Send")

    # keyboard only: the first Tab reaches the skip link, which leads to the message box
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the message box")).to_be_focused()
    page.keyboard.press("Enter")
    expect(box).to_be_focused()

    # while waiting: send is disabled and an indicator shows (the request is held until checked)
    held = []
    page.route("**/api/v1/chat", lambda route: held.append(route))
    page.keyboard.type("Portuguese cork companies")
    page.keyboard.press("Enter")
    expect(send).to_be_disabled()
    expect(send).to_have_text("…")
    expect(page.get_by_role("status")).to_have_text("Waiting for the reply…")
    expect(page.locator(".typing")).to_be_visible()
    for _ in range(200):  # the route handler runs when playwright next dispatches events
        if held:
            break
        page.wait_for_timeout(25)
    assert len(held) == 1
    held[0].continue_()
    page.unroute("**/api/v1/chat")

    cards = page.locator(".cards > .card")
    expect(cards).to_have_count(3)
    expect(send).to_be_enabled()
    expect(box).to_be_focused()
    expect(box).to_have_value("")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.keyboard.press("Tab")
    expect(send).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # visible focus
    box.focus()
    page.screenshot(path=str(ARTIFACTS / "chat-phone.png"))

    # the server cannot be reached: a clear message, and what was typed stays
    page.route("**/api/v1/chat", lambda route: route.abort("internetdisconnected"))
    box.fill("more")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Could not reach the server")
    expect(box).to_have_value("more")
    expect(page.locator(".msg.user")).to_have_count(1)  # the unsent message is not in the conversation
    expect(send).to_be_enabled()
    page.screenshot(path=str(ARTIFACTS / "chat-phone-offline.png"))

    page.unroute("**/api/v1/chat")
    box.press("Enter")
    expect(cards).to_have_count(8)
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(box).to_have_value("")

    # "Details" on a card asks for that number; the answer offers "I'm interested" for it
    second = cards.nth(1)
    name = second.locator("h3").inner_text()
    second.get_by_role("button", name="Details").click()
    reply = page.locator(".msg.bot").last
    expect(reply).to_contain_text(name)
    expect(reply).to_contain_text("Sectors:")
    expect(page.locator(".msg.user .bubble").last).to_have_text("details of 2")
    expect(reply).to_be_focused()  # focus follows the answer, not lost with the re-drawn button
    expect(reply.get_by_role("button", name="I'm interested")).to_be_visible()
    assert not problems, problems
    ctx.close()


def test_staff_console_search_export_query_log_and_a_lead_from_the_chat(browser, site):
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 900}, accept_downloads=True)

    # an SME asks in the chat and clicks "I'm interested" on the first card
    chat = ctx.new_page()
    problems = watch(chat)
    chat.goto(site.url + "/")
    chat.get_by_label("Your message").fill("Portuguese cork companies")
    chat.get_by_label("Your message").press("Enter")
    first = chat.locator(".cards > .card").first
    expect(first).to_be_visible()
    org_id = first.get_attribute("data-id")
    first.get_by_role("button", name="I'm interested").click()
    expect(chat.locator(".msg.bot").last).to_contain_text("Do you agree?")
    chat.locator(".chips").get_by_role("button", name="yes", exact=True).click()
    form = chat.get_by_role("form", name="Your details for the CPC Alliance team")
    form.get_by_label("Name").fill("Mary Jones")
    form.get_by_label("Your organisation").fill("Acme Bottling")
    form.get_by_label("E-mail or phone").fill("mary@acme.example")
    expect(form.get_by_label("What you are looking for (one line)")).to_have_value("Portuguese cork companies")
    form.get_by_role("button", name="Send details").click()
    expect(chat.locator(".msg.bot").last).to_contain_text("Please confirm your request")
    chat.locator(".chips").get_by_role("button", name="send", exact=True).click()
    confirm = chat.locator(".bubble.confirm")
    expect(confirm).to_contain_text("Request recorded")
    expect(confirm).to_contain_text("sent to the CPC Alliance team")
    lead_id = re.search(r"Request no\. (\d+)", confirm.inner_text()).group(1)

    # staff sign in: a wrong key first
    page = ctx.new_page()
    problems += watch(page)
    page.goto(site.url + "/staff")
    page.get_by_label("Staff key").fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That staff key is not right")
    expect(page.get_by_role("heading", name="Search partners")).to_be_hidden()
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_label("Staff key").press("Enter")
    expect(page.get_by_role("heading", name="Search partners")).to_be_visible()

    # search with a country filter
    page.get_by_label("Query (pt, zh or en)").fill("clusters")  # a browse within a filter: no relevance floor
    page.get_by_label("Country").select_option("PT")
    page.get_by_role("button", name="Search", exact=True).click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#search-summary")).to_contain_text("showing 1–10")
    assert all("Portugal" in c for c in rows.locator("td:nth-child(4)").all_inner_texts())
    expect(rows.first.locator(".why")).to_contain_text("Terms: ")
    assert float(rows.first.locator("td:nth-child(6)").inner_text()) > 0
    shown = [rows.nth(i).get_attribute("data-id") for i in range(10)]

    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#search-summary")).to_contain_text("showing 11–20")
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#search-summary")).to_contain_text("showing 1–10")

    # open a record
    first_name = rows.first.locator("td:nth-child(2) div").first.inner_text()
    rows.first.get_by_role("button", name=re.compile("^Open ")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Sources")
    expect(dialog.get_by_role("heading", level=2)).to_contain_text(first_name.split(" – ")[0])
    page.screenshot(path=str(ARTIFACTS / "staff-record.png"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # export what is on screen, as CSV and as JSON
    with page.expect_download() as download:
        page.locator("#pager").get_by_role("button", name="Export CSV").click()  # the inbox above has its own
    assert re.fullmatch(r"cpc-search-\d{8}-\d{6}\.csv", download.value.suggested_filename)
    with open(download.value.path(), encoding="utf-8-sig", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert [r["id"] for r in exported] == shown
    assert all(r["country"] == "PT" for r in exported) and exported[0]["rank"] == "1"
    assert float(exported[0]["score"]) > 0 and "cluster" in exported[0]["why_terms"]
    with page.expect_download() as download:
        page.locator("#pager").get_by_role("button", name="Export JSON").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["query"] == "clusters" and data["filters"]["country"] == ["PT"] and len(data["results"]) == 10

    # the query log has the console's search and the chat's
    log = page.locator("#queries tbody")
    expect(log.locator("tr").first).to_contain_text("Staff")  # the channel, by its name in the interface language
    expect(log.locator("tr").first).to_contain_text("clusters")
    expect(log).to_contain_text("Portuguese cork companies")
    expect(page.locator("#charts svg")).to_have_count(3)
    expect(page.get_by_role("img", name=re.compile("^Queries by channel: .*Staff 1"))).to_be_visible()

    # the lead from the chat: find it, mark it contacted
    lead = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(lead).to_contain_text(org_id)
    expect(lead).to_contain_text("Mary Jones — Acme Bottling")
    expect(lead.locator(".status-new")).to_have_text("New")
    lead.get_by_role("button", name=re.compile(rf"^Mark lead {lead_id} .* as contacted$")).click()
    expect(lead.locator(".status-contacted")).to_have_text("Contacted")
    expect(lead.get_by_role("button", name=re.compile(r" as introduced$"))).to_be_focused()
    page.screenshot(path=str(ARTIFACTS / "staff-console.png"), full_page=True)
    stored = httpx.get(f"{site.url}/api/v1/leads", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert next(x for x in stored if str(x["id"]) == lead_id)["status"] == "contacted"

    # the key lasts for the tab (sessionStorage): a reload stays signed in; signing out forgets it
    page.reload()
    expect(page.get_by_role("heading", name="Search partners")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Staff key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cpc.staff.key')") is None
    assert not problems, problems
    ctx.close()


def i18n_texts(page) -> dict[str, str]:
    """What each element marked data-i18n says (by its key), and the query box's placeholder."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-i18n]')]
        .map((n) => [n.dataset.i18n, n.textContent.trim()]).concat([['placeholder', document.getElementById('q').placeholder]]))""")


def test_staff_console_in_chinese_and_portuguese_and_after_a_reload(browser, site):
    # a lead from the chat, so the console has one in status "new" to show and change
    lead_id = api_lead(site)["lead_id"]

    ctx = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/staff")
    expect(page.locator("html")).to_have_attribute("lang", "en")  # follows the browser
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    english = i18n_texts(page)

    # 中文 on the sign-in form, a wrong key and then the right one
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("button", name="中文")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    assert page.title().startswith("工作人员控制台")
    page.get_by_label("工作人员密钥").fill("not-the-key")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("密钥不正确，请检查后重试。")
    page.get_by_label("工作人员密钥").fill(KEY)
    page.get_by_label("工作人员密钥").press("Enter")
    expect(page.get_by_role("heading", name="搜索合作伙伴")).to_be_visible()
    chinese = i18n_texts(page)
    assert all(HAN.search(text) for text in chinese.values()), {k: v for k, v in chinese.items() if not HAN.search(v)}

    # a search in Chinese with a country filter labelled in Chinese; the filter value sent is still PT
    page.get_by_label("查询内容（葡萄牙语、中文或英语）").fill("产业集群")
    page.get_by_label("国家").select_option(label="葡萄牙 (PT)")
    page.get_by_role("button", name="搜索", exact=True).click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(10)
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text("个机构与“产业集群”匹配（查询语言：中文），当前显示第 1–10 个")
    assert all(HAN.search(c) for c in rows.locator("td:nth-child(2) div").all_inner_texts())
    assert all(c.startswith("葡萄牙") for c in rows.locator("td:nth-child(4)").all_inner_texts())
    expect(rows.first.get_by_role("button", name=re.compile("^查看 "))).to_have_text("查看")
    headers = page.locator("#results thead th, #queries thead th, #leads thead th").all_text_contents()
    assert all(HAN.search(h) for h in headers), headers
    expect(page.get_by_role("img", name=re.compile(r"^各渠道查询数：.*工作人员 \d"))).to_be_visible()
    expect(page.locator("#charts h3")).to_have_text(["各语言查询数", "各渠道查询数", "无结果的查询"])
    lead_row = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(lead_row.locator(".status-new")).to_have_text("待联系")
    expect(lead_row).to_contain_text("英语 · 网页聊天")
    lead_row.get_by_role("button", name=re.compile(rf"^将第 {lead_id} 条意向（.*）标记为已联系$")).click()
    expect(lead_row.locator(".status-contacted")).to_have_text("已联系")
    expect(lead_row.get_by_role("button", name=re.compile(r"标记为已引荐$"))).to_be_focused()
    expect(lead_row.locator("[data-lead-action]")).to_have_text("标记为已引荐")
    stored = httpx.get(f"{site.url}/api/v1/leads", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert next(x for x in stored if x["id"] == lead_id)["status"] == "contacted"  # the code, not the label
    page.screenshot(path=str(ARTIFACTS / "staff-console-zh.png"), full_page=True)

    # PT: what is on screen is said again in Portuguese, the filter stays chosen
    page.get_by_role("button", name="Português").click()
    expect(page.locator("html")).to_have_attribute("lang", "pt")
    expect(page.get_by_role("button", name="Português")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("heading", name="Pesquisar parceiros")).to_be_visible()
    portuguese = i18n_texts(page)
    assert [k for k in english if portuguese[k] == english[k]] == []  # nothing left in English
    expect(summary).to_contain_text("(idioma da pesquisa: Chinês); a mostrar 1–10.")
    expect(page.get_by_label("País")).to_have_value("PT")
    expect(page.get_by_label("País").locator("option:checked")).to_have_text("Portugal (PT)")
    expect(page.get_by_label("Região").locator("optgroup").first).to_have_attribute("label", re.compile("Portugal|China"))
    expect(lead_row.locator(".status-contacted")).to_have_text("Contactado")
    expect(lead_row.get_by_role("button", name=re.compile(rf"^Marcar o pedido {lead_id} \(.*\) como apresentado$"))).to_have_text(
        "Marcar como apresentado")
    expect(page.locator("#charts h3").first).to_have_text("Pesquisas por idioma")

    # a search in Portuguese, then a reload keeps the language
    page.get_by_label("Pesquisa (pt, zh ou en)").fill("cortiça")
    page.get_by_role("button", name="Pesquisar", exact=True).click()
    expect(summary).to_contain_text("organizações correspondem a «cortiça» (idioma da pesquisa: Português); a mostrar 1–10. 7 menos próximas, marcadas como tal (não correspondem).")
    expect(rows.first.locator(".why")).to_contain_text("Termos: ")
    expect(rows.nth(3).locator(".less-close")).to_have_text("Menos próximo: não é uma correspondência.")
    expect(rows.first.locator(".less-close")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "staff-console-pt.png"), full_page=True)
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "pt")
    expect(page.get_by_role("heading", name="Pesquisar parceiros")).to_be_visible()
    expect(page.get_by_role("button", name="Português")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("localStorage.getItem('cpc.staff.lang')") == '"pt"'
    page.get_by_role("button", name="Terminar sessão").click()
    expect(page.get_by_role("heading", name="Iniciar sessão")).to_be_visible()
    expect(page.get_by_label("Chave da equipa")).to_be_focused()
    assert not problems, problems
    ctx.close()


def test_portuguese_web_lead_to_staff_reply_shown_after_a_reload_and_the_inbox_on_a_phone(browser, site):
    """Done when: a web conversation in Portuguese becomes a consented lead with name, contact, need and
    organisations; staff mark it contacted and reply; the reply is in the chat after a reload. The inbox
    works at 1280x800 and on a 390x844 phone without sideways scrolling."""
    ctx = browser.new_context(locale="pt-PT", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    chat = ctx.new_page()
    problems = watch(chat)
    chat.goto(site.url + "/")
    box = chat.get_by_label("A sua mensagem")
    box.fill("fabricantes de moldes na China")
    box.press("Enter")
    cards = chat.locator(".cards > .card")
    expect(cards.first).to_be_visible()
    chosen = [cards.nth(0).get_attribute("data-id"), cards.nth(2).get_attribute("data-id")]
    cards.nth(0).get_by_role("button", name="Tenho interesse").click()
    consent = chat.locator(".msg.bot").last
    expect(consent).to_contain_text("RGPD")
    expect(consent).to_contain_text("O que guardamos e porquê")
    box.fill("tenho interesse no 3")
    box.press("Enter")
    expect(chat.locator(".msg.bot").last).to_contain_text("Acrescentei")
    chat.locator(".chips").get_by_role("button", name="sim, com a conversa").click()
    form = chat.get_by_role("form", name="Os seus dados para a equipa da CPC Alliance")
    form.get_by_label("Nome").fill("Ana Silva")
    form.get_by_label("A sua organização").fill("Moldes Leiria Lda")
    form.get_by_label("E-mail ou telefone").fill("ana@moldes")  # a bad e-mail first: a clear re-ask
    form.get_by_role("button", name="Enviar dados").click()
    expect(chat.locator(".msg.bot").last).to_contain_text("não parece um e-mail válido")
    chat.get_by_role("form", name="Os seus dados para a equipa da CPC Alliance").get_by_label("E-mail ou telefone").fill(
        "ana.silva@moldes-leiria.pt")
    chat.get_by_role("form", name="Os seus dados para a equipa da CPC Alliance").get_by_role("button", name="Enviar dados").click()
    expect(chat.locator(".msg.bot").last).to_contain_text("Confirme o pedido")
    no_horizontal_scroll(chat)
    chat.screenshot(path=str(ARTIFACTS / "chat-contact-phone.png"))
    chat.locator(".chips").get_by_role("button", name="enviar", exact=True).click()
    confirm = chat.locator(".bubble.confirm")
    expect(confirm).to_contain_text("Pedido registado")
    lead_id = int(re.search(r"Pedido n\.º (\d+)", confirm.inner_text()).group(1))

    lead = next(x for x in httpx.get(f"{site.url}/api/v1/leads", headers={"Authorization": f"Bearer {KEY}"}).json()
                if x["id"] == lead_id)
    assert (lead["name"], lead["asker_org"], lead["contact"], lead["lang"], lead["channel"]) == \
        ("Ana Silva", "Moldes Leiria Lda", "ana.silva@moldes-leiria.pt", "pt", "web")
    assert lead["need"] == "fabricantes de moldes na China" and [o["id"] for o in lead["organisations"]] == chosen
    assert lead["conversation"][0][1] == "fabricantes de moldes na China"

    # staff on a laptop: the lead, marked contacted, and a reply
    desk = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
    page = desk.new_page()
    problems += watch(page)
    page.goto(site.url + "/staff")
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_label("Staff key").press("Enter")
    page.get_by_label("Language", exact=True).select_option("pt")
    card = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(card).to_contain_text("Ana Silva — Moldes Leiria Lda")
    expect(card.get_by_role("link", name="ana.silva@moldes-leiria.pt")).to_have_attribute("href", "mailto:ana.silva@moldes-leiria.pt")
    expect(card).to_contain_text("fabricantes de moldes na China")
    expect(card.locator("ul.orgs li")).to_have_count(2)
    card.get_by_text(re.compile(r"^Conversation shared by the user")).click()
    expect(card.locator(".conversation-log li")).to_contain_text(["fabricantes de moldes na China"])  # answers to the request stay out
    no_horizontal_scroll(page)
    card.get_by_role("button", name=re.compile(rf"^Mark lead {lead_id} .* as contacted$")).click()
    expect(card.locator(".status-contacted")).to_have_text("Contacted")
    card.locator(".lead-more summary").click()
    card.get_by_label("Message").fill("Olá Ana, falámos com o cluster de Yuyao; ligam-lhe esta semana.")
    card.get_by_role("button", name="Send reply").click()
    expect(page.locator("#leads-status")).to_have_text(f"Reply sent for lead {lead_id}.")
    expect(card.locator(".notes.sent")).to_contain_text("waiting for the user to return")
    card.get_by_label("Note").fill("Yuyao contact: Mr Chen")
    card.get_by_role("button", name="Add note").click()
    expect(card.locator(".notes").first).to_contain_text("Yuyao contact: Mr Chen")
    page.screenshot(path=str(ARTIFACTS / "staff-leads-1280.png"), full_page=True)

    # the user comes back: the reply is in the chat
    chat.reload()
    staff_bubble = chat.locator(".msg.staff .bubble")
    expect(staff_bubble).to_contain_text("Equipa CPC Alliance")
    expect(staff_bubble).to_contain_text("falámos com o cluster de Yuyao")
    chat.reload()  # shown once, kept in the transcript
    expect(chat.locator(".msg.staff")).to_have_count(1)
    chat.screenshot(path=str(ARTIFACTS / "chat-staff-reply-phone.png"))
    shown = httpx.get(f"{site.url}/api/v1/leads/{lead_id}/messages", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert [m["delivery"] for m in shown] == ["shown"]

    # the inbox on a phone: filters usable, no sideways scrolling, closing needs an outcome
    phone = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    problems += watch(mobile)
    mobile.goto(site.url + "/staff")
    mobile.get_by_label("Staff key").fill(KEY)
    mobile.get_by_label("Staff key").press("Enter")
    mobile.get_by_label("Name, organisation, contact or need").fill("Moldes Leiria")
    mobile.get_by_role("button", name="Apply").click()
    expect(mobile.locator("#leads > li")).to_have_count(1)
    card = mobile.locator(f'#leads [data-lead="{lead_id}"]')
    for control in (mobile.locator("#lead-status"), mobile.get_by_label("Name, organisation, contact or need"),
                    card.locator(".lead-head")):
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, control
    card.locator(".lead-more summary").click()
    card.locator(f"#lead-{lead_id}-status").select_option("closed")
    card.locator(f"#lead-{lead_id}-outcome").select_option("in_contact")
    card.locator(f"#lead-{lead_id}-assignee").fill("Rita")
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".status-closed")).to_have_text("Closed")
    expect(card).to_contain_text("In direct contact")
    no_horizontal_scroll(mobile)
    mobile.screenshot(path=str(ARTIFACTS / "staff-leads-390.png"), full_page=True)

    # "apagar os meus dados": after the confirmation the lead, the staff message and the session are gone
    session_id = chat.evaluate("JSON.parse(localStorage.getItem('cpc.chat.session'))")
    box = chat.get_by_label("A sua mensagem")
    box.fill("apagar os meus dados")
    box.press("Enter")
    expect(chat.locator(".msg.bot").last).to_contain_text("Não é possível desfazer")
    chat.locator(".chips").get_by_role("button", name="sim, apagar").click()
    expect(chat.locator(".msg.bot").last).to_contain_text("apaguei os seus dados (1 pedido(s) de contacto)")
    assert chat.evaluate("localStorage.getItem('cpc.chat.session')") is None
    auth = {"Authorization": f"Bearer {KEY}"}
    stored = session_id.rpartition(".")[0]  # leads keep the session id without the token's signature
    assert all(x["session_id"] != stored for x in httpx.get(f"{site.url}/api/v1/leads", headers=auth).json())
    assert httpx.get(f"{site.url}/api/v1/leads/{lead_id}", headers=auth).status_code == 404
    # the team's messages for this conversation, asked from the browser the token is bound to
    messages = chat.evaluate("async (sid) => (await fetch('/api/v1/chat/messages?session_id=' + encodeURIComponent(sid))).json()",
                             session_id)
    assert messages["messages"] == []
    # from anywhere else the token opens nothing
    assert httpx.get(f"{site.url}/api/v1/chat/messages", params={"session_id": session_id}).status_code == 404
    assert not problems, problems
    for c in (ctx, desk, phone):
        c.close()


def test_wechat_lead_past_the_48_hour_window_says_so_in_the_console(browser, site):
    import sqlite3
    import time

    store = site.app.state.assistant.store
    lead_id = store.add_lead("wx-o-window", "wechat", "pt-apcor", "APCOR", "zh", "我对第1个感兴趣", name="王芳",
                             asker_org="宁波软木", contact="wechat", contact_kind="wechat", need="软木塞")
    db = sqlite3.connect(store.path)
    with db:
        db.execute("UPDATE leads SET last_inbound = ?, created = ? WHERE id = ?", (time.time() - 50 * 3600, time.time() - 50 * 3600, lead_id))
    db.close()
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/staff")
    page.get_by_label("工作人员密钥").fill(KEY)
    page.get_by_label("工作人员密钥").press("Enter")
    page.locator("#lead-channel").select_option("wechat")
    card = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(card).to_contain_text("王芳 — 宁波软木")
    expect(card).to_contain_text("微信对话")
    card.locator(".lead-more summary").click()
    expect(card.locator(".error")).to_contain_text("微信48小时回复窗口已过")
    expect(card.get_by_role("button", name="发送回复")).to_be_disabled()
    no_horizontal_scroll(page)
    assert not problems, problems
    ctx.close()


def test_talk_to_a_person_then_staff_reply_then_the_users_answer_in_the_console_thread(browser, site):
    """Done when (team): "quero falar com uma pessoa" with no search becomes a lead through consent and
    the contact form; staff reply from the console; the user answers in the chat; staff see the answer
    in the lead's thread with an unread marker that goes once they open the thread."""
    ctx = browser.new_context(locale="pt-PT", viewport={"width": 1280, "height": 800})
    chat = ctx.new_page()
    problems = watch(chat)
    chat.goto(site.url + "/")
    box = chat.get_by_label("A sua mensagem")
    box.fill("quero falar com uma pessoa")
    box.press("Enter")
    expect(chat.locator(".msg.bot").last).to_contain_text("RGPD")
    chat.locator(".chips").get_by_role("button", name="sim", exact=True).click()
    form = chat.get_by_role("form", name="Os seus dados para a equipa da CPC Alliance")
    form.get_by_label("Nome").fill("Rui Costa")
    form.get_by_label("A sua organização").fill("Costa Plásticos")
    form.get_by_label("E-mail ou telefone").fill("rui.costa@costa-plasticos.pt")
    form.get_by_label("O que procura (uma linha)").fill("Quero saber como aderir à aliança")
    form.get_by_role("button", name="Enviar dados").click()
    expect(chat.locator(".msg.bot").last).to_contain_text("Confirme o pedido")
    chat.locator(".chips").get_by_role("button", name="enviar", exact=True).click()
    confirm = chat.locator(".bubble.confirm")
    expect(confirm).to_contain_text("Pedido registado")
    lead_id = int(re.search(r"Pedido n\.º (\d+)", confirm.inner_text()).group(1))

    desk = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
    page = desk.new_page()
    problems += watch(page)
    page.goto(site.url + "/staff")
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_label("Staff key").press("Enter")
    page.get_by_label("Language", exact=True).select_option("pt")  # the leads in Portuguese
    card = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(card).to_contain_text("Rui Costa — Costa Plásticos")
    card.locator(".lead-more summary").click()
    card.get_by_label("Message").fill("Olá Rui, a adesão é tratada por nós: quando podemos ligar?")
    card.get_by_role("button", name="Send reply").click()
    expect(page.locator("#leads-status")).to_have_text(f"Reply sent for lead {lead_id}.")

    chat.reload()
    expect(chat.locator(".msg.staff .bubble")).to_contain_text("quando podemos ligar")
    box = chat.get_by_label("A sua mensagem")
    box.fill("Obrigado! Pode ligar-me na quarta de manhã.")
    box.press("Enter")
    expect(chat.locator(".msg.bot").last).to_contain_text(f"Enviado à equipa da CPC Alliance (pedido n.º {lead_id})")

    page.locator("#leads-refresh").click()
    card = page.locator(f'#leads [data-lead="{lead_id}"]')
    expect(card.locator(".badge.unread")).to_have_text("User replied (1)")
    card.locator(".thread summary").click()
    expect(card.locator(".thread li.from-user")).to_contain_text("Pode ligar-me na quarta de manhã.")
    expect(card.locator(".thread li.from-staff")).to_contain_text("quando podemos ligar")
    expect(card.locator(".badge.unread")).to_have_count(0)  # opened: read
    page.screenshot(path=str(ARTIFACTS / "staff-thread-1280.png"), full_page=True)
    assert httpx.get(f"{site.url}/api/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {KEY}"}).json()["unread"] == 0

    # the FAQ panel: an entry edited in the console answers in the chat
    faq = page.locator("#faq")
    expect(faq.locator("li")).not_to_have_count(0)
    new = page.locator("#faq-new")
    new.get_by_label("Questions (English)").fill("do you organise trade missions?")
    new.get_by_label("Answer (English)").fill("Ask the team: say “talk to a person”.")
    new.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#faq-status")).to_contain_text("saved")
    answer = httpx.post(f"{site.url}/api/v1/chat", json={"text": "Do you organise trade missions?"}, timeout=60).json()
    assert answer["intent"] == "faq" and "talk to a person" in answer["reply"]
    assert not problems, problems


def test_alert_by_the_chip_then_my_requests_and_a_notice_when_the_user_returns(browser, site):
    """Portuguese: a search, "Avisar-me de novos" under the list, then "Os meus pedidos" shows the alert
    with its status; a notice delivered meanwhile is shown, titled as an alert, when the page comes back."""
    ctx = browser.new_context(locale="pt-PT", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/")
    box = page.get_by_label("A sua mensagem")
    box.fill("fabricantes de moldes na China")
    box.press("Enter")
    expect(page.locator(".cards > .card").first).to_be_visible()
    page.locator(".msg.bot").last.get_by_role("button", name="Avisar-me de novos").click()
    expect(page.locator(".msg.bot").last).to_contain_text("Combinado")
    page.get_by_role("button", name="Os meus pedidos").click()
    mine = page.locator(".msg.mine").last
    expect(mine).to_contain_text("Os seus alertas:")
    expect(mine.locator("li[data-status=active]")).to_contain_text("«fabricantes de moldes na China»: ativo, 0 avisos enviados")
    page.screenshot(path=str(ARTIFACTS / "chat-my-requests-pt.png"))
    # a notice pending for the alert, then a delivery run staff start (the web sender keeps the digest
    # for GET /api/v1/chat/messages)
    store = site.app.state.assistant.store
    (sub,) = [s for s in store.alerts(channel="web", active=True) if s["query"] == "fabricantes de moldes na China"]
    store.add_notices([(sub["id"], "test-new-moulds", "Exemplo Moldes de Precisão")])
    r = httpx.post(f"{site.url}/api/v1/admin/alerts/deliver", headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert r.status_code == 200 and r.json()["digests"] == 1
    page.reload()
    notice = page.locator(".msg.staff").last
    expect(notice).to_contain_text("Alertas CPC Alliance")
    expect(notice).to_contain_text("Há novidades para o seu alerta «fabricantes de moldes na China»")
    expect(notice).to_contain_text("Exemplo Moldes de Precisão")
    page.screenshot(path=str(ARTIFACTS / "chat-alert-notice-pt.png"))
    assert problems == []
    ctx.close()
