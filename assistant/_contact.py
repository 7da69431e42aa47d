"""From "I'm interested" to a lead staff can act on: the contact-capture dialogue and the
"delete my data" confirmation, in pt, zh and en.

Pure: it reads and changes the session's ``capture`` (a dict) and returns what to say; the
dialogue stores the finished request. Nothing personal is kept before the user agrees: the
capture holds only the chosen organisations and the search until then, and a cancelled
capture is dropped from the session.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import email_validator
from corpus import has_han

FIELDS = ("name", "org", "contact", "need")
NAME_MAX, ORG_MAX, NEED_MAX, EMAIL_MAX = 100, 150, 300, 254
HISTORY_TURNS = 20  # what "the conversation" shared with staff holds, at most
IDENTITY_CHANNELS = {"telegram", "wechat"}  # where the chat itself can be the way back

TEXTS: dict[str, dict[str, str]] = {
    "consent": {
        "pt": "Para a equipa da CPC Alliance o(a) apresentar a {orgs}, preciso de: o seu nome, a sua organização, uma forma de o(a) contactar (e-mail, telefone{wechat}) e numa linha o que procura.\n"
              "O que guardamos e porquê: estes dados e as organizações escolhidas, só para preparar esta apresentação; a equipa pode ler esta conversa se o autorizar. Tratamento com base no seu consentimento (RGPD; para utilizadores na China, PIPL). Pode dizer «apagar os meus dados» a qualquer momento.\n"
              "Concorda? Responda «sim», «sim, com a conversa» (a equipa vê também esta conversa) ou «cancelar».",
        "zh": "为了让CPC联盟工作人员为您对接{orgs}，需要您提供：姓名、所在单位、一种联系方式（邮箱、电话{wechat}）以及一句话说明您的需求。\n"
              "我们保存什么、为什么：以上信息和您选择的机构，仅用于安排这次对接；如您同意，工作人员还可查看本次对话。我们依据您的同意处理个人信息（中国用户适用《个人信息保护法》，欧盟用户适用GDPR）。您可随时说“删除我的数据”。\n"
              "您同意吗？请回复“同意”、“同意并分享对话”（工作人员也能看到本次对话）或“取消”。",
        "en": "For the CPC Alliance team to introduce you to {orgs}, I need: your name, your organisation, one way to reach you (e-mail, phone{wechat}) and one line on what you are looking for.\n"
              "What we store and why: these details and the organisations you chose, only to arrange this introduction; the team may read this conversation if you allow it. We rely on your consent (GDPR for users in the EU, PIPL for users in China). You can say “delete my data” at any time.\n"
              "Do you agree? Reply “yes”, “yes, with the conversation” (the team also sees this conversation) or “cancel”.",
    },
    "wechat_id": {"pt": ", ID WeChat", "zh": "、微信号", "en": ", WeChat ID"},
    "ask_name": {"pt": "Obrigado. Como se chama?", "zh": "谢谢。请问您的姓名？", "en": "Thank you. What is your name?"},
    "ask_org": {"pt": "E a sua organização (empresa, cluster ou instituto)?", "zh": "您所在的单位（企业、产业集群或机构）是？",
                "en": "And your organisation (company, cluster or institute)?"},
    "ask_contact": {
        "pt": "Como o(a) podemos contactar? Escreva o seu e-mail ou telefone{wechat}.",
        "zh": "我们怎样联系您？请输入邮箱或电话{wechat}。",
        "en": "How can we reach you? Type your e-mail or phone number{wechat}.",
    },
    "ask_contact_channel": {
        "pt": " Ou responda «aqui» para a equipa lhe responder neste chat de {channel}.",
        "zh": " 也可以回复“就在这里”，工作人员会通过{channel}直接回复您。",
        "en": " Or reply “here” for the team to answer you in this {channel} chat.",
    },
    "wechat_hint": {"pt": " ou ID WeChat (p. ex. «WeChat: ana_silva88»)", "zh": "或微信号（例如“微信：ana_silva88”）",
                    "en": " or WeChat ID (e.g. “WeChat: ana_silva88”)"},
    "ask_need": {
        "pt": "Numa linha, o que procura? Percebi: «{need}». Responda «ok» para manter ou escreva outra.",
        "zh": "请用一句话说明您的需求。我的理解是：“{need}”。回复“好”保留，或输入新的说明。",
        "en": "In one line, what are you looking for? I understood: “{need}”. Reply “ok” to keep it or write another.",
    },
    "summary": {
        "pt": "Confirme o pedido:\n- Nome: {name}\n- Organização: {org}\n- Contacto: {contact}\n- Necessidade: {need}\n- Organizações: {orgs}\n- Conversa partilhada: {shared}\n"
              "Responda «enviar» para enviar, corrija um campo (p. ex. «nome: Ana Silva» ou «alterar contacto») ou «cancelar».",
        "zh": "请确认您的请求：\n- 姓名：{name}\n- 单位：{org}\n- 联系方式：{contact}\n- 需求：{need}\n- 意向机构：{orgs}\n- 分享对话：{shared}\n"
              "回复“确认”提交；也可以修改某一项（例如“姓名：王芳”或“修改联系方式”），或回复“取消”。",
        "en": "Please confirm your request:\n- Name: {name}\n- Organisation: {org}\n- Contact: {contact}\n- Need: {need}\n- Organisations: {orgs}\n- Conversation shared: {shared}\n"
              "Reply “send” to send it, correct a field (e.g. “name: Ana Silva” or “change contact”) or “cancel”.",
    },
    "yes": {"pt": "sim", "zh": "是", "en": "yes"},
    "no": {"pt": "não", "zh": "否", "en": "no"},
    "this_chat": {"pt": "este chat de {channel}", "zh": "{channel}对话", "en": "this {channel} chat"},
    "done": {
        "pt": "Pedido n.º {lead} enviado à equipa da CPC Alliance, sobre {orgs}. Vamos contactá-lo(a) por {contact}. Site público: {website}",
        "zh": "您的请求（编号 {lead}）已提交给CPC联盟工作人员，涉及：{orgs}。我们将通过{contact}与您联系。官方网站：{website}",
        "en": "Request no. {lead} sent to the CPC Alliance team, about {orgs}. We will reach you by {contact}. Public website: {website}",
    },
    "added": {
        "pt": "Acrescentei {name} ao seu pedido (agora: {orgs}).",
        "zh": "已将{name}加入您的请求（现在包括：{orgs}）。",
        "en": "I've added {name} to your request (now: {orgs}).",
    },
    "already": {"pt": "{name} já está no seu pedido.", "zh": "{name}已在您的请求中。", "en": "{name} is already in your request."},
    "cancelled": {
        "pt": "Pedido cancelado; não guardei nenhum dado seu. Pode continuar a pesquisar.",
        "zh": "已取消，您的信息均未保存。您可以继续搜索。",
        "en": "Request cancelled; none of your details were kept. You can go on searching.",
    },
    "consent_again": {
        "pt": "Preciso da sua resposta: «sim», «sim, com a conversa» ou «cancelar».",
        "zh": "请回复“同意”、“同意并分享对话”或“取消”。",
        "en": "I need your answer: “yes”, “yes, with the conversation” or “cancel”.",
    },
    "bad_empty": {"pt": "Não recebi nada. {ask}", "zh": "没有收到内容。{ask}", "en": "I got nothing there. {ask}"},
    "bad_long": {"pt": "É demasiado longo (máximo {max} caracteres). {ask}", "zh": "内容太长（最多{max}个字符）。{ask}",
                 "en": "That is too long (at most {max} characters). {ask}"},
    "bad_markup": {"pt": "Escreva só texto, sem HTML nem ligações. {ask}", "zh": "请只输入文字，不要包含HTML或链接。{ask}",
                   "en": "Please type plain text, without HTML or links. {ask}"},
    "bad_name": {"pt": "Isso não parece um nome. {ask}", "zh": "这看起来不像姓名。{ask}", "en": "That does not look like a name. {ask}"},
    "bad_email": {
        "pt": "«{value}» não parece um e-mail válido (p. ex. ana@empresa.pt). Escreva-o de novo, ou dê um telefone.",
        "zh": "“{value}”不是有效的邮箱地址（例如 wang@company.cn）。请重新输入，或留下电话。",
        "en": "“{value}” does not look like a valid e-mail (e.g. ana@company.com). Please type it again, or give a phone number.",
    },
    "bad_phone": {
        "pt": "«{value}» não parece um número de telefone (7 a 15 algarismos, com o indicativo, p. ex. +351 912 345 678). Escreva-o de novo.",
        "zh": "“{value}”不是有效的电话号码（7到15位数字，可加国家代码，例如 +86 138 0013 8000）。请重新输入。",
        "en": "“{value}” does not look like a phone number (7 to 15 digits with the country code, e.g. +351 912 345 678). Please type it again.",
    },
    "bad_contact": {
        "pt": "Não reconheci um contacto. {ask}", "zh": "没有识别出联系方式。{ask}", "en": "I could not read a way to reach you. {ask}",
    },
    "bad_field": {"pt": "Que campo quer alterar? nome, organização, contacto ou necessidade.",
                  "zh": "您想修改哪一项？姓名、单位、联系方式或需求。",
                  "en": "Which field do you want to change? name, organisation, contact or need."},
    "erase_ask": {
        "pt": "Vou apagar os seus dados: esta conversa, os seus pedidos de contacto e os contactos que nos deu. Não é possível desfazer. Responda «sim, apagar» para confirmar.",
        "zh": "将删除您的数据：本次对话、您的对接请求和您留下的联系方式，且无法恢复。请回复“确认删除”。",
        "en": "I will delete your data: this conversation, your contact requests and the contact details you gave us. This cannot be undone. Reply “yes, delete” to confirm.",
    },
    "erased": {
        "pt": "Feito: apaguei os seus dados ({leads} pedido(s) de contacto).",
        "zh": "已完成：您的数据已删除（{leads}条对接请求）。",
        "en": "Done: your data is deleted ({leads} contact request(s)).",
    },
    "staff_header": {
        "pt": "Mensagem da equipa da CPC Alliance (pedido n.º {lead}):",
        "zh": "CPC联盟工作人员的消息（请求编号 {lead}）：",
        "en": "Message from the CPC Alliance team (request no. {lead}):",
    },
    "erase_kept": {"pt": "Não apaguei nada.", "zh": "未删除任何数据。", "en": "Nothing was deleted."},
}
SUGGEST: dict[str, dict[str, list[str]]] = {
    "consent": {"pt": ["sim", "sim, com a conversa", "cancelar"], "zh": ["同意", "同意并分享对话", "取消"],
                "en": ["yes", "yes, with the conversation", "cancel"]},
    "need": {"pt": ["ok", "cancelar"], "zh": ["好", "取消"], "en": ["ok", "cancel"]},
    "confirm": {"pt": ["enviar", "alterar contacto", "cancelar"], "zh": ["确认", "修改联系方式", "取消"],
                "en": ["send", "change contact", "cancel"]},
    "here": {"pt": ["aqui", "cancelar"], "zh": ["就在这里", "取消"], "en": ["here", "cancel"]},
    "erase": {"pt": ["sim, apagar", "não"], "zh": ["确认删除", "不删除"], "en": ["yes, delete", "no"]},
    "cancel": {"pt": ["voltar à lista", "cancelar"], "zh": ["返回列表", "取消"], "en": ["back to the list", "cancel"]},
}
CHANNEL_NAMES = {"telegram": {"pt": "Telegram", "zh": "Telegram", "en": "Telegram"},
                 "wechat": {"pt": "WeChat", "zh": "微信", "en": "WeChat"}}

_END = r"[\s!.,，。！~]*$"
YES = re.compile(r"^((sim|s|yes|y|yep|ok|okay|claro|concordo|aceito|confirmo|confirmar|enviar|envia|pode enviar|i agree|agree|"
                 r"confirm|send|send it|sure)\b|(是的|是|好的|好|同意|确认|可以|对|没问题|提交|发送))", re.I)
NO = re.compile(r"^(n[aã]o|no|nope|n|不|不同意|否|不要|不用)" + _END, re.I)
CANCEL = re.compile(r"^(cancel(ar|a|e)?|anular|desistir|esquece|cancel( it| this| the request)?|stop|abort|nevermind|never mind|"
                    r"取消|算了|不用了|不要了)" + _END, re.I)
SHARE = re.compile(r"conversa|conversation|chat|对话|聊天", re.I)
ERASE = re.compile(r"(apag|elimin|remov|delet|eras)\w*\s+(os\s+)?(meus|my|all my)\s+(dados|data|details|informa\w*)|"
                   r"forget me|esquece-me|删除我的(数据|信息|资料)|清除我的(数据|信息)", re.I)
ERASE_YES = re.compile(r"^(sim|yes|y|ok|confirmo|confirm|确认|是|好|同意)[\s,，]*(apagar|apaga|delete|删除|,)?" + _END +
                       r"|^(apagar|delete|yes,? delete|sim,? apagar|确认删除|删除)" + _END, re.I)
HERE = re.compile(r"^(aqui|neste chat|por aqui|este chat|here|this chat|in this chat|right here|here please|"
                  r"这里|就在这里|在这里|就这里)" + _END, re.I)
HERE_BY_NAME = {"telegram": re.compile(r"^(pelo |by |via |use |用)?telegram" + _END, re.I),
                "wechat": re.compile(r"^(pelo |by |via |use |用|就用)?(wechat|weixin|微信)" + _END, re.I)}
MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!]|https?://|javascript:|&#?\w+;", re.I)
MAILBOX = re.compile(r"^[\w.+'-]+$")  # the local parts real mailboxes have (\w: any script's letters and digits)
PHONE = re.compile(r"^\+?\d{7,15}$")
WECHAT_ID = re.compile(r"^(?:wechat|weixin|wx|微信号?|微信ID)\s*(?:id)?\s*[:：]?\s*([A-Za-z][-_A-Za-z0-9]{5,19})$", re.I)
_PREFIX = r"^(e-?mail|email|mail|telefone|telem[oó]vel|phone|tel|mobile|contacto|contato|contact|邮箱|电子邮件|电话|手机|联系方式)\s*[:：]?\s*"
FIELD_WORDS: dict[str, re.Pattern] = {
    "name": re.compile(r"nome|name|姓名|名字", re.I),
    "org": re.compile(r"organiza[cç][aã]o|organi[sz]ation|empresa|company|entidade|institui[cç][aã]o|单位|公司|机构|组织", re.I),
    "contact": re.compile(r"contacto|contato|contact|e-?mail|telefone|phone|wechat|联系方式|邮箱|电话|微信", re.I),
    "need": re.compile(r"necessidade|need|procuro|需求|需要", re.I),
}
_ASSIGN = re.compile(r"(?:^|[\s;|,，；])(" + "|".join(p.pattern for p in FIELD_WORDS.values()) + r")\s*[:：]", re.I)
_CHANGE = re.compile(r"alterar|mudar|corrigir|change|edit|correct|fix|修改|更改|改", re.I)


def text(key: str, lang: str, **values: object) -> str:
    table = TEXTS[key]
    return table.get(lang, table["en"]).format(**values)


def suggest(key: str, lang: str) -> list[str]:
    table = SUGGEST[key]
    return list(table.get(lang, table["en"]))


@dataclass
class Step:
    """What the dialogue says after a capture turn, and what it must store or erase."""

    text: str
    intent: str
    suggestions: list[str] = field(default_factory=list)
    form: dict[str, Any] | None = None  # what the web chat and Telegram can show for this step
    lead: dict[str, Any] | None = None  # a finished, consented request to store
    erase: bool = False  # the user confirmed "delete my data"


# -- what the dialogue calls ---------------------------------------------------------------------
def active(state) -> bool:
    return bool(getattr(state, "capture", None)) or bool(getattr(state, "erase_pending", False))


def wants_erase(text_: str) -> bool:
    return bool(ERASE.search(text_))


def remember(state, user_text: str, reply_text: str) -> None:
    """Keep the last turns in the session, for staff to read only if the user shares them."""
    history = list(getattr(state, "history", None) or [])
    history.append([round(time.time()), user_text[:500], reply_text.split("\n", 1)[0][:300]])
    state.history = history[-HISTORY_TURNS:]


def orgs_text(orgs: list[list[str]], lang: str) -> str:
    return ("、" if lang == "zh" else ", ").join(name for _, name in orgs)


def start(state, org_id: str, org_name: str, lang: str, channel: str, interest: str) -> Step:
    """Begin a request for an organisation: explain what is stored and ask for consent."""
    need = _need_from(state, lang)
    state.capture = {"lang": lang, "step": "consent", "channel": channel, "orgs": [[org_id, org_name]],
                     "message": interest[:500], "need_default": need}
    return _ask(state.capture, "consent")


def add_org(state, org_id: str, org_name: str) -> Step:
    """One more organisation for the request under way; then the current question again."""
    cap = state.capture
    lang = cap["lang"]
    if any(oid == org_id for oid, _ in cap["orgs"]):
        head = text("already", lang, name=org_name)
    else:
        cap["orgs"].append([org_id, org_name])
        cap["need_default"] = _need_from(state, lang)
        head = text("added", lang, name=org_name, orgs=orgs_text(cap["orgs"], lang))
    step = _ask(cap, cap["step"])
    step.text = head + "\n" + step.text
    return step


def handle(state, message: str, channel: str) -> Step:
    """One user turn while a capture or an erase confirmation is under way."""
    if getattr(state, "erase_pending", False):
        lang = state.erase_pending if isinstance(state.erase_pending, str) else (state.lang or "en")
        state.erase_pending = False
        if ERASE_YES.match(message.strip()):
            return Step("", "privacy_erased", erase=True)
        return Step(text("erase_kept", lang), "privacy_kept")
    cap = state.capture
    lang = cap["lang"]
    msg = message.strip()
    if CANCEL.match(msg) or (cap["step"] == "consent" and NO.match(msg)):
        state.capture = None
        return Step(text("cancelled", lang), "contact_cancelled")
    step = cap["step"]
    if step == "consent":
        if not YES.match(msg):
            return Step(text("consent_again", lang), "contact_consent", suggest("consent", lang), {"step": "consent"})
        cap["consent"] = {"at": round(time.time()), "conversation": bool(SHARE.search(msg))}
        cap["request_key"] = secrets.token_urlsafe(16)  # names this request: it is stored once however often sent
        offered = volunteered(msg)  # "sim, sou a Ana Silva, ana@moldes.pt"
        return _take(cap, offered, channel) if offered else _next(cap)
    # from here on the user has agreed: their answers may be kept in the session
    assigned = _assignments(msg)  # "name: Ana | contact: ..." (the web form) is read field by field
    offered = volunteered(msg, step) if step in ("name", "org", "contact") and not assigned else {}
    if offered:
        return _take(cap, offered, channel)
    if assigned:
        for key, value in assigned:
            problem = _set(cap, key, value, channel)
            if problem:
                cap["step"] = key
                return _reask(cap, key, problem)
        return _next(cap)
    if step == "confirm":
        if YES.match(msg):
            return _finish(state, cap)
        wanted = [k for k, p in FIELD_WORDS.items() if p.search(msg)]
        if wanted and (len(wanted) == 1 or _CHANGE.search(msg)):
            cap["step"] = wanted[0]
            cap.pop(wanted[0], None)
            return _ask(cap, wanted[0])
        return Step(text("bad_field", lang) + "\n" + _ask(cap, "confirm").text, "contact_confirm",
                    suggest("confirm", lang), {"step": "confirm"})
    problem = _set(cap, step, msg, channel)
    if problem:
        return _reask(cap, step, problem)
    return _next(cap)


# -- details volunteered in one message ----------------------------------------------------------
_STOP = r"(?=\s*(?:[,，;；。\n]|\s(?:e-?mail|email|mail|telefone|tel|phone|wechat|weixin)\b|邮箱|电话|手机|微信|$))"
EMAIL_IN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
PHONE_IN = re.compile(r"(?<![\w@])(?:\+|00)?\d[\d\s().-]{5,20}\d(?![\w@])")
WECHAT_IN = re.compile(r"(?:wechat|weixin|wx|微信号?|微信\s*id)\s*(?:id|号)?\s*(?:[:：是为]|\s)\s*([A-Za-z][-_A-Za-z0-9]{5,19})(?![-\w])", re.I)
WECHAT_BARE = re.compile(r"^[A-Za-z][-_A-Za-z0-9]{5,19}$")
NAME_IN = re.compile(
    r"(?:chamo-me|o meu nome [ée]|meu nome [ée]|my name is|i am|i'm|this is|nome\s*[:：]|name\s*[:：]|"
    r"我叫|我的名字是|我是|姓名\s*[:：]?)\s*([^\W\d_][^\W\d_ .'-]*(?:[ .'-](?!(?:from|at|of|and|e-?mail|email|phone)\b)[^\W\d_]+){0,4})"
    r"(?=\s*(?:[,，;；。\n]|\s(?:from|at|of|da|do|de|e-?mail|email|mail|phone|tel|telefone|wechat)\b|来自|邮箱|电话|手机|微信|$))", re.I)
ORG_AFTER_NAME = re.compile(r"\s*[,，]?\s*(?:da|do|de|from|of|at)\s+(?=[A-Z\u4e00-\u9fff])([^,，;；。\n]{2,80}?)" + _STOP)
ORG_IN = re.compile(
    r"(?:\bfrom\s+|\bwork(?:ing)?\s+(?:at|for)\s+|\bat\s+(?=[A-Z])|"
    r"(?:empresa|organiza[cç][aã]o|organi[sz]ation|company|公司|单位|机构)\s*[:：]\s*|来自|就职于|在职于)"
    r"([^,，;；。\n]{2,80}?)" + _STOP, re.I)


def volunteered(msg: str, step: str | None = None) -> dict[str, str]:
    """Name, organisation and contact given in one message, in any of the three languages:
    "Chamo-me Ana Silva, da Moldes Silva Lda, email ana.silva@example.com", "微信：ana_silva88",
    "I'm Li Wei from Ningbo Textiles, +86 138 0000 0000". Only what is marked as such is read."""
    found: dict[str, str] = {}
    wx = WECHAT_IN.search(msg)
    email = EMAIL_IN.search(msg)
    phone = next((m for m in PHONE_IN.finditer(msg) if 7 <= sum(c.isdigit() for c in m.group(0)) <= 15), None)
    if email:
        found["contact"] = email.group(0)
    elif wx:
        found["contact"] = "wechat:" + wx.group(1)
    elif phone:
        found["contact"] = phone.group(0).strip()
    name = NAME_IN.search(msg)
    if name and _looks_like_name(name.group(1).strip(" .")):
        found["name"] = name.group(1).strip(" .")
    # "da Moldes Silva Lda" names an organisation right after a name ("Chamo-me Ana Silva, da ..."), not
    # inside one ("Plásticos do Lis")
    org = (ORG_AFTER_NAME.match(msg, name.end()) if "name" in found else None) or ORG_IN.search(msg, name.end() if "name" in found else 0)
    if org and not EMAIL_IN.search(org.group(1)):
        value = org.group(1).strip(" .")
        if value and value != found.get("name"):
            found["org"] = value
    if step in ("name", "org") and not ({"name", "org"} & set(found)):
        found.update(_in_order(msg, step, found))
    return found


def _in_order(msg: str, step: str, found: dict[str, str]) -> dict[str, str]:
    """ "王华，华布汽配，微信: wang_huabu88" or "Li Wei, Blue Crane Composites" answering "your name?":
    the parts before the contact, in the order asked (name, then organisation)."""
    rest = msg
    for m in (EMAIL_IN, WECHAT_IN, PHONE_IN):
        rest = m.sub(" ", rest)
    rest = re.sub(r"(?i)(e-?mail|email|phone|tel|telefone|wechat|weixin|微信号?|邮箱|电话|手机)\s*[:：]?\s*$", "", rest.strip(" ,，;；"))
    parts = [p.strip(" .:：") for p in re.split(r"[,，;；\n]+", rest) if p.strip(" .:：")]
    if not parts or len(parts) > 2 or any(len(p) > 80 or sum(c.isdigit() for c in p) > 2 for p in parts):
        return {}
    if (len(parts) == 1 or step == "org") and not found:
        return {}  # one plain answer ("Acme, Inc" is one organisation): the step's own, read as usual
    if step == "org":
        return {"org": ", ".join(parts)}
    keys = ["name", "org"] if step == "name" else ["org"]
    return dict(zip(keys, parts))


def _looks_like_name(value: str) -> bool:
    """A person's name after "I am"/"我是": two to four Han characters, or capitalised words
    ("我是一家纺织企业" and "I am looking for" are not names)."""
    if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", value):
        return True
    words = value.split()
    particles = {"da", "de", "do", "dos", "das", "e", "van", "von"}
    return 1 <= len(words) <= 5 and all(w[0].isupper() or w in particles for w in words) and not has_han(value)


def _take(cap: dict[str, Any], offered: dict[str, str], channel: str) -> Step:
    """Keep what was volunteered; re-ask the first thing that does not hold, else ask what is missing."""
    for key in ("name", "org", "contact"):
        if key not in offered:
            continue
        value = offered[key]
        if key == "contact" and value.startswith("wechat:"):
            cap["contact"], cap["contact_kind"] = value.split(":", 1)[1], "wechat_id"
            continue
        problem = _set(cap, key, value, channel)
        if problem:
            cap["step"] = key
            return _reask(cap, key, problem)
    return _next(cap)


def erase_ask(state, lang: str) -> Step:
    state.capture = None
    state.erase_pending = lang
    return Step(text("erase_ask", lang), "privacy_confirm", suggest("erase", lang))


def erased(lang: str, leads: int) -> str:
    return text("erased", lang, leads=leads)


def contact_label(cap: dict[str, Any], lang: str) -> str:
    if cap.get("contact_kind") in IDENTITY_CHANNELS:
        return text("this_chat", lang, channel=CHANNEL_NAMES[cap["contact_kind"]][lang])
    return cap.get("contact", "")


# -- steps ---------------------------------------------------------------------------------------
def _need_from(state, lang: str) -> str:
    """The one-line need as the conversation suggests it: the search that led here."""
    query = (getattr(state, "query", None) or "").strip()
    return query[:NEED_MAX]


def _next(cap: dict[str, Any]) -> Step:
    for key in FIELDS:
        if not cap.get(key):
            cap["step"] = key
            return _ask(cap, key)
    cap["step"] = "confirm"
    return _ask(cap, "confirm")


def _ask(cap: dict[str, Any], step: str) -> Step:
    lang, channel = cap["lang"], cap.get("channel", "web")
    wechat = text("wechat_id", lang) if channel == "wechat" or lang == "zh" else ""
    form = {"step": step, "fields": _form_values(cap)}
    if step == "consent":
        return Step(text("consent", lang, orgs=orgs_text(cap["orgs"], lang), wechat=wechat), "contact_consent",
                    suggest("consent", lang), form)
    if step == "name":
        return Step(text("ask_name", lang), "contact_name", suggest("cancel", lang), form)
    if step == "org":
        return Step(text("ask_org", lang), "contact_org", suggest("cancel", lang), form)
    if step == "contact":
        hint = text("wechat_hint", lang) if wechat else ""
        ask = text("ask_contact", lang, wechat=hint)
        chips = suggest("cancel", lang)
        if channel in IDENTITY_CHANNELS:
            ask += text("ask_contact_channel", lang, channel=CHANNEL_NAMES[channel][lang])
            chips = suggest("here", lang)
        form["channel_identity"] = channel in IDENTITY_CHANNELS
        return Step(ask, "contact_contact", chips, form)
    if step == "need":
        need = cap.get("need_default") or "—"
        return Step(text("ask_need", lang, need=need), "contact_need", suggest("need", lang) if cap.get("need_default")
                    else suggest("cancel", lang), form)
    shared = text("yes" if cap.get("consent", {}).get("conversation") else "no", lang)
    return Step(text("summary", lang, name=cap["name"], org=cap["org"], contact=contact_label(cap, lang), need=cap["need"],
                     orgs=orgs_text(cap["orgs"], lang), shared=shared), "contact_confirm", suggest("confirm", lang), form)


def _form_values(cap: dict[str, Any]) -> dict[str, str]:
    values = {k: cap.get(k) or "" for k in FIELDS}
    if not values["need"]:
        values["need"] = cap.get("need_default") or ""
    if cap.get("contact_kind") in IDENTITY_CHANNELS:
        values["contact"] = ""
    return values


def _reask(cap: dict[str, Any], step: str, problem: tuple[str, dict]) -> Step:
    key, values = problem
    ask = _ask(cap, step)
    ask.text = text(key, cap["lang"], ask=ask.text, **values)
    ask.intent = "contact_invalid"
    return ask


def _assignments(msg: str) -> list[tuple[str, str]]:
    """ "name: Ana | organisation: X | contact: y@z.pt | need: ..." (the web form, or a correction)."""
    marks = list(_ASSIGN.finditer(msg))
    if not marks or msg[: marks[0].start()].strip(" ;|,，；"):
        return []
    out = []
    for i, m in enumerate(marks):
        word = m.group(1)
        key = next(k for k, p in FIELD_WORDS.items() if p.fullmatch(word))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(msg)
        value = msg[m.end():end].strip(" ;|,，；")
        if key == "contact" and re.search(r"wechat|weixin|微信", word, re.I):
            value = "微信:" + value  # "微信: wang_huabu88" names a WeChat ID
        out.append((key, value))
    return out


def _plain(value: str, limit: int) -> tuple[str, dict] | None:
    if not value.strip():
        return "bad_empty", {}
    if len(value) > limit:
        return "bad_long", {"max": limit}
    if MARKUP.search(value):
        return "bad_markup", {}
    return None


def _set(cap: dict[str, Any], key: str, value: str, channel: str) -> tuple[str, dict] | None:
    """Validate one answer and keep it; the reason it was refused otherwise."""
    value = " ".join(value.split())
    if key == "need" and cap.get("need_default") and (not value or YES.match(value)) and len(value) <= 12:
        value = cap["need_default"]
    if key == "contact":
        return _set_contact(cap, value, channel)
    limit = {"name": NAME_MAX, "org": ORG_MAX, "need": NEED_MAX}[key]
    problem = _plain(value, limit)
    if problem:
        return problem
    if key == "name" and (not re.search(r"[^\W\d_]", value) or sum(c.isdigit() for c in value) > 2 or "@" in value):
        return "bad_name", {}
    cap[key] = value
    return None


def _set_contact(cap: dict[str, Any], value: str, channel: str) -> tuple[str, dict] | None:
    if not value:
        return "bad_empty", {}
    if len(value) > EMAIL_MAX:
        return "bad_long", {"max": EMAIL_MAX}
    if channel in IDENTITY_CHANNELS and (HERE.match(value) or HERE_BY_NAME[channel].match(value)):
        cap["contact"], cap["contact_kind"] = channel, channel
        return None
    wx = WECHAT_ID.match(value) or WECHAT_IN.fullmatch(value)
    if wx:
        cap["contact"], cap["contact_kind"] = wx.group(1), "wechat_id"
        return None
    if WECHAT_BARE.match(value) and re.search(r"[\d_-]", value) and (channel == "wechat" or cap.get("lang") == "zh"):
        cap["contact"], cap["contact_kind"] = value, "wechat_id"  # "wang_huabu88" where WeChat IDs are the norm
        return None
    bare = re.sub(_PREFIX, "", value, flags=re.I).strip()
    shown = bare[:60] + ("…" if len(bare) > 60 else "")
    if "@" in bare:
        email = valid_email(bare)
        if email is not None and not MARKUP.search(email):
            cap["contact"], cap["contact_kind"] = email, "email"
            return None
        return "bad_email", {"value": shown}
    digits = re.sub(r"[\s().\-/]", "", bare)
    if re.fullmatch(r"\+?[\d]+", digits):
        if PHONE.match(digits):
            cap["contact"], cap["contact_kind"] = digits, "phone"
            return None
        return "bad_phone", {"value": shown}
    if MARKUP.search(value):
        return "bad_markup", {}
    return "bad_contact", {}


def valid_email(value: str) -> str | None:
    """The address in its normal form, or None. email-validator follows the RFCs (and IDNA for
    internationalised domains): "x?cc=a@b&subject=c@d" is refused, where a permissive pattern took
    it and staff's mail client opened a prefilled message. No DNS look-up: answers must be instant."""
    try:
        email = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    # The RFCs allow ? & = % # / ! in a local part ("x?cc=boss%40evil.com&subject=hi@example.com" is
    # valid) and no mail provider hands such addresses out: letters, digits and . _ + ' - only
    return email.normalized if MAILBOX.match(email.local_part) else None


def _finish(state, cap: dict[str, Any]) -> Step:
    """The consented request, ready to store; the capture leaves the session."""
    lang = cap["lang"]
    consent = cap.get("consent", {})
    history = list(getattr(state, "history", None) or []) if consent.get("conversation") else None
    lead = {"lang": lang, "orgs": [list(o) for o in cap["orgs"]], "message": cap.get("message", ""),
            "name": cap["name"], "asker_org": cap["org"], "contact": cap["contact"], "contact_kind": cap["contact_kind"],
            "need": cap["need"], "conversation": history, "consent_at": consent.get("at"),
            "contact_label": contact_label(cap, lang), "request_key": cap.get("request_key") or secrets.token_urlsafe(16)}
    state.capture = None
    return Step("", "contact", lead=lead)


def language(state) -> str | None:
    """The language a capture speaks: the one it started in (a Chinese name is an answer, not a switch)."""
    cap = getattr(state, "capture", None)
    if cap:
        return cap["lang"]
    pending = getattr(state, "erase_pending", False)
    return pending if isinstance(pending, str) else None
