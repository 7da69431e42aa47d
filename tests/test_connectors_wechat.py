"""The WeChat connector through its real route on a real server, with wechatpy's real crypto and
parsing, Tencent's published sample vector, and a stand-in customer-service API on loopback."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from xml.etree import ElementTree as ET

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto

from conftest import DATA, EXTERNAL, LiveServer

VECTOR = json.loads((EXTERNAL / "wechat-official-sample" / "vector.json").read_text(encoding="utf-8"))
CS_SECRET = "cs-secret-1"
ACCESS_TOKEN = "ACCESS_TOKEN_abc123"


class FakeCustomerService:
    """WeChat's token and customer-service message endpoints, in WeChat's JSON; records messages."""

    def __init__(self):
        self.messages: list[dict] = []
        self.token_requests = 0
        self.app = Starlette(routes=[Route("/cgi-bin/token", self.token),
                                     Route("/cgi-bin/message/custom/send", self.custom_send, methods=["POST"])])

    async def token(self, request: Request) -> JSONResponse:
        q = request.query_params
        self.token_requests += 1
        if q.get("grant_type") != "client_credential" or q.get("appid") != VECTOR["app_id"]:
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != CS_SECRET:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        return JSONResponse({"access_token": ACCESS_TOKEN, "expires_in": 7200})

    async def custom_send(self, request: Request) -> JSONResponse:
        if request.query_params.get("access_token") != ACCESS_TOKEN:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = json.loads(await request.body())
        if body.get("msgtype") != "text" or not body.get("touser") or not body.get("text", {}).get("content"):
            return JSONResponse({"errcode": 44002, "errmsg": "empty post data"})
        self.messages.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    def to(self, openid: str) -> list[str]:
        return [m["text"]["content"] for m in self.messages if m["touser"] == openid]


@pytest.fixture(scope="module")
def cs_api():
    fake = FakeCustomerService()
    with LiveServer(fake.app) as server:
        fake.url = server.url
        yield fake


SAFE = {"wechat_aes_key": VECTOR["encoding_aes_key"]}  # with the AppID: safe (AES) mode


def serve(catalog, data_dir, cs_api, **overrides):
    """Plaintext mode with the Tencent sample's token and AppID, unless ``SAFE`` is passed."""
    from assistant.app import create_app
    from assistant.settings import Settings

    config = dict(data_dir=data_dir, wechat_token=VECTOR["token"], wechat_appid=VECTOR["app_id"],
                  wechat_secret=CS_SECRET, wechat_api_base=cs_api.url, wechat_reply_timeout=4.8)
    app = create_app(Settings(**{**config, **overrides}), catalog)
    server = LiveServer(app)
    server.app = app
    return server


@pytest.fixture(scope="module")
def wx(shipped_catalog, cs_api, tmp_path_factory):
    """Plaintext mode, with the Tencent sample's token and AppID."""
    with serve(shipped_catalog, tmp_path_factory.mktemp("wx"), cs_api) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        client.app = server.app
        yield client


@pytest.fixture(scope="module")
def wx_safe(shipped_catalog, cs_api, tmp_path_factory):
    """Safe (AES) mode, with the Tencent sample's token, EncodingAESKey and AppID."""
    with serve(shipped_catalog, tmp_path_factory.mktemp("wx-safe"), cs_api, **SAFE) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        client.app = server.app
        yield client


@pytest.fixture
def in_2014(monkeypatch):
    """The connector's clock at the Tencent sample's time, so its 2014 signature is current."""

    def at(client_or_app, timestamp: str = VECTOR["timestamp"]):
        app = getattr(client_or_app, "app", client_or_app)
        monkeypatch.setattr(app.state.wechat, "clock", lambda: int(timestamp))

    return at


