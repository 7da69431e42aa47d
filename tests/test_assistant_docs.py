"""/docs renders in Chromium with the network off: every request it makes goes to this server."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from conftest import LiveServer
from test_web_browser import expect, watch


@pytest.fixture(scope="module")
def site(shipped_catalog, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    with LiveServer(create_app(Settings(data_dir=tmp_path_factory.mktemp("docs")), shipped_catalog)) as live:
        yield live


def test_docs_assets_are_served_from_the_package(site):
    page = httpx.get(site.url + "/docs").text
    assert "cdn.jsdelivr.net" not in page and "/docs-assets/swagger-ui-bundle.js" in page
    js = httpx.get(site.url + "/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript") and len(js.content) > 100_000
    assert httpx.get(site.url + "/docs-assets/..%2Fsetup.py").status_code == 404
    assert httpx.get(site.url + "/docs-assets/index.html").status_code == 404
    assert httpx.get(site.url + "/redoc").status_code == 404  # ReDoc fetches its logo from a CDN


def test_docs_render_offline(browser, site):
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def only_loopback(route):
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:  # the network is off: anything else fails, and is noted
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    ctx.route("**/*", only_loopback)
    page = ctx.new_page()
    problems = watch(page)
    page.goto(site.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("CPC Alliance partner finder")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/search").first).to_be_visible()
    assert page.locator(".opblock").count() > 10
    assert not outside, outside
    assert not problems, problems
    ctx.close()
