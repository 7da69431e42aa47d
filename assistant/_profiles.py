"""Members join the directory: a profile's fields, their validation, its states and the chat dialogue.

Pure (no HTTP, no index): the web form (``_profiles_api.py``) and the chat (``dialogue.py``) both
validate through :func:`validate`, so a profile means the same whatever the channel; the chat
dialogue asks one field at a time (:func:`chat_turn`) and keeps its draft in the session until the
member confirms, so nothing is stored half-way. A stored profile is *pending* until staff approve
it; an approved one becomes an organisation record (:func:`to_record`, source "member") that goes
through the write process like any ingest. An edit sends it back to moderation.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from corpus import KINDS, Organisation, default_lexicon, detect_lang

from . import _contact as contact
from ._messages import as_written

STATUSES = ("pending", "approved", "rejected")
FIELDS = ("name", "kind", "country", "city", "sectors", "offers", "seeks", "website", "contact")
REQUIRED = frozenset({"name", "kind", "country", "sectors", "offers", "contact"})
LIMITS = {"name": 200, "city": 100, "sectors": 300, "offers": 1500, "seeks": 1500, "website": 300, "contact": 254}
SECTORS_MAX = 12
LANGS = ("pt", "zh", "en")
_SPLIT = re.compile(r"\s*[;,、，；\n]+\s*")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d{1,5})?(?:/[^\s<>\"']*)?$")

TEXTS: dict[str, dict[str, str]] = {
    "start": {"pt": "Vamos inscrever a sua organização no diretório da CPC Alliance: {n} perguntas curtas, uma de cada vez. Escreva «cancelar» a qualquer momento.",
              "zh": "我们来把您的机构加入CPC联盟名录：共{n}个简短问题，一次一个。随时可回复“取消”。",
              "en": "Let's add your organisation to the CPC Alliance directory: {n} short questions, one at a time. Write “cancel” at any time."},
    "ask_name": {"pt": "Qual é o nome da organização?", "zh": "机构名称是什么？", "en": "What is the organisation's name?"},
    "ask_kind": {"pt": "É uma empresa, um cluster ou uma instituição (universidade, centro de investigação)?",
                 "zh": "是企业、产业集群，还是机构（大学、研究所）？",
                 "en": "Is it a company, a cluster or an institution (university, research centre)?"},
    "ask_country": {"pt": "Em que país está?", "zh": "位于哪个国家？", "en": "Which country is it in?"},
    "ask_city": {"pt": "Em que região ou cidade? (opcional)", "zh": "在哪个地区或城市？（可选）", "en": "Which region or city? (optional)"},
    "ask_sectors": {"pt": "Em que setores trabalha? Nas suas palavras, separados por vírgulas.",
                    "zh": "从事哪些行业？请用您自己的话，用逗号分隔。",
                    "en": "Which sectors do you work in? In your own words, separated by commas."},
    "ask_offers": {"pt": "O que oferece (produtos, serviços, competências)?", "zh": "您能提供什么（产品、服务、能力）？",
                   "en": "What do you offer (products, services, skills)?"},
    "ask_seeks": {"pt": "O que procura (parceiros, tecnologia, distribuição…)? (opcional)",
                  "zh": "您在寻找什么（合作伙伴、技术、分销……）？（可选）",
                  "en": "What are you looking for (partners, technology, distribution…)? (optional)"},
    "ask_website": {"pt": "Sítio web? (opcional)", "zh": "网站？（可选）", "en": "Website? (optional)"},
    "ask_contact": {"pt": "Um contacto público (e-mail ou telefone) que os parceiros possam usar:",
                    "zh": "一个可公开的联系方式（邮箱或电话），供合作伙伴联系：",
                    "en": "A public contact (e-mail or phone) partners may use:"},
    "current": {"pt": "(atual: {value} — «saltar» mantém)", "zh": "（当前：{value}——回复“跳过”保留）",
                "en": "(now: {value} — “skip” keeps it)"},
    "summary": {"pt": "Resumo do perfil:\n{summary}\n\nO que publicamos: estes dados, no diretório, depois de a equipa os rever; o contacto fica visível a quem pesquisa. Pode ver, alterar ou apagar o perfil mais tarde («o meu perfil»). Concorda com a publicação? Responda «sim» ou «cancelar».",
                "zh": "资料摘要：\n{summary}\n\n我们公开的内容：以上信息，经工作人员审核后列入名录；联系方式对搜索者可见。之后可以查看、修改或删除（回复“我的资料”）。同意公开吗？请回复“同意”或“取消”。",
                "en": "Profile summary:\n{summary}\n\nWhat we publish: these details, in the directory, after staff review them; the contact is visible to people who search. You can view, edit or delete the profile later (“my profile”). Do you agree to its publication? Reply “yes” or “cancel”."},
    "consent_needed": {"pt": "Preciso do seu «sim» para enviar o perfil (ou «cancelar»).", "zh": "需要您回复“同意”才能提交（或回复“取消”）。",
                       "en": "I need your “yes” to send the profile (or “cancel”)."},
    "submitted": {"pt": "Obrigado! O perfil n.º {id} «{name}» foi enviado e aguarda a revisão da equipa. Será avisado(a) aqui quando for publicado.",
                  "zh": "谢谢！资料 {id}「{name}」已提交，等待工作人员审核。发布后会在这里通知您。",
                  "en": "Thank you! Profile no. {id} “{name}” was sent and waits for staff review. You will be told here when it is published."},
    "cancelled": {"pt": "Cancelado: nada foi guardado.", "zh": "已取消，未保存任何内容。", "en": "Cancelled: nothing was saved."},
    "mine": {"pt": "Os seus perfis:", "zh": "您的资料：", "en": "Your profiles:"},
    "mine_hint": {"pt": "Escreva «editar {id}», «apagar {id}» ou «novo perfil».", "zh": "回复“修改 {id}”、“删除 {id}”或“新资料”。",
                  "en": "Write “edit {id}”, “delete {id}” or “new profile”."},
    "confirm_delete": {"pt": "Apagar o perfil n.º {id} «{name}» e retirá-lo do diretório? Responda «sim» ou «cancelar».",
                       "zh": "删除资料 {id}「{name}」并从名录中移除？请回复“同意”或“取消”。",
                       "en": "Delete profile no. {id} “{name}” and remove it from the directory? Reply “yes” or “cancel”."},
    "deleted": {"pt": "O perfil n.º {id} foi apagado e retirado do diretório.", "zh": "资料 {id} 已删除并从名录中移除。",
                "en": "Profile no. {id} was deleted and removed from the directory."},
    "delete_failed": {"pt": "Não consegui retirar o perfil do diretório agora; nada foi apagado. Tente de novo mais tarde.",
                      "zh": "暂时无法从名录中移除该资料，未做任何删除。请稍后再试。",
                      "en": "I could not remove the profile from the directory now; nothing was deleted. Please try again later."},
    "edit_start": {"pt": "Vamos rever o perfil n.º {id}, campo a campo. A alteração volta à revisão da equipa.",
                   "zh": "我们逐项修改资料 {id}。修改后需重新审核。", "en": "Let's go through profile no. {id}, field by field. The change goes back to staff review."},
    "approved": {"pt": "O seu perfil «{name}» foi aprovado e já está no diretório da CPC Alliance.",
                 "zh": "您的资料「{name}」已通过审核，现已列入CPC联盟名录。",
                 "en": "Your profile “{name}” was approved and is now in the CPC Alliance directory."},
    "rejected": {"pt": "O seu perfil «{name}» não foi aprovado. Motivo: {reason}\nPode corrigi-lo e enviá-lo de novo («o meu perfil»).",
                 "zh": "您的资料「{name}」未通过审核。原因：{reason}\n您可以修改后重新提交（回复“我的资料”）。",
                 "en": "Your profile “{name}” was not approved. Reason: {reason}\nYou can correct it and send it again (“my profile”)."},
    "bad_empty": {"pt": "Este campo é obrigatório.", "zh": "此项为必填。", "en": "This field is required."},
    "bad_long": {"pt": "Demasiado longo (máximo {max} caracteres).", "zh": "太长了（最多{max}个字符）。", "en": "Too long (at most {max} characters)."},
    "bad_markup": {"pt": "Escreva texto simples, sem código nem ligações.", "zh": "请输入纯文本，不要包含代码或链接。",
                   "en": "Please write plain text, without code or links."},
    "bad_kind": {"pt": "Escolha: empresa, cluster ou instituição.", "zh": "请选择：企业、产业集群或机构。",
                 "en": "Choose: company, cluster or institution."},
    "bad_country": {"pt": "Não reconheço este país. Escreva o nome (ex.: Portugal, China).", "zh": "无法识别该国家，请写国家名称（例如：中国、葡萄牙）。",
                    "en": "I don't recognise this country. Write its name (e.g. Portugal, China)."},
    "bad_website": {"pt": "Endereço inválido. Exemplo: https://www.exemplo.pt", "zh": "网址无效。例如：https://www.example.cn",
                    "en": "Invalid address. Example: https://www.example.com"},
    "bad_contact": {"pt": "Indique um e-mail válido ou um telefone (7 a 15 dígitos, com indicativo).",
                    "zh": "请填写有效的邮箱或电话（7–15位数字，含区号）。",
                    "en": "Give a valid e-mail or a phone number (7 to 15 digits, with the country code)."},
    "bad_sectors": {"pt": "Indique no máximo {max} setores.", "zh": "最多填写{max}个行业。", "en": "Give at most {max} sectors."},
    "bad_consent": {"pt": "É preciso aceitar a publicação.", "zh": "需要同意公开。", "en": "You need to agree to publication."},
    "bad_lang": {"pt": "Língua: pt, zh ou en.", "zh": "语言：pt、zh 或 en。", "en": "Language: pt, zh or en."},
    "web_form": {"pt": "Para inscrever a sua organização no diretório, preencha o formulário (botão abaixo): nome, tipo, país, setores, o que oferece e procura, e um contacto público.",
                 "zh": "请填写表格把您的机构加入名录（点击下方按钮）：名称、类型、国家、行业、能提供和寻求的内容，以及一个公开联系方式。",
                 "en": "To add your organisation to the directory, fill in the form (button below): name, kind, country, sectors, what you offer and seek, and a public contact."},
    "none": {"pt": "Ainda não tem perfil.", "zh": "您还没有资料。", "en": "You have no profile yet."},
}
FIELD_LABELS = {
    "name": {"pt": "Nome", "zh": "名称", "en": "Name"}, "kind": {"pt": "Tipo", "zh": "类型", "en": "Kind"},
    "country": {"pt": "País", "zh": "国家", "en": "Country"}, "city": {"pt": "Região/cidade", "zh": "地区/城市", "en": "Region/city"},
    "sectors": {"pt": "Setores", "zh": "行业", "en": "Sectors"}, "offers": {"pt": "Oferece", "zh": "提供", "en": "Offers"},
    "seeks": {"pt": "Procura", "zh": "寻求", "en": "Seeks"}, "website": {"pt": "Sítio web", "zh": "网站", "en": "Website"},
    "contact": {"pt": "Contacto público", "zh": "公开联系方式", "en": "Public contact"},
}
STATUS_LABELS = {"pending": {"pt": "em revisão", "zh": "审核中", "en": "in review"},
                 "approved": {"pt": "publicado", "zh": "已发布", "en": "published"},
                 "rejected": {"pt": "não aprovado", "zh": "未通过", "en": "not approved"}}
KIND_LABELS = {"company": {"pt": "empresa", "zh": "企业", "en": "company"},
               "cluster": {"pt": "cluster", "zh": "产业集群", "en": "cluster"},
               "institution": {"pt": "instituição", "zh": "机构", "en": "institution"}}
# the words of the chat's buttons (what a tap sends back), not phrasings to guess at
BUTTONS = {"skip": {"pt": "saltar", "zh": "跳过", "en": "skip"}, "cancel": {"pt": "cancelar", "zh": "取消", "en": "cancel"},
           "yes": {"pt": "sim", "zh": "同意", "en": "yes"}, "edit": {"pt": "editar", "zh": "修改", "en": "edit"},
           "delete": {"pt": "apagar", "zh": "删除", "en": "delete"}, "new": {"pt": "novo perfil", "zh": "新资料", "en": "new profile"}}


def say(key: str, lang: str | None, **values: Any) -> str:
    table = TEXTS[key]
    return table.get(lang or "en", table["en"]).format(**values)


def _button(word: str, text: str) -> bool:
    """The message is one of a button's words, in any of the three languages (what a tap sends)."""
    t = " ".join(text.strip().lower().rstrip(".!。！").split())
    return t in {w.lower() for w in BUTTONS[word].values()}