def signature(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def plain_params(token: str = VECTOR["token"], timestamp: str | None = None, nonce: str | None = None) -> dict:
    """Signed query parameters; a fresh nonce each time, as WeChat sends (a reused one is a replay)."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    return {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": "o"}


CRYPTO = WeChatCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["app_id"])


def sealed(xml: str, timestamp: str | None = None) -> tuple[dict, str]:
    """A message as WeChat posts it in safe mode (wechatpy's real AES): query parameters and body."""
    timestamp = timestamp or str(int(time.time()))
    nonce = str(secrets.randbelow(10**10))
    out = fields(CRYPTO.encrypt_message(xml, nonce, timestamp))
    body = f"<xml><ToUserName><![CDATA[gh_cpc]]></ToUserName><Encrypt><![CDATA[{out['Encrypt']}]]></Encrypt></xml>"
    return {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes", "msg_signature": out["MsgSignature"]}, body


def opened(r: httpx.Response) -> dict[str, str]:
    """The fields of an encrypted passive reply."""
    outer = fields(r.text)
    return fields(CRYPTO.decrypt_message(r.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]))


def text_xml(openid: str, content: str, msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_cpc]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def fields(xml: str) -> dict[str, str]:
    return {c.tag: c.text or "" for c in ET.fromstring(xml)}


_ids = iter(range(7_000_000_000_000_000_000, 8_000_000_000_000_000_000))


def ask(client, cs_api, openid: str, content: str, msg_id: int | None = None, token: str = VECTOR["token"]) -> str:
    """One text message in plaintext mode; the answer, passive or pushed later through customer service."""
    pushed = len(cs_api.to(openid))
    r = client.post("/wechat", params=plain_params(token), content=text_xml(openid, content, msg_id or next(_ids)))
    assert r.status_code == 200, r.text
    if r.text != "success":
        reply = fields(r.text)
        assert reply["ToUserName"] == openid and reply["FromUserName"] == "gh_cpc" and reply["MsgType"] == "text"
        return reply["Content"]
    deadline = time.time() + 60
    while len(cs_api.to(openid)) == pushed and time.time() < deadline:
        time.sleep(0.05)
    return cs_api.to(openid)[pushed]


# -- verification and the Tencent sample ----------------------------------------------------------
def test_sample_vector_decrypts_with_wechatpy():
    crypto = WeChatCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["app_id"])
    plain = crypto.decrypt_message(VECTOR["body"], VECTOR["msg_signature"], VECTOR["timestamp"], VECTOR["nonce"])
    assert fields(plain) == VECTOR["expect"]


def sample_params(**changes) -> dict:
    params = {"timestamp": VECTOR["timestamp"], "nonce": VECTOR["nonce"], "encrypt_type": "aes",
              "msg_signature": VECTOR["msg_signature"]}
    return {**params, **changes}


def test_sample_request_through_the_route_and_encrypted_reply(wx_safe, in_2014):
    wx = wx_safe
    in_2014(wx)
    expect = VECTOR["expect"]
    r = wx.post("/wechat", params=sample_params(), content=VECTOR["body"])
    assert r.status_code == 200, r.text
    sealed = fields(r.text)
    assert set(sealed) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    crypto = WeChatCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["app_id"])
    reply = fields(crypto.decrypt_message(r.text, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]))
    assert reply["ToUserName"] == expect["FromUserName"] and reply["FromUserName"] == expect["ToUserName"]
    assert reply["MsgType"] == "text" and reply["Content"]
    # the route read the sealed message: the sender's session took one turn with "abcdteT"
    store = wx.app.state.assistant.store
    assert store.load(f"wx-{expect['FromUserName']}").turns == 1
    # the same request again, within its five minutes: a replay
    again = wx.post("/wechat", params=sample_params(), content=VECTOR["body"])
    assert again.status_code == 403 and again.json()["error"].startswith("replayed request")
    assert store.load(f"wx-{expect['FromUserName']}").turns == 1


def test_reply_encrypts_and_decrypts_back():
    crypto = WeChatCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["app_id"])
    from connectors.wechat import reply_xml
    from wechatpy import parse_message

    message = parse_message(crypto.decrypt_message(VECTOR["body"], VECTOR["msg_signature"], VECTOR["timestamp"], VECTOR["nonce"]))
    out = crypto.encrypt_message(reply_xml(message, "葡萄牙软木 & <cork> ]]> 结束"), "nonce-1", "1700000000")
    sealed = fields(out)
    back = fields(crypto.decrypt_message(out, sealed["MsgSignature"], "1700000000", "nonce-1"))
    assert back["Content"] == "葡萄牙软木 & <cork> ]]> 结束" and back["ToUserName"] == VECTOR["expect"]["FromUserName"]


def flip(s: str, i: int) -> str:
    return s[:i] + ("0" if s[i] != "0" else "1") + s[i + 1:]


ENC_AT = VECTOR["body"].index("<Encrypt><![CDATA[") + 40


UNSEALED = "bad signature or undecryptable message"
DIFFERS = "the plaintext fields differ from the encrypted message"


@pytest.mark.parametrize("params, body, error", [
    (sample_params(msg_signature=flip(VECTOR["msg_signature"], 0)), VECTOR["body"], UNSEALED),
    (sample_params(msg_signature=flip(VECTOR["msg_signature"], 39)), VECTOR["body"], UNSEALED),
    (sample_params(timestamp="1409735670"), VECTOR["body"], UNSEALED),
    (sample_params(nonce="1320562133"), VECTOR["body"], UNSEALED),
    (sample_params(), flip(VECTOR["body"], ENC_AT), UNSEALED),
    (sample_params(), VECTOR["body"].replace("abcdteT", "abcdteX"), DIFFERS),  # the plaintext copy disagrees
    (sample_params(), VECTOR["body"].replace("oyORnuP8q7ou", "oyORnuP8q7oX"), DIFFERS),
], ids=["sig-first", "sig-last", "timestamp", "nonce", "encrypt", "plain-content", "plain-sender"])
def test_one_changed_byte_is_403(wx_safe, in_2014, params, body, error):
    in_2014(wx_safe)  # so the refusal is for the changed byte, not for the sample's age
    r = wx_safe.post("/wechat", params=params, content=body)
    assert r.status_code == 403 and r.json()["error"] == error, r.text


def test_changed_key_is_403(shipped_catalog, cs_api, tmp_path, in_2014):
    key = VECTOR["encoding_aes_key"]
    with serve(shipped_catalog, tmp_path, cs_api, wechat_aes_key=key[:10] + ("b" if key[10] != "b" else "c") + key[11:]) as s:
        in_2014(s.app)
        r = httpx.post(f"{s.url}/wechat", params=sample_params(), content=VECTOR["body"])
        assert r.status_code == 403 and r.json()["error"] == UNSEALED


def test_aes_key_without_appid_is_refused_at_start(tmp_path):
    from assistant.app import create_app
    from assistant.settings import Settings

    with pytest.raises(ValueError, match="CPC_WECHAT_APPID"):
        create_app(Settings(data_dir=tmp_path, wechat_token=VECTOR["token"], **SAFE))


