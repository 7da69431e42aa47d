""""My requests": what one channel identity has asked of the service, with statuses.

A pure view over the state store: the leads its conversation recorded (with their status) and its
alert subscriptions (active or stopped, with how many notices went out). Shown in the chat when
the user asks ("os meus pedidos" / "我的请求" / "my requests", by meaning: ``handle_text``) and on
the web through ``GET /api/v1/me/requests?session_id=…``. Profiles and posts (issue #22 items 1–2)
are not built yet, so they are not listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import _alerts as alerts

PHRASES_FILE = Path(__file__).parent / "data" / "my_requests_phrases.json"

STATUS = {
    "pt": {"new": "recebido", "contacted": "em contacto", "introduced": "apresentação feita", "closed": "encerrado"},
    "zh": {"new": "已收到", "contacted": "已联系", "introduced": "已介绍", "closed": "已结束"},
    "en": {"new": "received", "contacted": "in contact", "introduced": "introduced", "closed": "closed"},
}
TEXTS = {
    "pt": {"head": "Os seus pedidos:", "lead": "Pedido n.º {id} ({orgs}): {status}", "alerts": "Os seus alertas:",
           "alert": "«{query}»: {state}, {sent} avisos enviados", "active": "ativo", "stopped": "cancelado",
           "none": "Ainda não tem pedidos nem alertas."},
    "zh": {"head": "您的请求：", "lead": "请求 {id}（{orgs}）：{status}", "alerts": "您的提醒：",
           "alert": "「{query}」：{state}，已发送 {sent} 条通知", "active": "进行中", "stopped": "已取消",
           "none": "您还没有请求或提醒。"},
    "en": {"head": "Your requests:", "lead": "Request no. {id} ({orgs}): {status}", "alerts": "Your alerts:",
           "alert": "“{query}”: {state}, {sent} notices sent", "active": "active", "stopped": "stopped",
           "none": "You have no requests or alerts yet."},
}


def my_requests(store, channel: str, session_id: str) -> dict[str, Any]:
    """The leads and alerts of one identity (``session_id`` as the dialogue knows it)."""
    leads = [{"id": lead["id"], "created": lead["created"], "status": lead["status"],
              "organisations": lead["organisations"], "need": lead.get("need")}
             for lead in store.session_leads(session_id)]
    subs = []
    for sub in store.alerts(channel=channel, address=session_id, active=None):
        notices = store.notices(sub["id"])
        subs.append({"id": sub["id"], "created": sub["created"], "query": sub["query"], "active": sub["active"],
                     "sent": sum(1 for n in notices if n["sent"] is not None),
                     "pending": sum(1 for n in notices if n["sent"] is None)})
    return {"leads": leads, "alerts": subs}


def render(mine: dict[str, Any], lang: str) -> str:
    words, status = TEXTS.get(lang, TEXTS["en"]), STATUS.get(lang, STATUS["en"])
    lines: list[str] = []
    if mine["leads"]:
        lines.append(words["head"])
        lines += ["• " + words["lead"].format(id=lead["id"], orgs=", ".join(o["name"] for o in lead["organisations"]),
                                             status=status.get(lead["status"], lead["status"])) for lead in mine["leads"]]
    if mine["alerts"]:
        lines.append(words["alerts"])
        lines += ["• " + words["alert"].format(query=a["query"], state=words["active" if a["active"] else "stopped"],
                                              sent=a["sent"]) for a in mine["alerts"]]
    return "\n".join(lines) or words["none"]


_classifiers: dict[int, alerts.PhraseClassifier] = {}


def handle_text(turn: alerts.Turn, text: str, lang: str):
    """The reply to "my requests" (a dialogue Reply with intent ``status``), or None."""
    from .dialogue import Reply  # the dialogue imports this module

    encoder = turn.assistant.engine.encoder
    found = _classifiers.get(id(encoder))
    if found is None:
        found = _classifiers[id(encoder)] = alerts.PhraseClassifier(encoder, PHRASES_FILE, labels=("mine",))
    if found.classify(text)[0] != "mine":
        return None
    return Reply(render(my_requests(turn.assistant.store, turn.channel, turn.session_id), lang), lang, "status")