# -- validation ---------------------------------------------------------------------------------
class ProfileError(ValueError):
    """Field errors, each in the member's language: ``errors`` maps a field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _plain(value: str, limit: int) -> tuple[str, dict] | None:
    if len(value) > limit:
        return "bad_long", {"max": limit}
    if contact.MARKUP.search(value):
        return "bad_markup", {}
    return None


def _iso_country(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code, by the record schema's own rule (one source of truth)."""
    try:
        Organisation.model_validate({"id": "x", "kind": "company", "name": "x", "country": code, "description": "x"})
    except ValueError:
        return False
    return True


def clean_field(name: str, value: Any) -> tuple[Any, tuple[str, dict] | None]:
    """One field's value as stored, or the reason it is refused (an error key and its values)."""
    if name == "sectors" and isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    value = " ".join(str(value if value is not None else "").split()) if name not in ("offers", "seeks") else \
        str(value if value is not None else "").strip()
    if not value:
        return None, ("bad_empty", {}) if name in REQUIRED else None
    if name == "kind":
        kind = value.lower() if value.lower() in KINDS else next(iter(default_lexicon().kinds(value)), None)
        return (kind, None) if kind else (None, ("bad_kind", {}))
    if name == "country":
        code = value.upper() if re.fullmatch(r"[A-Za-z]{2}", value) and _iso_country(value) else None
        if code is None:
            found = default_lexicon().countries(value)
            code = found[0] if len(found) == 1 else None
        return (code, None) if code else (None, ("bad_country", {}))
    if name == "website":
        if len(value) > LIMITS["website"]:
            return None, ("bad_long", {"max": LIMITS["website"]})
        url = value if re.match(r"^https?://", value, re.I) else "https://" + value
        return (url, None) if _URL.match(url) else (None, ("bad_website", {}))
    if name == "contact":
        if "@" in value:
            email = contact.valid_email(value)
            return (email, None) if email and len(email) <= LIMITS["contact"] else (None, ("bad_contact", {}))
        digits = re.sub(r"[\s().\-/]", "", value)
        return (digits, None) if contact.PHONE.match(digits) else (None, ("bad_contact", {}))
    problem = _plain(value, LIMITS[name])
    if problem:
        return None, problem
    if name == "sectors":
        labels = list(dict.fromkeys(s for s in _SPLIT.split(value) if s))
        if len(labels) > SECTORS_MAX:
            return None, ("bad_sectors", {"max": SECTORS_MAX})
        return labels, None
    return value, None