def test_plaintext_url_verification(shipped_catalog, cs_api, tmp_path, in_2014):
    v = VECTOR["plain_signature_vector"]
    with serve(shipped_catalog, tmp_path, cs_api, wechat_token=v["token"]) as s, httpx.Client(base_url=s.url) as c:
        in_2014(s.app, v["timestamp"])
        good = {"signature": v["signature"], "timestamp": v["timestamp"], "nonce": v["nonce"], "echostr": "8372619"}
        r = c.get("/wechat", params=good)
        assert r.status_code == 200 and r.text == "8372619"
        assert c.get("/wechat", params={**good, "signature": flip(v["signature"], 5)}).status_code == 403
        assert c.get("/wechat", params={**good, "nonce": "tesT"}).status_code == 403
        assert c.get("/wechat", params={k: good[k] for k in ("timestamp", "nonce", "echostr")}).status_code == 400
        # a POST signed with another token is refused too
        r = c.post("/wechat", params=plain_params("spamtest", v["timestamp"]), content=text_xml("o1", "你好", 1))
        assert r.status_code == 403 and r.json()["error"] == "bad signature"
        # and the published vector itself, on today's clock, is years too old
        s.app.state.wechat.clock = time.time
        r = c.get("/wechat", params=good)
        assert r.status_code == 403 and "from the server's clock" in r.json()["error"]


