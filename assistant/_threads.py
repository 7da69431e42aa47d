"""The conversation with the team: a user's answers reach their lead's thread, "talk to a person"
opens a request without a search, "what is the status of my request?" is answered from the lead.

Why a module of its own: these acts are read before any search (a reply to staff that names a
city or a trade is not a new search), and their wording is recognised by meaning from exemplars
in ``data/team_intents.json`` (nearest neighbours over the service's encoder), so phrasings
nobody wrote a rule for still land. The dialogue calls :meth:`TeamDesk.step` once per turn.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import _contact as contact
from ._exemplars import Exemplars, nearest, query_vector

if TYPE_CHECKING:
    from ._state import SessionState, StateStore
    from .dialogue import Reply

DATA = Path(__file__).parent / "data"
EXEMPLARS = DATA / "team_intents.json"
ACTS = ("human", "status", "search", "reply", "other")
TOP_K = 3
# A message is read as "human" or "status" only when its nearest exemplars are of that act and
# at least this close (cosine, e5 query-query); measured on the exemplars left out one at a time
# and on the dialogue tests' searches (tests/test_assistant_threads.py).
ACT_FLOOR = 0.90
ACT_MARGIN = 0.02  # ... and ahead of every other act by this much
SEARCH_MARGIN = 0.01  # inside a thread a message leaves it only when "search" wins by this much

TEXTS: dict[str, dict[str, str]] = {
    "to_team": {
        "pt": "Enviado à equipa da CPC Alliance (pedido n.º {lead}). A resposta chega-lhe aqui. Para uma nova pesquisa, diga por exemplo «nova pesquisa: fornecedores de cortiça».",
        "zh": "已转给CPC联盟工作人员（请求编号 {lead}），回复会发到这里。如需重新搜索，请说例如“新的搜索：葡萄牙的软木企业”。",
        "en": "Sent to the CPC Alliance team (request no. {lead}). Their answer will reach you here. For a new search, say e.g. “new search: Portuguese cork suppliers”.",
    },
    "human_opened": {
        "pt": "Passei a sua mensagem à equipa da CPC Alliance (pedido n.º {lead}); uma pessoa responde-lhe neste chat. Pode dizer «apagar os meus dados» a qualquer momento.",
        "zh": "已将您的消息转给CPC联盟工作人员（请求编号 {lead}），工作人员会在本对话中回复您。您可随时说“删除我的数据”。",
        "en": "I've passed your message to the CPC Alliance team (request no. {lead}); a person will answer you in this chat. You can say “delete my data” at any time.",
    },
    "human_team": {"pt": "um parceiro à medida do seu pedido", "zh": "符合您需求的合作伙伴", "en": "a partner that fits your request"},
    "status": {
        "pt": "O seu pedido n.º {lead} ({orgs}) está {status}, desde {when}.{messages}",
        "zh": "您的请求（编号 {lead}，{orgs}）当前状态：{status}，更新于{when}。{messages}",
        "en": "Your request no. {lead} ({orgs}) is {status}, since {when}.{messages}",
    },
    "status_messages": {
        "pt": " A equipa escreveu-lhe {n} mensagem(ns).",
        "zh": "工作人员已给您发送{n}条消息。",
        "en": " The team has written to you {n} time(s).",
    },
    "status_more": {"pt": "Tem mais {n} pedido(s) anteriores.", "zh": "您还有{n}个更早的请求。", "en": "You have {n} earlier request(s)."},
    "status_none": {
        "pt": "Ainda não tem nenhum pedido à equipa. Depois de uma pesquisa diga «tenho interesse no 1», ou diga «quero falar com uma pessoa».",
        "zh": "您还没有向工作人员提交请求。搜索后可以说“我对第1个感兴趣”，或者说“我想和工作人员联系”。",
        "en": "You have no request with the team yet. After a search say “I'm interested in 1”, or say “I want to talk to a person”.",
    },
}
STATUS_LABELS = {
    "new": {"pt": "recebido, à espera da equipa", "zh": "已收到，等待工作人员处理", "en": "received, waiting for the team"},
    "contacted": {"pt": "em curso: a equipa já o(a) contactou", "zh": "处理中：工作人员已与您联系", "en": "in progress: the team has contacted you"},
    "introduced": {"pt": "com apresentação feita", "zh": "已完成对接介绍", "en": "introduced to the partner"},
    "closed": {"pt": "encerrado", "zh": "已结束", "en": "closed"},
}


def text(key: str, lang: str, **values: object) -> str:
    table = TEXTS[key]
    return table.get(lang, table["en"]).format(**values)


class QueryVectors:
    """The encoder of the moment, as an encoder: one-message query encodes go through the turn's
    shared cache (``_exemplars.query_vector``), so the team step, the FAQ and the other readers of a
    message encode it once."""

    def __init__(self, encoder: Callable[[], object]):
        self._encoder = encoder

    def __call__(self) -> "QueryVectors":  # passed where an encoder getter is expected
        return self

    @property
    def model_id(self):
        return getattr(self._encoder(), "model_id", None)

    def encode(self, texts, kind: str = "query"):
        encoder = self._encoder()
        if kind != "query" or len(texts) != 1:
            return encoder.encode(texts, kind)
        return query_vector(encoder, texts[0])[None, :]


def load_exemplars(path: Path = EXEMPLARS) -> dict[str, list[str]]:
    """Per act, the exemplars of every language in one list (the encoder is multilingual)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {act: [t for lang in ("pt", "zh", "en") for t in data[act].get(lang, [])] for act in ACTS}