def validate(raw: dict[str, Any], lang: str, require_consent: bool = True) -> dict[str, Any]:
    """Every field cleaned, or :class:`ProfileError` naming each bad one in ``lang``; nothing partial."""
    lang = lang if lang in LANGS else "en"
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in FIELDS:
        value, problem = clean_field(name, raw.get(name))
        if problem:
            errors[name] = say(problem[0], lang, **problem[1])
        elif value is not None:
            data[name] = value
    if require_consent and raw.get("consent") is not True:
        errors["consent"] = say("bad_consent", lang)
    if errors:
        raise ProfileError(errors)
    return data


# -- records ------------------------------------------------------------------------------------
def org_id(profile_id: int) -> str:
    """The record id an approved profile is published under: stable across edits."""
    return f"member-{profile_id}"


def to_record(profile: dict[str, Any]) -> dict[str, Any]:
    """The organisation record of an approved profile (project schema; unknown fields are kept)."""
    d = profile["data"]
    labels = list(d.get("sectors") or [])
    description = (", ".join(labels) + ". " if labels else "") + d["offers"]
    # the language the texts are written in (what the index reads them as), not the interface's:
    # a Chinese firm may fill the form in an English page
    written = detect_lang(description, default=None)
    record = {"id": profile.get("org_id") or org_id(profile["id"]), "kind": d["kind"], "name": d["name"],
              "country": d["country"], "city": d.get("city"), "sectors": [], "sector_labels": labels,
              "lang": written if written in LANGS else profile["lang"], "description": description, "offers": d["offers"], "seeks": d.get("seeks"),
              "website": d.get("website"), "contact": d["contact"], "source": "member",
              "consent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(profile["consent_at"])),
              "updated": time.strftime("%Y-%m-%d", time.gmtime())}
    return {k: v for k, v in record.items() if v is not None}