# -- downgrade, age and replay ------------------------------------------------------------------
def test_plaintext_is_refused_when_safe_mode_is_configured(wx_safe, cs_api):
    """The plain signature covers timestamp and nonce, not the body: with an EncodingAESKey set, a
    plaintext request would let anyone holding one signature post any message as any user."""
    openid = "o-downgrade"
    store = wx_safe.app.state.assistant.store
    for params in [plain_params(), {**plain_params(), "encrypt_type": "raw"}, {**plain_params(), "encrypt_type": "AES"}]:
        r = wx_safe.post("/wechat", params=params, content=text_xml(openid, "葡萄牙的软木企业", next(_ids)))
        assert r.status_code == 403 and "safe mode is configured" in r.json()["error"], r.text
    assert store.load(f"wx-{openid}").turns == 0 and not cs_api.to(openid)

    # the same message sealed, as WeChat sends it in safe mode, is answered (sealed too)
    params, body = sealed(text_xml(openid, "葡萄牙的软木企业", next(_ids)))
    r = wx_safe.post("/wechat", params=params, content=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml"), r.text
    reply = opened(r)
    assert reply["ToUserName"] == openid and reply["Content"].startswith("与“葡萄牙的软木企业”最相关的机构")


def test_the_sample_from_2014_is_refused_today(wx_safe):
    store, sid = wx_safe.app.state.assistant.store, f"wx-{VECTOR['expect']['FromUserName']}"
    turns = store.load(sid).turns
    r = wx_safe.post("/wechat", params=sample_params(), content=VECTOR["body"])
    assert r.status_code == 403 and "from the server's clock" in r.json()["error"], r.text
    assert store.load(sid).turns == turns


@pytest.mark.parametrize("age, status", [(0, 200), (100, 200), (-100, 200), (121, 403), (-121, 403),
                                         (86400 * 365 * 12, 403)])
def test_signed_requests_must_be_within_two_minutes(wx, wx_safe, age, status):
    stamp = str(int(time.time()) - age)
    r = wx.post("/wechat", params=plain_params(timestamp=stamp), content=text_xml("o-age", "你好", next(_ids)))
    assert r.status_code == status, r.text
    params, body = sealed(text_xml("o-age", "你好", next(_ids)), timestamp=stamp)
    r = wx_safe.post("/wechat", params=params, content=body)
    assert r.status_code == status, r.text
    if status == 403:
        assert "from the server's clock" in r.json()["error"]
    assert wx.get("/wechat", params={**plain_params(timestamp=stamp), "echostr": "42"}).status_code == status


def test_a_url_verification_cannot_be_replayed(wx):
    """The GET verification is signed over (timestamp, nonce) only: a captured URL answered again
    would prove the token to whoever replays it. Each pair verifies once; a new nonce is fine."""
    first = {**plain_params(), "echostr": "5150"}
    r = wx.get("/wechat", params=first)
    assert r.status_code == 200 and r.text == "5150"
    again = wx.get("/wechat", params={**first, "echostr": "other"})
    assert again.status_code == 403 and "replayed" in again.json()["error"]
    assert wx.get("/wechat", params={**plain_params(), "echostr": "6"}).status_code == 200


def test_timestamps_that_are_not_unix_seconds_are_400(wx):
    for stamp in ["abc", "-5", "1e9", "99999999999999999999"]:
        params = {**plain_params(), "timestamp": stamp}
        params["signature"] = signature(VECTOR["token"], stamp, params["nonce"])
        r = wx.post("/wechat", params=params, content=text_xml("o-ts", "你好", next(_ids)))
        assert r.status_code == 400 and "Unix seconds" in r.json()["error"], stamp


def test_a_signature_is_accepted_once(wx, wx_safe, cs_api):
    store = wx.app.state.assistant.store
    params = plain_params()
    first = wx.post("/wechat", params=params, content=text_xml("o-first", "葡萄牙的软木企业", next(_ids)))
    assert first.status_code == 200
    # the same signed parameters with another body (the plain signature does not cover it) ...
    forged = wx.post("/wechat", params=params, content=text_xml("o-victim", "我对第1个感兴趣", next(_ids)))
    assert forged.status_code == 403 and forged.json()["error"].startswith("replayed request")
    assert store.load("wx-o-victim").turns == 0
    # ... or with the same body
    assert wx.post("/wechat", params=params, content=text_xml("o-first", "葡萄牙的软木企业", 1)).status_code == 403
    assert store.load("wx-o-first").turns == 1

    # a wrong signature does not use up the nonce: the genuine request with it still goes through
    genuine = plain_params()
    wrong = {**genuine, "signature": flip(genuine["signature"], 3)}
    assert wx.post("/wechat", params=wrong, content=text_xml("o-late", "你好", next(_ids))).status_code == 403
    assert wx.post("/wechat", params=genuine, content=text_xml("o-late", "你好", next(_ids))).status_code == 200

    # safe mode: the same sealed request twice
    params, body = sealed(text_xml("o-sealed", "你好", next(_ids)))
    assert wx_safe.post("/wechat", params=params, content=body).status_code == 200
    again = wx_safe.post("/wechat", params=params, content=body)
    assert again.status_code == 403 and again.json()["error"].startswith("replayed request")
    assert wx_safe.app.state.assistant.store.load("wx-o-sealed").turns == 1


# -- what users send ------------------------------------------------------------------------------
SUBSCRIBE_MSG_EVENTS = {
    "subscribe_msg_popup_event": "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3]]></TemplateId>"
    "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>"
    "<List><TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5W]]></TemplateId>"
    "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>",
    "subscribe_msg_change_event": "<SubscribeMsgChangeEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3]]></TemplateId>"
    "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgChangeEvent>",
    "subscribe_msg_sent_event": "<SubscribeMsgSentEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3]]></TemplateId>"
    "<MsgID>1700827132819554304</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List>"
    "</SubscribeMsgSentEvent>",
}


@pytest.mark.parametrize("event", [*SUBSCRIBE_MSG_EVENTS, "TEMPLATESENDJOBFINISH", "VIEW", "unsubscribe"])
def test_notification_events_get_no_reply(wx, cs_api, event):
    openid = f"o-{event[:20]}"
    extra = SUBSCRIBE_MSG_EVENTS.get(event, "")
    xml = (f"<xml><ToUserName><![CDATA[gh_cpc]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           f"<Event><![CDATA[{event}]]></Event>{extra}</xml>")
    r = wx.post("/wechat", params=plain_params(), content=xml)
    assert r.status_code == 200 and r.text == "success"
    time.sleep(0.2)
    assert not cs_api.to(openid)


def voice_xml(openid: str, recognition: str | None, msg_id: int) -> str:
    said = "" if recognition is None else f"<Recognition><![CDATA[{recognition}]]></Recognition>"
    return (f"<xml><ToUserName><![CDATA[gh_cpc]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
            f"<MediaId><![CDATA[media_id_1]]></MediaId><Format><![CDATA[amr]]></Format>{said}<MsgId>{msg_id}</MsgId></xml>")


def test_voice_is_answered_from_the_text_wechat_recognised(wx):
    r = wx.post("/wechat", params=plain_params(), content=voice_xml("o-voice", "葡萄牙的软木企业", next(_ids)))
    assert fields(r.text)["Content"].startswith("与“葡萄牙的软木企业”最相关的机构")
    assert wx.app.state.assistant.store.load("wx-o-voice").query == "葡萄牙的软木企业"
    for recognition in ["", "  ", None]:  # nothing recognised (or recognition off): a request to type
        r = wx.post("/wechat", params=plain_params(), content=voice_xml("o-voice-2", recognition, next(_ids)))
        assert fields(r.text)["Content"].startswith("抱歉，目前只能处理文字消息"), recognition


def test_message_ids_are_per_user(wx, cs_api):
    """MsgId is the user's message number: two users may send the same one, and both get answers."""
    msg_id = next(_ids)
    store = wx.app.state.assistant.store
    a = ask(wx, cs_api, "o-user-a", "葡萄牙的软木企业", msg_id)
    b = ask(wx, cs_api, "o-user-b", "葡萄牙的模具企业", msg_id)
    assert a.startswith("与“葡萄牙的软木企业”最相关的机构") and b.startswith("与“葡萄牙的模具企业”最相关的机构")
    assert ask(wx, cs_api, "o-user-a", "葡萄牙的软木企业", msg_id) == a  # a retry: the same answer, not a second turn
    assert store.load("wx-o-user-a").turns == 1 and store.load("wx-o-user-b").turns == 1


def test_a_wechat_conversation_is_not_reachable_from_the_public_chat_route(wx):
    openid = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    store = wx.app.state.assistant.store
    r = wx.post("/wechat", params=plain_params(), content=text_xml(openid, "我们想找葡萄牙的软木合作伙伴", next(_ids)))
    assert "最相关的机构" in fields(r.text)["Content"]
    before = store.load(f"wx-{openid}")
    for attempt in [{"session_id": f"wx-{openid}"}, {"session_id": f"wx-{openid}", "channel": "web"}]:
        more = wx.post("/api/v1/chat", json={**attempt, "text": "更多"}).json()
        assert more["new_session"] is True and not more["results"] and not more["session_id"].startswith("wx-")
        lead = wx.post("/api/v1/chat", json={**attempt, "text": "我对第1个感兴趣"}).json()
        assert not lead["handoff"] and lead["lead_id"] is None
    r = wx.post("/api/v1/chat", json={"session_id": f"wx-{openid}", "text": "更多", "channel": "wechat"})
    assert r.status_code == 422 and r.json()["error"].startswith("channel")
    after = store.load(f"wx-{openid}")
    assert (after.turns, after.page, after.shown) == (before.turns, before.page, before.shown)
    assert not [x for x in store.leads() if x["channel"] == "wechat"]


# -- hostile bodies -------------------------------------------------------------------------------
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o2</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>
<Content>&lol9;</Content><MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS,
    BILLION_LAUGHS.replace("<!DOCTYPE", "<!doctype"),
    '<xml><FromUserName>o</FromUserName><Content>&lol9;</Content></xml>',  # undeclared entity
    '<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><xml><Content>&x;</Content></xml>',
    "<xml><Content>unclosed</xml>",
    "<notxml><MsgType>text</MsgType></notxml>",
    "<xml><FromUserName>o</FromUserName></xml>",  # no MsgType
    "not xml at all",
    "",
])
def test_hostile_or_broken_xml_is_400(wx, wx_safe, body):
    r = wx.post("/wechat", params=plain_params(), content=body.encode())
    assert r.status_code == 400, r.text
    r = wx_safe.post("/wechat", params=sample_params(), content=body.encode())
    assert r.status_code in (400, 403), r.text


