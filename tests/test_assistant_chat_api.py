"""Multi-turn conversations through POST /api/v1/chat on a real server, in three languages, and
the server-issued session tokens that keep one user's conversation out of another's reach."""

import httpx
import pytest

from conftest import STAFF_KEY, LiveServer

STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}


@pytest.fixture(scope="module")
def client(live_api):
    with httpx.Client(base_url=live_api.url, timeout=30) as c:
        yield c


class Talk:
    """One conversation: each turn sends back the session_id of the previous reply."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def __call__(self, text, **extra):
        r = self.client.post("/api/v1/chat", json={"session_id": self.token, "text": text, **extra})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["new_session"] == (self.token is None), (self.token, body["session_id"])
        self.token = body["session_id"]
        return body

    @property
    def stored_id(self) -> str:
        """The id the session is stored (and its leads recorded) under: the token without its signature."""
        return self.token.rpartition(".")[0]


def post(client, session_id, text):
    r = client.post("/api/v1/chat", json={"session_id": session_id, "text": text})
    assert r.status_code == 200, r.text
    return r.json()


def test_chinese_conversation_with_details_and_handoff(client):
    chat = Talk(client)
    hello = chat("你好")
    assert (hello["intent"], hello["lang"]) == ("smalltalk", "zh")
    found = chat("我们想找葡萄牙的软木合作伙伴")
    assert found["intent"] == "search" and found["results"][0]["country"] == "PT"
    assert set(found["results"][0]) >= {"id", "name", "kind", "country", "region"}
    more = chat("更多")
    # the numbers go on after the matches (or, past the last match, with the less close ones)
    assert more["intent"] == "more" and more["results"][0]["number"] == len(found["results"]) + 1
    second = chat("第二个的详细信息")
    assert second["intent"] == "details" and second["results"][0]["id"] == found["results"][1]["id"]
    ask = chat("我对第1个感兴趣")
    assert ask["intent"] == "interest" and ask["handoff"] is False and ask["form"]["step"] == "consent"
    for text in ("同意", "王芳", "宁波软木制品有限公司", "wang.fang@163.com", "好"):
        chat(text)
    lead = chat("确认")
    assert lead["intent"] == "lead" and lead["handoff"] is True and lead["lead_id"]
    leads = client.get("/api/v1/leads", headers=STAFF).json()
    mine = [x for x in leads if x["session_id"] == chat.stored_id]
    assert mine and mine[0]["org_id"] == found["results"][0]["id"] and mine[0]["message"] == "我对第1个感兴趣"
    assert mine[0]["channel"] == "web" and "." not in mine[0]["session_id"]  # staff never see a usable token
    assert (mine[0]["name"], mine[0]["contact"], mine[0]["contact_kind"]) == ("王芳", "wang.fang@163.com", "email")
    bye = chat("谢谢")
    assert (bye["intent"], bye["lang"]) == ("smalltalk", "zh")


def test_portuguese_conversation_with_exclusion_and_switch(client):
    chat = Talk(client)
    first = chat("fabricantes de moldes na China", channel="web")
    assert (first["intent"], first["lang"]) == ("search", "pt")
    narrowed = chat("e só em Zhejiang?")
    assert narrowed["intent"] == "refine" and all(r["region"] == "Zhejiang" for r in narrowed["results"])
    excluded = chat("sem ser Ningbo")
    assert excluded["results"] and all(r["city"] != "Ningbo" for r in excluded["results"])
    switched = chat("And Portuguese mould makers?")
    assert switched["lang"] == "en"


def test_english_conversation_and_out_of_scope(client):
    chat = Talk(client)
    assert chat("help")["intent"] == "help"
    found = chat("Portuguese aerospace cluster")
    assert found["intent"] == "search" and "aeronautics" in found["results"][0]["sectors"]
    assert chat("tell me a joke")["intent"] == "out_of_scope"
    only = chat("only companies")
    assert only["intent"] == "refine"
    bye = chat("bye")
    assert (bye["intent"], bye["lang"]) == ("smalltalk", "en")


def test_empty_text_is_help_and_unknown_session_starts_new(client):
    body = post(client, "api-new-session-xyz", "")
    assert body["intent"] == "help" and body["reply"] and body["new_session"] is True
    assert body["session_id"].startswith("web-") and body["session_id"] != "api-new-session-xyz"
    r = client.post("/api/v1/chat", json={"text": "olá"})
    assert r.status_code == 200 and r.json()["session_id"].startswith("web-") and r.json()["new_session"] is True


@pytest.mark.parametrize(
    "body, field",
    [
        ({"session_id": "s", "text": "x" * 2001}, "text"),
        ({"session_id": "bad id with spaces", "text": "olá"}, "session_id"),
        ({"session_id": "s" * 129, "text": "olá"}, "session_id"),
        ({"session_id": "s", "text": 5}, "text"),
        ({"session_id": "s", "text": "olá", "channel": "Web Chat!"}, "channel"),
        ({"text": "olá", "channel": "telegram"}, "channel"),  # other channels only through their webhooks
        ({"text": "olá", "channel": "wechat"}, "channel"),
        ({"text": "olá", "channel": "api"}, "channel"),
        ({"session_id": "s", "text": "olá", "unknown": True}, "unknown"),
    ],
)
def test_bad_chat_input_is_422(client, body, field):
    r = client.post("/api/v1/chat", json=body)
    assert r.status_code == 422 and r.json()["error"].startswith(field)


def test_leads_need_the_staff_key(client):
    r = client.get("/api/v1/leads")
    assert r.status_code == 401 and "staff key required" in r.json()["error"]
    assert client.get("/api/v1/leads", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/api/v1/leads", headers={"X-Staff-Key": STAFF_KEY}).status_code == 200


def test_leads_disabled_without_a_configured_key(shipped_catalog):
    from fastapi.testclient import TestClient

    from assistant.app import create_app
    from assistant.settings import Settings

    app = create_app(Settings(data_dir=shipped_catalog.data_dir, admin_token=None), shipped_catalog)
    with TestClient(app) as tc:
        r = tc.get("/api/v1/leads", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "disabled" in r.json()["error"]


# -- server-issued sessions -------------------------------------------------------------------
def leads_of(client, session_id):
    return [x for x in client.get("/api/v1/leads", headers=STAFF).json() if x["session_id"] == session_id]


def test_a_session_continues_only_with_the_token_the_server_issued(live_api):
    with httpx.Client(base_url=live_api.url, timeout=30) as alice_client, \
            httpx.Client(base_url=live_api.url, timeout=30) as mallory:
        alice = Talk(alice_client)
        found = alice("fornecedores de cortiça em Portugal")
        assert found["intent"] == "search" and found["results"]
        stored, _, signature = alice.token.rpartition(".")
        assert stored.startswith("web-") and len(stored) >= 20 and signature

        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        other = post(mallory, None, "olá")["session_id"].rpartition(".")[2]  # a real signature, of another session
        for forged in [stored, f"{stored}.{flipped}", f"{stored}.{other}", stored + ".", "." + signature,
                       "web-" + "A" * 22 + "." + signature, alice.token.upper(), alice.token + "x"]:
            more = post(mallory, forged, "mais")
            assert more["new_session"] is True and not more["results"], forged
            assert not more["session_id"].startswith(stored)
            lead = post(mallory, forged, "tenho interesse no 1")
            assert not lead["handoff"] and lead["lead_id"] is None, forged
        assert leads_of(mallory, stored) == []

        # a client-chosen id is not a shared room either: the second request does not see the first
        assert post(mallory, "demo-1", "fabricantes de moldes na China")["intent"] == "search"
        again = post(mallory, "demo-1", "mais")
        assert again["new_session"] is True and not again["results"]

        # Alice is unaffected: her token still continues her search
        more = alice("mais")
        assert more["intent"] == "more" and more["results"][0]["number"] == len(found["results"]) + 1
        assert alice("tenho interesse no 1")["intent"] == "interest"
        for text in ("sim", "Alice Teste", "Rolhas Teste Lda", "alice@example.org", "ok"):
            alice(text)
        assert alice("enviar")["lead_id"]
        assert [x["channel"] for x in leads_of(mallory, stored)] == ["web"]


def test_a_browser_bound_token_does_not_work_without_that_browsers_cookie(live_api):
    with httpx.Client(base_url=live_api.url, timeout=30) as browser:
        page = browser.get("/")
        cookie = page.headers["set-cookie"]
        assert "cpc_browser=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/;" in cookie or cookie.endswith("Path=/")
        chat = Talk(browser)
        found = chat("Portuguese cork companies")
        assert found["results"]
        assert "cpc_browser=" in browser.post("/api/v1/chat", json={"text": "hi"}).headers["set-cookie"]  # renewed
        assert chat("more")["intent"] == "more"

        # the same token from somewhere without the cookie, or with another browser's: a new conversation
        with httpx.Client(base_url=live_api.url, timeout=30) as cookieless:
            bare = post(cookieless, chat.token, "more")
        assert bare["new_session"] is True and not bare["results"]
        with httpx.Client(base_url=live_api.url, timeout=30) as elsewhere:
            elsewhere.get("/")
            assert elsewhere.cookies.get("cpc_browser") != browser.cookies.get("cpc_browser")
            stolen = post(elsewhere, chat.token, "more")
            assert stolen["new_session"] is True and not stolen["results"]
        assert chat("details of 1")["intent"] == "details"  # the owner still goes on


def test_clients_without_cookies_continue_with_the_token_alone(live_api):
    first = httpx.post(f"{live_api.url}/api/v1/chat", json={"text": "fabricantes de moldes na China"}, timeout=30)
    assert "cpc_browser=" in first.headers["set-cookie"]  # offered, but this client keeps no cookies
    token = first.json()["session_id"]
    more = httpx.post(f"{live_api.url}/api/v1/chat", json={"session_id": token, "text": "mais"}, timeout=30).json()
    assert more["new_session"] is False and more["intent"] == "more" and more["session_id"] == token
    # a token minted without a browser also works from a browser that has a cookie
    with httpx.Client(base_url=live_api.url, timeout=30) as browser:
        browser.get("/")
        assert post(browser, token, "detalhes do 6")["intent"] == "details"


def test_tokens_survive_a_restart_of_the_server(shipped_catalog, tmp_path):
    """The signing key lives in the state file, like the sessions it signs."""
    from assistant.app import create_app
    from assistant.settings import Settings

    def serve():
        return LiveServer(create_app(Settings(data_dir=tmp_path, admin_token=STAFF_KEY), shipped_catalog))

    with serve() as live, httpx.Client(base_url=live.url, timeout=30) as client:
        chat = Talk(client)
        chat("Portuguese cork companies")
    with serve() as live, httpx.Client(base_url=live.url, timeout=30) as client:
        client.cookies = chat.client.cookies
        chat.client = client
        assert chat("more")["intent"] == "more"
    with LiveServer(create_app(Settings(data_dir=tmp_path / "other"), shipped_catalog)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as client:
        client.cookies = chat.client.cookies
        other = post(client, chat.token, "more")
        assert other["new_session"] is True and not other["results"]  # another state file, another key


def test_the_browser_cookie_is_secure_behind_https(live_api):
    """Behind a TLS-terminating proxy on the same host (uvicorn trusts its X-Forwarded-Proto),
    the cookie is marked Secure; over plain http (local development) it cannot be."""
    with httpx.Client(base_url=live_api.url, timeout=30) as client:
        https = client.get("/", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
        assert "Secure" in https and "HttpOnly" in https
        assert "Secure" not in client.get("/").headers["set-cookie"]
        kept = client.cookies.get("cpc_browser")
        client.get("/")
        assert client.cookies.get("cpc_browser") == kept  # a reload keeps this browser's cookie