def summary(data: dict[str, Any], lang: str) -> str:
    lines = []
    for name in FIELDS:
        value = data.get(name)
        if not value:
            continue
        if name == "kind":
            value = KIND_LABELS[value][lang]
        elif name == "country":
            value = default_lexicon().country_label(value, lang)
        elif name == "sectors":
            value = ", ".join(value)
        lines.append(f"{FIELD_LABELS[name][lang]}: {value}")
    return "\n".join(lines)


def public_view(profile: dict[str, Any]) -> dict[str, Any]:
    """What a member, the API and "my requests" show of one profile."""
    return {"id": profile["id"], "status": profile["status"], "name": profile["data"].get("name", ""),
            "lang": profile["lang"], "created": profile["created"], "updated": profile["updated"],
            "reason": profile.get("reason"), "organisation": profile.get("org_id") if profile.get("published") else None,
            "data": profile["data"]}


def profiles_of(store, channel: str, owner: str) -> list[dict[str, Any]]:
    """One channel identity's profiles with their status (for "my requests"): newest first."""
    return [public_view(p) for p in store.profiles(channel=channel, owner=owner)]


def render_mine(found: list[dict[str, Any]], lang: str) -> str:
    if not found:
        return say("none", lang)
    return "\n".join([say("mine", lang)] + ["• " + profile_line(p, lang) for p in found])