def test_non_utf8_and_oversized_bodies(wx):
    assert wx.post("/wechat", params=plain_params(), content=text_xml("o3", "ok", 3).encode("utf-16")).status_code == 400
    big = text_xml("o3", "软木" * 40_000, 4)
    assert wx.post("/wechat", params=plain_params(), content=big.encode()).status_code == 413


# -- answering ----------------------------------------------------------------------------------
def test_chinese_conversation_in_plaintext_mode(wx, cs_api):
    openid = "o-conversation-zh"
    store = wx.app.state.assistant.store
    records = wx.app.state.catalog.engine.records

    first = ask(wx, cs_api, openid, "我们想找葡萄牙的软木合作伙伴")
    shown = store.load(f"wx-{openid}").shown
    assert first.startswith("与“我们想找葡萄牙的软木合作伙伴”最相关的机构")
    assert set(shown[:2]) <= {"pt-apcor", "pt-corticeira-amorim", "pt-aiff"}
    assert records[shown[0]].name_in("zh") in first and len(first.encode()) <= 2047

    more = ask(wx, cs_api, openid, "更多")
    # more matches, or once they are all shown, the less close ones, said to be so
    assert more.startswith(("“我们想找葡萄牙的软木合作伙伴”的更多结果", "与“我们想找葡萄牙的软木合作伙伴”相近的结果已全部列出"))
    assert f"\n{len(shown) + 1}. " in more and len(store.load(f"wx-{openid}").shown) > len(shown)

    details = ask(wx, cs_api, openid, "第二个的详细信息")
    second = records[shown[1]]
    assert details.startswith(second.name_in("zh")) and "领域:" in details


def test_subscribe_and_media_messages(wx):
    base = "<ToUserName><![CDATA[gh_cpc]]></ToUserName><FromUserName><![CDATA[o-new]]></FromUserName>"
    now = int(time.time())
    subscribe = f"<xml>{base}<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"
    r = wx.post("/wechat", params=plain_params(), content=subscribe)
    welcome = fields(r.text)["Content"]
    assert welcome.startswith("您好！") and "葡萄牙的软木合作伙伴" in welcome
    unsubscribe = subscribe.replace("[subscribe]", "[unsubscribe]").replace(str(now), str(now + 1))
    assert wx.post("/wechat", params=plain_params(), content=unsubscribe).text == "success"
    for kind, extra in [("image", "<PicUrl><![CDATA[http://x/p.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId>"),
                        ("voice", "<MediaId><![CDATA[m2]]></MediaId><Format><![CDATA[amr]]></Format>"),
                        ("location", "<Location_X>41.1</Location_X><Location_Y>-8.6</Location_Y><Scale>15</Scale>")]:
        xml = f"<xml>{base}<CreateTime>{now}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{extra}<MsgId>{next(_ids)}</MsgId></xml>"
        r = wx.post("/wechat", params=plain_params(), content=xml)
        assert fields(r.text)["Content"].startswith("抱歉，目前只能处理文字消息"), kind


def test_retried_msgid_is_answered_once_with_the_same_reply(wx, cs_api):
    openid, msg_id = "o-retry", next(_ids)
    body = text_xml(openid, "葡萄牙的模具企业", msg_id)
    answers: list[str] = []

    def deliver():
        answers.append(wx.post("/wechat", params=plain_params(), content=body).text)

    store = wx.app.state.assistant.store
    with store._lock:  # the state store is busy, so the first delivery is still being answered...
        first = threading.Thread(target=deliver)
        first.start()
        time.sleep(0.3)
        retry = threading.Thread(target=deliver)  # ...when WeChat retries the same MsgId
        retry.start()
        time.sleep(0.3)
        assert answers == []  # both wait for the one answer
    first.join()
    retry.join()
    deliver()  # and a retry after it finished
    passive = {fields(a)["Content"] for a in answers if a != "success"}
    assert len(passive) <= 1
    if "success" in answers:  # it took longer than the timeout: the answer is pushed, once
        deadline = time.time() + 60
        while not cs_api.to(openid) and time.time() < deadline:
            time.sleep(0.05)
    time.sleep(0.3)
    assert len(passive) + len(cs_api.to(openid)) == 1, (answers, cs_api.to(openid))
    assert store.load(f"wx-{openid}").turns == 1


def test_slow_answer_is_pushed_through_customer_service(shipped_catalog, cs_api, tmp_path):
    openid, msg_id = "o-slow", next(_ids)
    with serve(shipped_catalog, tmp_path, cs_api, wechat_reply_timeout=0) as s, httpx.Client(base_url=s.url) as c:
        r = c.post("/wechat", params=plain_params(), content=text_xml(openid, "葡萄牙的软木合作伙伴", msg_id))
        assert r.status_code == 200 and r.text == "success"
        deadline = time.time() + 60
        while not cs_api.to(openid) and time.time() < deadline:
            time.sleep(0.05)
        pushed = cs_api.to(openid)
        assert len(pushed) == 1 and pushed[0].startswith("与“葡萄牙的软木合作伙伴”最相关的机构")
        assert cs_api.token_requests >= 1
        # WeChat's retry of the same MsgId: acknowledged, not answered twice
        r = c.post("/wechat", params=plain_params(), content=text_xml(openid, "葡萄牙的软木合作伙伴", msg_id))
        assert r.text == "success"
        time.sleep(0.3)
        assert len(cs_api.to(openid)) == 1 and s.app.state.assistant.store.load(f"wx-{openid}").turns == 1