@dataclass
class Reading:
    act: str  # the nearest act, or "" when none is close enough to act on
    scores: dict[str, float]


class TeamDesk:
    """What the team side does once the dialogue has read a message: open a request for a person,
    answer the status of one; its examples also tell an answer to staff from a new search."""

    def __init__(self, store: "StateStore", encoder: Callable[[], object]):
        self.store = store
        self._encoder = encoder
        self._vote: Exemplars | None = None

    @property
    def vote(self) -> Exemplars:
        """The acts' examples, the ``TOP_K`` nearest of each act averaged (``_exemplars.Exemplars``)."""
        if self._vote is None:
            examples = load_exemplars()
            self._vote = Exemplars(self._encoder(), [(act, t) for act, texts in examples.items() for t in texts], k=TOP_K)
        return self._vote

    def warm(self) -> None:
        """Embed the exemplars now (at start-up), not under the first message."""
        self.vote

    def read(self, text_: str) -> Reading:
        scores = self.vote.scores(text_)
        best = max(scores, key=scores.get)
        if best in ("human", "status") and nearest(scores, ACT_FLOOR, ACT_MARGIN)[0] != best:
            best = ""
        return Reading(best, scores)

    def open_request(self, text_: str, state: "SessionState", lang: str, sid: str, channel: str, act: str) -> "Reply":
        """A lead without an organisation. On Telegram and WeChat the chat itself is the way back,
        so the lead is recorded at once; on the web the usual consent and contact steps come first."""
        need = (state.query or text_)[: contact.NEED_MAX]
        team = text("human_team", lang)
        if channel in contact.IDENTITY_CHANNELS:
            lead_id = self.store.add_lead(sid, channel, "", team, lang, text_[:500], name=None, contact=channel,
                                          contact_kind=channel, need=need, consent_at=time.time())
            return _reply(text("human_opened", lang, lead=lead_id), lang, act if act == "human" else "lead",
                          lead_id=lead_id, handoff=True)
        step = contact.start(state, "", team, lang, channel, text_)
        return _reply(step.text, lang, act, suggestions=step.suggestions, form=step.form)

    def status(self, state: "SessionState", lang: str, sid: str) -> "Reply":
        leads = self.store.session_leads(sid)
        if not leads:
            return _reply(text("status_none", lang), lang, "status")
        lead = leads[0]
        sent = [m for m in self.store.staff_messages(lead_id=lead["id"]) if m.get("sender", "staff") == "staff"]
        orgs = ("、" if lang == "zh" else ", ").join(o["name"] for o in lead["organisations"] if o["name"])
        when = time.strftime("%Y-%m-%d", time.gmtime(lead["updated"]))
        label = STATUS_LABELS.get(lead["status"], {}).get(lang, lead["status"])
        messages = text("status_messages", lang, n=len(sent)) if sent else ""
        lines = [text("status", lang, lead=lead["id"], orgs=orgs or "—", status=label, when=when, messages=messages)]
        if len(leads) > 1:
            lines.append(text("status_more", lang, n=len(leads) - 1))
        return _reply("\n".join(lines), lang, "status", lead_id=lead["id"])


def _reply(text_: str, lang: str, intent: str, **kw) -> "Reply":
    from .dialogue import Reply  # the dialogue imports this module: its Reply is looked up when used

    return Reply(text_, lang, intent, **kw)