def profile_line(p: dict[str, Any], lang: str) -> str:
    """One profile with its status (and the reason it was not approved), in ``lang``."""
    status = STATUS_LABELS[p["status"]][lang]
    reason = f" — {as_written(p['reason'], lang)}" if p["status"] == "rejected" and p.get("reason") else ""
    return (f"n.º {p['id']} «{p['name']}»: {status}{reason}" if lang == "pt" else
            f"{p['id']}「{p['name']}」：{status}{reason}" if lang == "zh" else
            f"no. {p['id']} “{p['name']}”: {status}{reason}")


# -- the chat dialogue -------------------------------------------------------------------------
@dataclass
class ChatStep:
    """What the dialogue says after a profile turn, and what it must store or remove."""

    text: str
    step: str
    suggestions: list[str] = field(default_factory=list)
    submit: dict[str, Any] | None = None  # {"data", "lang", "consent_at", "edit": id or None}: validated, consented
    delete: int | None = None  # the owner confirmed deleting this profile
    restart: tuple[str, int | None] | None = None  # from the menu: ("new", None) or ("edit", profile id)
    done: bool = False  # the draft left the session


def _ask(draft: dict[str, Any], prefix: str = "") -> ChatStep:
    lang, name = draft["lang"], draft["step"]
    chips = [BUTTONS["cancel"][lang]]
    if name == "kind":
        chips = [KIND_LABELS[k][lang] for k in ("company", "cluster", "institution")] + chips
    elif name == "country":
        chips = [default_lexicon().country_label(c, lang) for c in ("PT", "CN")] + chips
    text = say(f"ask_{name}", lang)
    current = draft.get("current", {}).get(name)
    if current:
        shown = ", ".join(current) if isinstance(current, list) else KIND_LABELS[current][lang] if name == "kind" else current
        text += " " + say("current", lang, value=shown)
    if name not in REQUIRED or current:
        chips.insert(0, BUTTONS["skip"][lang])
    return ChatStep("\n".join(p for p in (prefix, text) if p), f"profile_{name}", chips)


def start(lang: str, current: dict[str, Any] | None = None, edit: int | None = None) -> tuple[dict[str, Any], ChatStep]:
    """A new draft (kept in the session) and its first question; ``current`` holds an edited profile's values."""
    draft = {"step": "name", "lang": lang, "data": {}, "current": current or {}, "edit": edit}
    head = say("edit_start", lang, id=edit) if edit else say("start", lang, n=len(FIELDS))
    return draft, _ask(draft, head)


