""""My requests": what one channel identity has asked of the service, with statuses.

A view over the state store made of sections that plug in: each part of the service that keeps
something for a user (leads and alerts here; the member's profile and posts where those are kept)
registers a section with :func:`register_section`, so this module never imports them. The dialogue
answers "os meus pedidos" / "我的请求" / "my requests" with it (intent ``mine``, read by meaning from
``data/intents.jsonl``), and the web chat page shows it through ``GET /api/v1/me/requests``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# (store, channel, session_id, lang) -> items: dicts with at least "id", "status" and "text" (a line
# in ``lang``); any other fields are passed to the web page as they are.
Items = Callable[[Any, str, str, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class Section:
    name: str
    titles: dict[str, str]  # heading per language (pt, zh, en)
    items: Items


_SECTIONS: dict[str, Section] = {}


def register_section(name: str, items: Items, titles: dict[str, str]) -> None:
    """Add (or replace) a section; shown in the order registered."""
    missing = {"pt", "zh", "en"} - set(titles)
    if missing:
        raise ValueError(f"section {name!r} needs a title in {sorted(missing)}")
    _SECTIONS[name] = Section(name, dict(titles), items)


def sections() -> list[str]:
    return list(_SECTIONS)


TEXTS = {
    "pt": {"none": "Ainda não tem pedidos nem alertas.", "head": "Os seus pedidos:"},
    "zh": {"none": "您还没有请求或提醒。", "head": "您的请求："},
    "en": {"none": "You have no requests or alerts yet.", "head": "Your requests:"},
}


def my_requests(store, channel: str, session_id: str, lang: str = "en") -> dict[str, Any]:
    """Every registered section's items for one identity (``session_id`` as the dialogue knows it),
    as {section name: items}, with ``sections``: [{"name", "title", "items"}] in their order."""
    lang = lang if lang in TEXTS else "en"
    out: dict[str, Any] = {"sections": []}
    for section in _SECTIONS.values():
        items = section.items(store, channel, session_id, lang)
        out[section.name] = items
        out["sections"].append({"name": section.name, "title": section.titles[lang], "items": items})
    return out


def render(mine: dict[str, Any], lang: str) -> str:
    """The view as one chat message in ``lang``."""
    lang = lang if lang in TEXTS else "en"
    lines: list[str] = []
    for section in mine["sections"]:
        if section["items"]:
            lines.append(section["title"])
            lines += ["• " + item["text"] for item in section["items"]]
    return "\n".join(lines) or TEXTS[lang]["none"]


def reply(store, channel: str, session_id: str, lang: str):
    """The dialogue's answer to "my requests" (intent ``mine``)."""
    from .dialogue import Reply  # the dialogue imports this module

    return Reply(render(my_requests(store, channel, session_id, lang), lang), lang, "mine")


# -- the two sections kept here: leads and alerts -------------------------------------------------
STATUS = {
    "pt": {"new": "recebido", "contacted": "em contacto", "introduced": "apresentação feita", "closed": "encerrado"},
    "zh": {"new": "已收到", "contacted": "已联系", "introduced": "已介绍", "closed": "已结束"},
    "en": {"new": "received", "contacted": "in contact", "introduced": "introduced", "closed": "closed"},
}
LINES = {
    "pt": {"lead": "Pedido n.º {id} ({orgs}): {status}", "alert": "«{query}»: {state}, {sent} avisos enviados",
           "active": "ativo", "stopped": "cancelado"},
    "zh": {"lead": "请求 {id}（{orgs}）：{status}", "alert": "「{query}」：{state}，已发送 {sent} 条通知",
           "active": "进行中", "stopped": "已取消"},
    "en": {"lead": "Request no. {id} ({orgs}): {status}", "alert": "“{query}”: {state}, {sent} notices sent",
           "active": "active", "stopped": "stopped"},
}


def lead_items(store, channel: str, session_id: str, lang: str) -> list[dict[str, Any]]:
    out = []
    for lead in store.session_leads(session_id):
        status = STATUS[lang].get(lead["status"], lead["status"])
        orgs = ", ".join(o["name"] for o in lead["organisations"])
        out.append({"id": lead["id"], "created": lead["created"], "status": lead["status"], "organisations": lead["organisations"],
                    "need": lead.get("need"), "text": LINES[lang]["lead"].format(id=lead["id"], orgs=orgs, status=status)})
    return out


def alert_items(store, channel: str, session_id: str, lang: str) -> list[dict[str, Any]]:
    out = []
    for sub in store.alerts(channel=channel, address=session_id, active=None):
        notices = store.notices(sub["id"])
        sent = sum(1 for n in notices if n["sent"] is not None)
        state = "active" if sub["active"] else "stopped"
        out.append({"id": sub["id"], "created": sub["created"], "query": sub["query"], "active": sub["active"],
                    "status": state, "sent": sent, "pending": len(notices) - sent,
                    "text": LINES[lang]["alert"].format(query=sub["query"], state=LINES[lang][state], sent=sent)})
    return out


register_section("leads", lead_items, {"pt": "Os seus pedidos:", "zh": "您的请求：", "en": "Your requests:"})
register_section("alerts", alert_items, {"pt": "Os seus alertas:", "zh": "您的提醒：", "en": "Your alerts:"})
