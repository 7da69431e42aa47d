"""The web pages, their static files and the vocabulary they label things with, on a real
uvicorn server; and the phrases the chat page's buttons send, which the assistant must understand."""

import httpx
import pytest

from conftest import LiveServer


@pytest.fixture(scope="module")
def client(shipped_catalog, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("web-state"), admin_token="web-pages-key")
    with LiveServer(create_app(settings, shipped_catalog)) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def test_facets_are_public_and_labelled(client):
    r = client.get("/api/v1/facets")
    assert r.status_code == 200
    f = r.json()
    assert {c["value"] for c in f["countries"]} == {"PT", "CN"}
    pt = next(c for c in f["countries"] if c["value"] == "PT")
    assert pt["labels"] == {"pt": "Portugal", "zh": "葡萄牙", "en": "Portugal"}
    assert [k["value"] for k in f["kinds"]] == ["cluster", "company", "institution"]
    cork = next(s for s in f["sectors"] if s["value"] == "cork")
    assert cork["labels"]["zh"] == "软木"
    norte = next(r for r in f["regions"] if r["value"] == "Norte")
    assert norte["country"] == "PT" and norte["labels"]["zh"]


@pytest.mark.parametrize("path, marker", [("/", 'src="/static/chat.js"'), ("/staff", 'src="/static/staff.js"')])
def test_pages_are_served_with_a_strict_policy(client, path, marker):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert marker in r.text and "http://" not in r.text and "https://" not in r.text  # nothing from other hosts
    assert "<script>" not in r.text and "<style" not in r.text and " style=" not in r.text  # nothing inline: the policy would block it
    assert 'src="/static/dom.js"' in r.text and 'class="langs"' in r.text  # the shared helpers, the PT/中文/EN switch
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("path, heading", [("/", "CPC Alliance partner finder"), ("/staff", "Staff console"),
                                           ("/staff/admin", "Accounts and audit"), ("/staff/map", "Opportunity map"),
                                           ("/staff/posts", "Opportunity posts"), ("/staff/moderation", "Moderation queue"),
                                           ("/join", "Join the directory")])
def test_every_page_is_served_whole_with_its_shared_parts(client, path, heading):
    """The head, header and sign-in form are written once (static/_*.html) and put into each page."""
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<!--#" not in r.text and "{" not in r.text.split("<body")[0]  # every part and slot filled
    assert r.text.count('<link rel="stylesheet" href="/static/app.css">') == 1 and f">{heading}</h1>" in r.text
    assert r.text.count('data-lang="zh"') == 1 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    signs_in = path in ("/staff", "/staff/map", "/staff/posts", "/staff/moderation")  # admin: the console's session
    assert r.text.count('id="staff-key"') == signs_in
    assert int(r.headers["content-length"]) == len(r.content)


def test_a_part_with_a_missing_slot_fails_loudly(tmp_path, monkeypatch):
    from assistant import _web

    (tmp_path / "_head.html").write_text("<title>{title}</title>\n")
    (tmp_path / "page.html").write_text("<head>\n<!--#head-->\n</head>\n")
    (tmp_path / "good.html").write_text('<head>\n  <!--#head title="A &amp; B"-->\n</head>\n')
    monkeypatch.setattr(_web, "STATIC", tmp_path)
    with pytest.raises(ValueError, match="slots"):
        _web.render_page.__wrapped__("page.html")
    assert _web.render_page.__wrapped__("good.html") == b"<head>\n<title>A &amp; B</title>\n</head>\n"


@pytest.mark.parametrize("name, kind", [("chat.js", "text/javascript"), ("staff.js", "text/javascript"), ("dom.js", "text/javascript"), ("staff-common.js", "text/javascript"), ("app.css", "text/css"), ("icon.svg", "image/svg+xml")])
def test_static_files(client, name, kind):
    r = client.get(f"/static/{name}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("name", ["nope.js", "chat.html", "..%2Fapp.py", "%2E%2E%2F_auth.py", ".hidden.js"])
def test_static_files_outside_the_list_are_404_json(client, name):
    r = client.get(f"/static/{name}")
    assert r.status_code == 404 and r.json()["error"]


# What chat.js sends for the "details", "more results" and "I'm interested" buttons, per reply language.
BUTTONS = {
    "pt": ("fornecedores de cortiça em Portugal", "detalhes do 2", "mais", "tenho interesse no 3"),
    "zh": ("我们想找葡萄牙的软木合作伙伴", "第2个的详细信息", "更多", "我对第3个感兴趣"),
    "en": ("Portuguese cork companies", "details of 2", "more", "I'm interested in 3"),
}


@pytest.mark.parametrize("lang", BUTTONS)
def test_the_chat_buttons_phrasings_are_understood(client, lang):
    search, details, more, interest = BUTTONS[lang]

    def say(text, sid=None):
        r = client.post("/api/v1/chat", json={"session_id": sid, "text": text, "channel": "web"})
        assert r.status_code == 200, r.text
        return r.json()

    first = say(search)
    sid = first["session_id"]
    assert first["intent"] == "search" and first["lang"] == lang and len(first["results"]) == 3  # the three cork records
    d = say(details, sid)
    assert d["intent"] == "details" and d["lang"] == lang and d["results"][0]["id"] == first["results"][1]["id"]
    m = say(more, sid)
    # past the last match, "more" lists the less close ones, numbered on
    assert m["intent"] == "more" and m["lang"] == lang and [r["number"] for r in m["results"]] == [4, 5, 6, 7, 8]
    lead = say(interest, sid)  # the start of a contact request, about the organisation the button named
    assert lead["intent"] == "interest" and lead["step"] == "contact_consent" and lead["form"]["step"] == "consent" and lead["lang"] == lang
    assert lead["results"][0]["id"] == first["results"][2]["id"]