def menu(lang: str, found: list[dict[str, Any]]) -> tuple[dict[str, Any], ChatStep]:
    """An identity that has profiles: list them and offer edit / delete / new."""
    draft = {"step": "menu", "lang": lang, "ids": [p["id"] for p in found]}
    first = found[0]["id"]
    text = render_mine(found, lang) + "\n" + say("mine_hint", lang, id=first)
    chips = [f"{BUTTONS['edit'][lang]} {first}", f"{BUTTONS['delete'][lang]} {first}", BUTTONS["new"][lang], BUTTONS["cancel"][lang]]
    return draft, ChatStep(text, "profile_menu", chips)


def _menu_choice(draft: dict[str, Any], text: str) -> tuple[str, int | None] | None:
    t = " ".join(text.strip().lower().split())
    if _button("new", t):
        return "new", None
    for word in ("edit", "delete"):
        for label in BUTTONS[word].values():
            if t == label or t.startswith(label + " ") or t.startswith(label):
                rest = t[len(label):].strip(" #nº.º:：")
                ids = draft["ids"]
                if not rest and len(ids) == 1:
                    return word, ids[0]
                if rest.isdigit() and int(rest) in ids:
                    return word, int(rest)
    return None


def chat_turn(draft: dict[str, Any], text: str, names: dict[int, str] | None = None) -> ChatStep:
    """One answer to the draft in the session (changed in place). ``names``: the identity's profiles."""
    lang = draft["lang"]
    if contact.CANCEL.match(text.strip()) or _button("cancel", text):
        return ChatStep(say("cancelled", lang), "profile_cancelled", done=True)
    step = draft["step"]
    if step == "menu":
        choice = _menu_choice(draft, text)
        if choice is None:
            return ChatStep(say("mine_hint", lang, id=draft["ids"][0]), "profile_menu",
                            [BUTTONS["new"][lang], BUTTONS["cancel"][lang]])
        action, pid = choice
        if action == "delete":
            draft.update(step="confirm_delete", target=pid)
            return ChatStep(say("confirm_delete", lang, id=pid, name=(names or {}).get(pid, "")), "profile_confirm_delete",
                            [BUTTONS["yes"][lang], BUTTONS["cancel"][lang]])
        return ChatStep("", f"profile_{action}", restart=(action, pid))
    if step == "confirm_delete":
        if contact.YES.match(text.strip()) or _button("yes", text):
            return ChatStep("", "profile_deleted", delete=draft["target"], done=True)
        return ChatStep(say("confirm_delete", lang, id=draft["target"], name=(names or {}).get(draft["target"], "")),
                        "profile_confirm_delete", [BUTTONS["yes"][lang], BUTTONS["cancel"][lang]])
    if step == "consent":
        if contact.YES.match(text.strip()) or _button("yes", text):
            return ChatStep("", "profile_submitted", done=True,
                            submit={"data": draft["data"], "lang": lang, "consent_at": time.time(), "edit": draft.get("edit")})
        return ChatStep(say("consent_needed", lang), "profile_consent", [BUTTONS["yes"][lang], BUTTONS["cancel"][lang]])
    # a field's answer
    if _button("skip", text):
        current = draft.get("current", {}).get(step)
        if current:
            draft["data"][step] = current
        elif step in REQUIRED:
            return _ask(draft, say("bad_empty", lang))
    else:
        value, problem = clean_field(step, text)
        if problem:
            return _ask(draft, say(problem[0], lang, **problem[1]))
        draft["data"][step] = value
    following = FIELDS[FIELDS.index(step) + 1:] if step in FIELDS else ()
    if following:
        draft["step"] = following[0]
        return _ask(draft)
    draft["step"] = "consent"
    return ChatStep(say("summary", lang, summary=summary(draft["data"], lang)), "profile_consent",
                    [BUTTONS["yes"][lang], BUTTONS["cancel"][lang]])


# -- "my requests": the member's profiles as one of its sections --------------------------------
def _profile_items(store, channel: str, session_id: str, lang: str) -> list[dict[str, Any]]:
    if not hasattr(store, "profiles"):  # a store without the members' table has no profiles to show
        return []
    return [{"id": p["id"], "status": p["status"], "name": p["name"], "text": profile_line(p, lang)}
            for p in profiles_of(store, channel, session_id)]


def _register_my_requests_section() -> None:
    from ._my_requests import register_section

    register_section("profiles", _profile_items, {"pt": "O seu perfil no diretório:", "zh": "您的名录资料：",
                                                  "en": "Your directory profile:"})


_register_my_requests_section()
