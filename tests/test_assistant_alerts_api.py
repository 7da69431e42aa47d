"""Alerts end to end (assistant/_alerts_api.py): subscribe on Telegram (a fake Bot API speaking Telegram's
wire format), by e-mail (a real SMTP server, aiosmtpd) and on the web chat; ingest through the admin
route; exactly one notice for a matching record, none for a non-matching one, none after "stop alerts"."""

from __future__ import annotations

import email
import email.policy
import json

import httpx
import pytest

from conftest import STAFF_KEY, LiveServer, private_copy
from test_connectors_telegram import SECRET, TOKEN, FakeBotAPI, message_update

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}
MOULDS = {"id": "cn-test-example-moulds", "kind": "company", "name": "Example Precision Moulds Co.", "country": "CN",
          "region": "Zhejiang", "city": "Ningbo", "sectors": ["moulds", "plastics"], "lang": "en",
          "description": "A test company that designs and makes injection moulds and tooling for automotive plastic parts."}
WINE = {"id": "pt-test-example-wines", "kind": "company", "name": "Example Douro Wines", "country": "PT", "region": "Norte",
        "sectors": ["wine"], "lang": "en", "description": "A test winery in the Douro valley that makes and exports port wine."}


@pytest.fixture(scope="module")
def service(shipped_data_dir, encoder, tmp_path_factory, smtp_server):
    from assistant.app import create_app
    from assistant.settings import Settings

    mp = pytest.MonkeyPatch()
    mp.setenv("CPC_ALERTS_EVERY_SECONDS", "0")  # delivery only after an ingest or when staff ask
    fake = FakeBotAPI()
    catalog = private_copy(shipped_data_dir, tmp_path_factory.mktemp("alerts-api") / "data", encoder)
    controller, handler = smtp_server
    with LiveServer(fake.app) as bot_server:
        fake.url = bot_server.url
        settings = Settings(data_dir=catalog.data_dir, admin_token=STAFF_KEY, telegram_token=TOKEN, telegram_secret=SECRET,
                            telegram_api_base=f"{fake.url}/bot", smtp_host="127.0.0.1", smtp_port=controller.port,
                            smtp_security="none", smtp_from="team@cpc-alliance.example")
        app = create_app(settings, catalog)
        with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=120) as client:
            client.fake, client.mails, client.app = fake, handler.messages, app
            yield client
    catalog.close()
    mp.undo()


_update = iter(range(5000, 10**6))


def tg(client, chat_id: int, text: str) -> list[dict]:
    since = len(client.fake.calls)
    r = client.post("/telegram/webhook", json=message_update(next(_update), chat_id, text, "pt-br"),
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert r.status_code == 200, r.text
    return client.fake.sent(chat_id=chat_id, since=since)


def ingest(client, *records) -> None:
    body = "\n".join(json.dumps(r) for r in records)
    r = client.post("/api/v1/admin/ingest", content=body, headers={**AUTH, "content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text


def test_alerts_end_to_end_on_telegram_email_and_web(service):
    c = service
    # Telegram: one user subscribes, another subscribes and then stops
    assert tg(c, 501, "fabricantes de moldes na China")
    (ack,) = tg(c, 501, "Avisar-me de novos")
    assert "moldes na China" in ack["plain"] and "parar alertas" in ack["plain"]
    tg(c, 502, "fabricantes de moldes na China")
    tg(c, 502, "Avisar-me de novos")
    (stopped,) = tg(c, 502, "parar alertas")
    assert "cancelados (1)" in stopped["plain"]
    # e-mail and web, from a search
    r = c.post("/api/v1/alerts", json={"query": "mould makers in China", "email": "ana@example.pt"})
    assert r.status_code == 201, r.text
    email_alert = r.json()["ids"][0]
    chat = c.post("/api/v1/chat", json={"text": "moldes na China"}).json()
    r = c.post("/api/v1/alerts", json={"query": "moldes na China", "session_id": chat["session_id"], "lang": "pt"})
    assert r.status_code == 201 and r.json()["lang"] == "pt"

    before = len(c.fake.calls)
    ingest(c, WINE)  # fits nobody
    assert [m for m, p in c.fake.calls[before:] if m == "sendMessage"] == [] and c.mails == []

    ingest(c, MOULDS)
    to_501 = [p["plain"] for p in c.fake.sent(chat_id=501, since=before)]
    assert len(to_501) == 1 and "Example Precision Moulds Co." in to_501[0] and "«fabricantes de moldes na China»" in to_501[0]
    assert c.fake.sent(chat_id=502, since=before) == []  # stopped
    (envelope,) = c.mails
    assert envelope.rcpt_tos == ["ana@example.pt"]
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert "new matches" in msg["Subject"] and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = msg["List-Unsubscribe"].strip("<>")
    assert link in msg.get_content() and "Example Precision Moulds Co." in msg.get_content()
    shown = c.get("/api/v1/chat/messages", params={"session_id": chat["session_id"]}).json()["messages"]
    assert len(shown) == 1 and "Example Precision Moulds Co." in shown[0]["text"] and shown[0]["author"] == "alerts"

    # the same record again (changed), and a delivery run staff start: nothing new goes out
    ingest(c, {**MOULDS, "description": MOULDS["description"] + " Now also die casting."})
    r = c.post("/api/v1/admin/alerts/deliver", headers=AUTH)
    assert r.status_code == 200 and r.json()["ran"] and r.json()["digests"] == 0
    assert len(c.fake.sent(chat_id=501, since=before)) == 1 and len(c.mails) == 1

    # the one-click link stops the e-mail alert, in the subscriber's language
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = c.get("/" + path)
    assert page.status_code == 200 and "Alert cancelled" in page.text
    assert c.app.state.assistant.store.alert(email_alert)["active"] is False
    assert c.post("/" + path).status_code == 200  # a mail client's one-click POST, again: harmless


def test_bad_alert_requests_are_refused_and_change_nothing(service):
    c = service
    store = c.app.state.assistant.store
    count = len(store.alerts(active=None))
    for body in ({"query": "moulds"}, {"query": "", "email": "a@b.example"}, {"query": "moulds", "email": "not-an-email"},
                 {"query": "moulds", "email": "a@b.example", "channel": "fax"}, {"query": "x" * 501, "email": "a@b.example"}):
        r = c.post("/api/v1/alerts", json=body)
        assert r.status_code == 422, (body, r.text)
    assert c.post("/api/v1/alerts", json={"query": "moulds", "session_id": "forged-session"}).status_code == 404
    assert c.get("/api/v1/alerts/unsubscribe", params={"token": "1." + "0" * 32}).status_code == 404
    assert c.get("/api/v1/alerts/unsubscribe", params={"token": "../../etc"}).status_code == 422
    assert c.delete("/api/v1/alerts/1", params={"token": "1." + "0" * 32}).status_code == 404
    assert c.post("/api/v1/admin/alerts/deliver").status_code == 401
    assert len(store.alerts(active=None)) == count