# -- WeChat's 2,047-byte limit --------------------------------------------------------------------
def test_cut_is_at_a_line_boundary_within_2047_bytes():
    from connectors.wechat import cut

    lines = [f"{i}. 葡萄牙软木企业{i}号 — 企业，葡萄牙北部大区，生产软木塞和软木复合材料" for i in range(1, 80)]
    text = "\n".join(lines)
    head, rest = cut(text, "zh")
    assert len(head.encode()) <= 2047 and head.endswith("（回复“更多”查看更多内容）")
    kept = head.split("\n")[:-1]
    assert kept == lines[: len(kept)] and rest.split("\n")[0] == lines[len(kept)]
    assert cut("短消息", "zh") == ("短消息", None)
    # a single line too long for one message is cut inside the line, still within the limit
    head, rest = cut("软" * 3000, "zh")
    assert len(head.encode()) <= 2047 and head.startswith("软") and rest == "软" * (3000 - head.count("软"))


def test_a_closing_hint_alone_never_takes_a_page_of_its_own():
    from assistant import say
    from connectors.base import text
    from connectors.wechat import MAX_BYTES, cut, fit

    hint = say("hint", "zh")
    lines = ["与“模具”最相关的机构："] + [f"{i}. 宁波模具企业{i}号 — 企业，浙江，宁波" + "，注塑模具" * 20 for i in range(1, 6)]
    room = MAX_BYTES - len(("\n" + text("cut", "zh")).encode())  # what a cut page holds besides its own hint
    while len("\n".join(lines).encode()) + 3 <= room:  # the list fits, its closing hint does not
        lines[-1] += "模"
    text = "\n".join(lines + [hint])
    assert cut(text, "zh")[1] == hint  # cut alone would leave only the hint for the next "更多"
    head, rest = fit(text, "zh")
    assert rest is None and head == "\n".join(lines) and len(head.encode()) <= MAX_BYTES
    # a rest with results in it is kept for "更多"
    longer = "\n".join(lines + ["6. 余姚模具城 — 产业集群，浙江，余姚", hint])
    assert fit(longer, "zh")[1].startswith("6. ")


LONG_ZH = {
    "id": "cn-long-moulds", "kind": "company", "name": "Long Description Mould Co.", "country": "CN",
    "region": "Zhejiang", "city": "Ningbo", "sectors": ["moulds"], "lang": "zh",
    "description": "宁波长文模具有限公司是一家虚构的测试企业，专门生产汽车和家电用的大型注塑模具。" * 14,
    "offers": "提供注塑模具设计、精密加工、试模和售后服务，并可与葡萄牙企业开展联合研发。" * 12,
    "seeks": "寻求葡萄牙模具行业的合作伙伴，包括分销商、技术中心和研究机构。" * 12,
    "i18n": {"zh": {"name": "宁波长文模具有限公司"}},
    "sources": ["https://example.org/long"],
}


def long_reply_catalog(encoder, tmp_path):
    """The fictional records and one whose Chinese answer passes WeChat's 2,047-byte cap, indexed."""
    from index import Catalog

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text((DATA / "fictional.jsonl").read_text(encoding="utf-8").rstrip("\n") + "\n"
                      + json.dumps(LONG_ZH, ensure_ascii=False) + "\n", encoding="utf-8")
    catalog = Catalog(tmp_path / "data", encoder)
    catalog.open(corpus)
    return catalog


def test_oversized_chinese_answer_is_cut_and_continued(encoder, cs_api, tmp_path):
    from assistant._state import SQLiteStateStore
    from assistant.dialogue import Assistant

    catalog = long_reply_catalog(encoder, tmp_path)
    try:
        # what the assistant says, straight from the core
        core = Assistant(catalog.engine, SQLiteStateStore(tmp_path / "core.sqlite"))
        core.respond("probe", "浙江的模具企业")
        n = core.store.load("probe").shown.index("cn-long-moulds") + 1
        full = core.respond("probe", f"第{n}个的详细信息").text
        assert len(full.encode()) > 2 * 2047

        openid = "o-long"
        with serve(catalog, tmp_path / "data", cs_api) as s, httpx.Client(base_url=s.url, timeout=60) as c:
            ask(c, cs_api, openid, "浙江的模具企业")
            parts = [ask(c, cs_api, openid, f"第{n}个的详细信息")]
            while parts[-1].endswith("（回复“更多”查看更多内容）"):
                parts.append(ask(c, cs_api, openid, "更多"))
                assert len(parts) < 10
        assert len(parts) >= 3 and all(len(p.encode()) <= 2047 for p in parts)
        bodies = [p.removesuffix("\n（回复“更多”查看更多内容）") for p in parts]
        assert "\n".join(bodies) == full  # cut only between lines, nothing lost
    finally:
        catalog.close()


def test_reply_content_cannot_break_out_of_cdata():
    from connectors.wechat import reply_xml
    from wechatpy import parse_message

    message = parse_message(text_xml("o-x", "hi", 5))
    out = reply_xml(message, "a]]></Content><MsgType>news</MsgType><Content><![CDATA[b")
    assert fields(out)["Content"] == "a]]></Content><MsgType>news</MsgType><Content><![CDATA[b"
    assert fields(out)["MsgType"] == "text"


