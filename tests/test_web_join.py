"""Joining on the web, in headless Chromium: the chat offers the form, the form shows each error in
Portuguese and sends the profile, staff approve it in the moderation queue, and the chat shows the news.
Screenshots go to CPC_SCREENSHOTS (else a temporary folder). The firm is fictional."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import LiveServer, private_copy
from test_web_browser import expect, watch

KEY = "join-staff-key"


@pytest.fixture(scope="module")
def site(shipped_data_dir, encoder, tmp_path_factory):
    """Its own copy of the index: approving a profile writes a new generation."""
    from assistant.app import create_app
    from assistant.settings import Settings

    catalog = private_copy(shipped_data_dir, tmp_path_factory.mktemp("join-web") / "data", encoder)
    app = create_app(Settings(data_dir=catalog.data_dir, admin_token=KEY), catalog)
    with LiveServer(app) as live:
        live.app = app
        yield live
    catalog.close()


def test_join_form_errors_in_portuguese_then_staff_approve_and_the_chat_is_told(browser, site, tmp_path):
    shots = Path(os.environ.get("CPC_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(locale="pt-PT", viewport={"width": 1280, "height": 1000})
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/")
    page.locator("#message").fill("quero registar a minha empresa")
    page.locator("#message").press("Enter")
    page.locator("[data-action=join]").click()
    expect(page.get_by_role("heading", name="Inscrever no diretório")).to_be_visible()
    page.get_by_label("Nome da organização").fill("Moldes Exemplo Lda (teste)")
    page.get_by_label("Tipo").select_option("company")
    page.get_by_label("País").fill("Portugal")
    page.get_by_label("Setores, nas suas palavras").fill("moldes de injeção, plásticos")
    page.get_by_label("O que oferece").fill("Moldes de injeção para peças plásticas da indústria automóvel.")
    page.get_by_label("Sítio web (opcional)").fill("não é um site")
    page.get_by_label("Contacto público").fill("geral@moldes-exemplo.example")
    page.get_by_role("button", name="Enviar para revisão").click()
    expect(page.locator("#e-website")).to_contain_text("Endereço inválido")
    expect(page.locator("#e-consent")).to_contain_text("aceitar a publicação")
    page.screenshot(path=str(shots / "join-form-errors.png"), full_page=True)
    assert site.app.state.assistant.store.profiles() == []  # nothing stored
    page.get_by_label("Sítio web (opcional)").fill("www.moldes-exemplo.example")
    page.locator("#f-consent").check()
    page.get_by_role("button", name="Enviar para revisão").click()
    expect(page.locator("#done")).to_contain_text("aguarda revisão")
    expect(page.locator("#mine-list")).to_contain_text("em revisão")

    staff = ctx.new_page()
    staff_problems = watch(staff)
    staff.goto(site.url + "/staff/profiles")  # the old address leads to the one moderation queue
    staff.get_by_label("Chave da equipa").fill(KEY)
    staff.get_by_role("button", name="Entrar").click()
    card = staff.locator("[data-kind=profile]").first
    expect(card).to_contain_text("Moldes Exemplo Lda (teste)")
    staff.screenshot(path=str(shots / "staff-profiles-queue.png"), full_page=True)
    card.locator("[data-action=approve]").click()
    expect(staff.locator("#status")).to_contain_text("publicado")
    expect(staff.locator("#queue")).to_contain_text("Nada à espera de revisão")

    page.goto(site.url + "/")  # back in the chat: the news is there, in Portuguese
    expect(page.locator("#log")).to_contain_text("foi aprovado", timeout=120_000)
    page.screenshot(path=str(shots / "join-approved-in-chat.png"), full_page=True)
    assert problems == [] and staff_problems == []
    ctx.close()
