"""Introduction e-mails through the deployment's SMTP server (``CPC_SMTP_*``), with the standard library.

One message to both sides: the asker (the e-mail they gave with consent) and the partner address
staff typed in. Records hold no contact e-mails, and none is ever made up.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

LABELS = {
    "pt": {"subject": "Apresentação CPC Alliance: {asker} e {partner}", "asker": "Quem pede", "org": "Organização",
           "email": "E-mail", "need": "Procura", "orgs": "Organizações de interesse", "request": "Pedido n.º {id}"},
    "zh": {"subject": "CPC联盟对接介绍：{asker} 与 {partner}", "asker": "申请人", "org": "单位", "email": "邮箱",
           "need": "需求", "orgs": "意向机构", "request": "请求编号 {id}"},
    "en": {"subject": "CPC Alliance introduction: {asker} and {partner}", "asker": "Asker", "org": "Organisation",
           "email": "E-mail", "need": "Looking for", "orgs": "Organisations of interest", "request": "Request no. {id}"},
}


class MailNotConfigured(Exception):
    pass


def partner_language(country: str | None) -> str:
    """The language a partner most likely reads, from its record's country (the directory's two sides)."""
    return {"PT": "pt", "CN": "zh", "MO": "zh", "HK": "zh", "TW": "zh"}.get((country or "").upper(), "en")


def introduction(settings, lead: dict[str, Any], partner_email: str, partner_name: str, text: str,
                 partner_lang: str | None = None) -> EmailMessage:
    """The introduction: staff's text, then the asker's details in the asker's language and, when the
    partner reads another, again in the partner's (both sides read the footer)."""
    if not settings.smtp_host or not settings.smtp_from:
        raise MailNotConfigured("introduction e-mails are off: set CPC_SMTP_HOST and CPC_SMTP_FROM")
    langs = list(dict.fromkeys(l for l in (lead["lang"], partner_lang) if l in LABELS)) or ["en"]
    words = LABELS[langs[0]]
    partner = partner_name or ", ".join(o["name"] for o in lead["organisations"])
    msg = EmailMessage()
    msg["From"] = formataddr(("CPC Alliance", settings.smtp_from))
    msg["To"] = ", ".join([formataddr((lead.get("name") or "", lead["contact"])), formataddr((partner_name, partner_email))])
    msg["Reply-To"] = settings.smtp_from
    msg["Subject"] = words["subject"].format(asker=lead.get("asker_org") or lead.get("name") or "", partner=partner)
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    if len(langs) > 1:  # the subject in both languages too
        other = LABELS[langs[1]]["subject"].format(asker=lead.get("asker_org") or lead.get("name") or "", partner=partner)
        msg.replace_header("Subject", f"{msg['Subject']} / {other}")
    blocks = []
    for lang in langs:
        w = LABELS[lang]
        blocks.append("\n".join([
            f"{w['request'].format(id=lead['id'])}",
            f"{w['asker']}: {lead.get('name') or ''}",
            f"{w['org']}: {lead.get('asker_org') or ''}",
            f"{w['email']}: {lead['contact']}",
            f"{w['need']}: {lead.get('need') or ''}",
            f"{w['orgs']}: " + ", ".join(o["name"] for o in lead["organisations"]),
        ]))
    msg.set_content(text.strip() + "\n\n-- \n" + "\n\n".join(blocks) + "\n")
    return msg


def send(settings, msg: EmailMessage) -> list[str]:
    """Send through the configured server; the recipients, or an SMTPException/OSError."""
    security = settings.smtp_security
    context = ssl.create_default_context()
    cls = smtplib.SMTP_SSL if security == "ssl" else smtplib.SMTP
    kwargs = {"context": context} if security == "ssl" else {}
    with cls(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, **kwargs) as smtp:
        if security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, password)
        smtp.send_message(msg)
    return [a.strip() for a in msg["To"].split(",")]