# -- from interest to a consented lead, and staff replying within WeChat's 48 hours -------------------------
STAFF = {"Authorization": "Bearer wx-staff-key"}


def test_chinese_lead_then_staff_reply_as_customer_service_message_and_the_48_hour_window(shipped_catalog, cs_api, tmp_path):
    import sqlite3

    openid = "o-lead-zh"
    with serve(shipped_catalog, tmp_path, cs_api, admin_token="wx-staff-key") as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        ask(client, cs_api, openid, "我们想找葡萄牙的软木合作伙伴")
        consent = ask(client, cs_api, openid, "我对第1个感兴趣")
        assert "个人信息保护法" in consent and "微信号" in consent
        for text in ("同意", "王芳"):
            ask(client, cs_api, openid, text)
        contact = ask(client, cs_api, openid, "宁波软木制品有限公司")
        assert "就在这里" in contact and "微信" in contact
        bad = ask(client, cs_api, openid, "wang@163")
        assert "不是有效的邮箱地址" in bad
        need = ask(client, cs_api, openid, "就在这里")
        assert need.startswith("请用一句话说明您的需求")
        ask(client, cs_api, openid, "采购天然软木塞，每年两百万只")
        done = ask(client, cs_api, openid, "确认")
        assert done.startswith("您的请求（编号") and "微信对话" in done

        (lead,) = client.get("/api/v1/leads", params={"channel": "wechat"}, headers=STAFF).json()
        assert (lead["name"], lead["asker_org"], lead["contact_kind"], lead["need"]) == \
            ("王芳", "宁波软木制品有限公司", "wechat", "采购天然软木塞，每年两百万只")
        assert lead["organisations"][0]["id"] == server.app.state.assistant.store.load(f"wx-{openid}").shown[0]
        assert client.patch(f"/api/v1/leads/{lead['id']}", json={"status": "contacted"}, headers=STAFF).status_code == 200

        before = len(cs_api.to(openid))
        r = client.post(f"/api/v1/leads/{lead['id']}/reply", json={"text": "王女士您好，APCOR已同意对接。"}, headers=STAFF)
        assert r.status_code == 200 and r.json()["delivery"] == "sent"
        assert cs_api.to(openid)[before:] == [f"CPC联盟工作人员的消息（请求编号 {lead['id']}）：\n王女士您好，APCOR已同意对接。"]

        # 49 hours after the user's last message WeChat no longer takes customer-service messages
        db = sqlite3.connect(tmp_path / "state.sqlite")
        with db:
            db.execute("UPDATE leads SET last_inbound = ?, created = ? WHERE id = ?", (time.time() - 49 * 3600, time.time() - 50 * 3600, lead["id"]))
        db.close()
        r = client.post(f"/api/v1/leads/{lead['id']}/reply", json={"text": "还在吗？"}, headers=STAFF)
        assert r.status_code == 409 and "48-hour" in r.json()["error"] and r.json()["detail"]["last_inbound"]
        assert len(cs_api.to(openid)) == before + 1
        # the user writes again: the window opens again
        ask(client, cs_api, openid, "你好")
        r = client.post(f"/api/v1/leads/{lead['id']}/reply", json={"text": "还在吗？"}, headers=STAFF)
        assert r.status_code == 200 and cs_api.to(openid)[-1].endswith("还在吗？")


# -- two workers on one data folder -----------------------------------------------------------------
def test_two_workers_answer_a_retried_message_once_and_share_the_rest_of_a_cut_reply(encoder, cs_api, tmp_path):
    """WeChat retries a MsgId at another worker while the first is still answering: one answer,
    one turn. A reply cut at 2,047 bytes is continued by "更多" on either worker."""
    catalog = long_reply_catalog(encoder, tmp_path)
    try:
        with serve(catalog, tmp_path / "data", cs_api) as a, serve(catalog, tmp_path / "data", cs_api) as b, \
                httpx.Client(base_url=a.url, timeout=60) as first, httpx.Client(base_url=b.url, timeout=60) as second:
            openid, msg_id = "o-two-workers", next(_ids)
            body = text_xml(openid, "浙江的模具企业", msg_id)
            answers: list[str] = []
            threads = [threading.Thread(target=lambda c=c: answers.append(c.post("/wechat", params=plain_params(),
                                                                                  content=body).text))
                       for c in (first, second)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            passive = {fields(a)["Content"] for a in answers if a != "success"}  # the same reply from both
            time.sleep(0.5)
            assert len(passive) + len(cs_api.to(openid)) == 1, (answers, cs_api.to(openid))
            store = a.app.state.assistant.store
            assert store.load(f"wx-{openid}").turns == 1
            n = store.load(f"wx-{openid}").shown.index("cn-long-moulds") + 1
            parts = [ask(first, cs_api, openid, f"第{n}个的详细信息")]
            while parts[-1].endswith("（回复“更多”查看更多内容）"):
                parts.append(ask(second if len(parts) % 2 else first, cs_api, openid, "更多"))
                assert len(parts) < 10
            assert len(parts) >= 3 and all(len(p.encode()) <= 2047 for p in parts)
    finally:
        catalog.close()


# -- threads with the team, a person, the status of a request (team) --------------------------------
def test_a_users_answer_to_staff_on_wechat_goes_to_the_thread_not_to_a_search(shipped_catalog, cs_api, tmp_path):
    openid = "o-thread-zh"
    with serve(shipped_catalog, tmp_path, cs_api, admin_token="wx-staff-key") as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        none = ask(client, cs_api, openid, "我的请求进展如何？")
        assert none.startswith("您还没有向工作人员提交请求")
        opened = ask(client, cs_api, openid, "我想和工作人员联系")
        assert "请求编号" in opened
        (lead,) = client.get("/api/v1/leads", params={"channel": "wechat"}, headers=STAFF).json()
        assert client.post(f"/api/v1/leads/{lead['id']}/reply", json={"text": "您好，宁波的展会在下个月。"},
                           headers=STAFF).status_code == 200
        answer = ask(client, cs_api, openid, "好的，谢谢！我下周三有空，可以电话联系")
        assert answer.startswith("已转给CPC联盟工作人员") and "最相关的机构" not in answer
        thread = client.get(f"/api/v1/leads/{lead['id']}", headers=STAFF).json()
        assert thread["unread"] == 1 and thread["messages"][-1]["sender"] == "user"
        assert thread["messages"][-1]["text"] == "好的，谢谢！我下周三有空，可以电话联系"
        status = ask(client, cs_api, openid, "我的请求进展如何？")
        assert f"编号 {lead['id']}" in status and "工作人员已给您发送1条消息" in status
        # a new search leaves the thread
        found = ask(client, cs_api, openid, "新的搜索：葡萄牙的模具企业")
        assert "最相关的机构" in found
        details = ask(client, cs_api, openid, "第1个的详细信息")
        rec = server.app.state.assistant.engine.records[server.app.state.assistant.store.load(f"wx-{openid}").focus]
        assert rec.lang == "pt" and rec.offers not in details and rec.i18n["zh"].offers in details


# -- "tell me when new ones fit" and "stop alerts" as WeChat menu links -----------------------------
def menu_tap_xml(openid: str, content: str, menu_id: int, msg_id: int) -> str:
    """What WeChat posts when a user taps a weixin://bizmsgmenu link: the link's text as a text
    message, with the link's id in bizmsgmenuid."""
    return text_xml(openid, content, msg_id).replace("</xml>", f"<bizmsgmenuid>{menu_id}</bizmsgmenuid></xml>")


def link(words: str, menu_id: int, icon: str) -> str:
    return f'<a href="weixin://bizmsgmenu?msgmenucontent={words}&msgmenuid={menu_id}">{icon} {words}</a>'


@pytest.mark.parametrize("openid, query, words, subscribed", [
    ("o-menu-zh", "葡萄牙的软木企业", "有新的通知我", "好的"),
    ("o-menu-pt", "fabricantes de moldes na China", "Avisar-me de novos", "Combinado"),
    ("o-menu-en", "Portuguese cork companies", "Tell me when new ones fit", "Done")])
def test_a_result_list_carries_an_alert_link_whose_tap_subscribes(wx, cs_api, openid, query, words, subscribed):
    store = wx.app.state.assistant.store
    answer = ask(wx, cs_api, openid, query)
    assert answer.endswith("\n" + link(words, 1, "🔔")) and len(answer.encode()) <= 2047
    assert answer.count("weixin://bizmsgmenu") == 1
    assert "bizmsgmenu" not in ask(wx, cs_api, openid, "谢谢" if openid.endswith("zh") else "obrigado")  # not a list
    r = wx.post("/wechat", params=plain_params(), content=menu_tap_xml(openid, words, 1, next(_ids)))
    assert r.status_code == 200 and fields(r.text)["Content"].startswith(subscribed)
    (alert,) = store.alerts(channel="wechat", address=f"wx-{openid}")
    assert alert["query"] == query


def test_an_alert_notice_carries_a_stop_link_whose_tap_stops_alerts(wx, cs_api):
    import asyncio

    from assistant._alerts_api import run_delivery

    store, openid = wx.app.state.assistant.store, "o-menu-stop"
    ask(wx, cs_api, openid, "葡萄牙的模具企业")
    assert ask(wx, cs_api, openid, "有新的通知我").startswith("好的")
    (alert,) = store.alerts(channel="wechat", address=f"wx-{openid}")
    record = next(iter(wx.app.state.catalog.engine.records.values()))
    store.add_notices([(alert["id"], record.id, record.name)])  # what matching leaves after an ingest
    pushed = len(cs_api.to(openid))
    asyncio.run(run_delivery(wx.app))
    (notice,) = cs_api.to(openid)[pushed:]
    assert notice.startswith("您的提醒") and record.name in notice
    assert notice.endswith("\n" + link("停止提醒", 2, "🔕")) and len(notice.encode()) <= 2047
    r = wx.post("/wechat", params=plain_params(), content=menu_tap_xml(openid, "停止提醒", 2, next(_ids)))
    assert r.status_code == 200 and fields(r.text)["Content"].startswith("已取消提醒")
    assert store.alerts(channel="wechat", address=f"wx-{openid}") == []


def test_a_list_that_fits_alone_is_cut_when_its_alert_link_would_not():
    from connectors.wechat import fit, menu_lines

    lines = ["与“模具”最相关的机构："] + [f"{i}. 宁波模具企业{i}号 — 企业，浙江，宁波" + "，注塑模具" * 20 for i in range(1, 6)]
    lines.append("x" * (2040 - len("\n".join(lines).encode()) - 1))  # 2,040 bytes: fits WeChat's 2,047 alone
    links = menu_lines(["alert"], "zh")
    head, rest = fit("\n".join(lines), "zh", 2047 - len(links.encode()))
    assert rest == lines[-1] and len((head + links).encode()) <= 2047 and head.endswith("（回复“更多”查看更多内容）")
