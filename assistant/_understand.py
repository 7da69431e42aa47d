"""What a message asks for, as components: precise rules, a learned classifier, a fallback, a combiner.

Rules (``_intents`` regexes, the gazetteer's refinements) return an :class:`Intent` with
confidence 1.0 or nothing, and stay where they are precise ("mais", "detalhes do 2", "só em
Zhejiang"). What no rule catches is read by meaning: every message is embedded with the encoder the
service already runs (multilingual-e5) and compared with example messages per intent in pt, zh and en
(``assistant/data/intents.jsonl``, data, not code), so "only in the North", "只要北部的" or "quero falar
com uma pessoa" need no rule of their own. A fallback turns low or ambiguous readings into
``out_of_scope`` or a short clarifying question, and the combiner lets rules override the model
(confidence first, then priority), as Rasa's keyword classifier, fallback classifier and policy
ensemble do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ._exemplars import Exemplars

EXEMPLARS = Path(__file__).with_name("data") / "intents.jsonl"
INTENTS = ("search", "refine", "more", "back", "details", "interest", "contact", "human", "status", "to_team", "faq",
           "smalltalk", "language", "erase", "help", "out_of_scope", "clarify", "mine", "profile", "publish")
NEEDS_LIST = {"refine", "more", "back", "details"}  # readings that only make sense after a search
THRESHOLD = 0.875  # best exemplar similarity below this: nothing we know (e5 cosines sit in 0.75-0.98)
MIN_CONFIDENCE = 0.3  # a winning reading less sure than this is no reading
GAP = 0.012  # two readings closer than this (mean top-2 similarity) are ambiguous
TEMPERATURE = 0.02  # softmax temperature turning similarities into confidences


@dataclass(frozen=True)
class Intent:
    """One reading of a message: which intent, how sure, and what it carries (numbers, places, a language)."""

    name: str
    confidence: float
    slots: dict = field(default_factory=dict, hash=False, compare=False)
    source: str = "rule"  # "rule", "model" or "fallback"
    ranking: tuple = ()  # the model's (name, confidence) readings, best first, when the model was asked


@dataclass
class Context:
    """What the conversation state says about which readings are possible."""

    has_query: bool = False
    has_list: bool = False
    thread: bool = False  # staff wrote to this user and the thread is open (the team hook says so)


@dataclass
class Rule:
    """A precise component: ``match`` returns slots (a dict, maybe empty) when it applies, else None."""

    name: str
    match: Callable[[str, Context], dict | None]
    priority: int = 0


# -- the learned component -----------------------------------------------------------------------
def load_exemplars(path: Path = EXEMPLARS) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("intent") not in INTENTS or not isinstance(row.get("text"), str) or row.get("lang") not in ("pt", "zh", "en"):
            raise ValueError(f"{path}:{n}: needs intent (one of {', '.join(INTENTS)}), lang (pt/zh/en) and text")
        rows.append(row)
    return rows


class IntentClassifier:
    """Nearest exemplars per intent (``_exemplars.Exemplars``, the two nearest per intent) over the
    service's encoder; the exemplar vectors are computed once per encoder and exemplar file."""

    def __init__(self, encoder, path: Path = EXEMPLARS):
        self.encoder = encoder
        self.exemplars = Exemplars(encoder, [(r["intent"], r["text"]) for r in load_exemplars(path)], k=2)
        self.labels, self.vectors = self.exemplars.labels, self.exemplars.vectors
        self.names = sorted(self.exemplars.names)

    def embed(self, text: str) -> np.ndarray:
        return self.exemplars.embed(text)

    def scores(self, text: str, vector: np.ndarray | None = None) -> dict[str, float]:
        """Per intent: mean of its two nearest exemplars' cosine similarities."""
        found = self.exemplars.scores(text, vector)
        return {name: found[name] for name in self.names}

    def rank(self, text: str, allowed: Iterable[str] | None = None) -> tuple[list[tuple[str, float]], float]:
        """Readings best first with softmax confidences, and the best raw similarity (for the threshold)."""
        scores = self.scores(text)
        if allowed is not None:
            keep = set(allowed)
            scores = {k: v for k, v in scores.items() if k in keep}
        names = list(scores)
        raw = np.array([scores[n] for n in names])
        conf = np.exp((raw - raw.max()) / TEMPERATURE)
        conf /= conf.sum()
        order = np.argsort(-raw)
        return [(names[i], float(conf[i])) for i in order], float(raw.max())

    def raw(self, text: str) -> dict[str, float]:
        return self.scores(text)

    def in_scope(self, text: str) -> bool:
        """A partner search rather than off-topic chat (the older two-way question, kept for callers)."""
        s = self.scores(text)
        return s.get("search", 0.0) >= s.get("out_of_scope", 0.0)


# -- fallback and combiner ---------------------------------------------------------------------
def fallback(ranking: list[tuple[str, float]], best: float, raw: dict[str, float], ctx: Context) -> Intent:
    """The model's reading, unless it is too weak (out of scope) or two readings that lead to
    different actions are too close (a short clarifying question)."""
    top, conf = ranking[0]
    if best < THRESHOLD or conf < MIN_CONFIDENCE:
        return Intent("out_of_scope", 1.0 - conf, {"low": best}, "fallback", tuple(ranking[:3]))
    if len(ranking) > 1:
        second = ranking[1][0]
        close = raw[top] - raw[second] < GAP
        if close and {top, second} == {"search", "refine"} and ctx.has_query:
            return Intent("clarify", conf, {"between": [top, second]}, "fallback", tuple(ranking[:3]))
    return Intent(top, conf, {}, "model", tuple(ranking[:3]))


class Understanding:
    """Rules first (confidence 1.0, by priority), then the classifier with its fallback."""

    def __init__(self, rules: list[Rule], classifier: Callable[[], IntentClassifier]):
        self.rules = sorted(rules, key=lambda r: -r.priority)  # stable: equal priorities keep their order
        self._classifier = classifier

    @property
    def classifier(self) -> IntentClassifier:
        return self._classifier()

    def rule(self, text: str, ctx: Context) -> Intent | None:
        for r in self.rules:
            slots = r.match(text, ctx)
            if slots is not None:
                return Intent(r.name, 1.0, slots, "rule")
        return None

    def model(self, text: str, ctx: Context) -> Intent:
        allowed = [n for n in self.classifier.names if (n not in NEEDS_LIST or ctx.has_query) and (n != "to_team" or ctx.thread)]
        clf = self.classifier
        raw = clf.scores(text)
        ranking, best = clf.rank(text, allowed)
        return fallback(ranking, best, raw, ctx)

    def read(self, text: str, ctx: Context) -> Intent:
        return self.rule(text, ctx) or self.model(text, ctx)


# -- a few precise rules that are new (the older ones live in _intents) -------------------------
LANGUAGE_CHANGE = re.compile(
    r"(respond|answer|reply|speak|write|talk|continue)\w*\b.{0,25}\b(in )?(english|portuguese|chinese|mandarin)\b|"
    r"^(in )?(english|portuguese|chinese)( please| pls)?[.!?]*$|do you speak (english|portuguese|chinese)|"
    r"(respond|respost|respond|fal|escrev|continu)\w*\b.{0,25}\b(em )?(ingl[eê]s|portugu[eê]s|chin[eê]s|mandarim)\b|"
    r"^(em )?(ingl[eê]s|portugu[eê]s|chin[eê]s)( por favor)?[.!?]*$|"
    r"(请|麻烦|可以|能)?(用|说)(中文|汉语|普通话|英文|英语|葡萄牙语|葡语|葡文)(回复|回答|交流|说|聊|吗)?",
    re.I,
)
_LANG_WORDS = (("zh", re.compile(r"chinese|mandarin|chin[eê]s|mandarim|中文|汉语|普通话", re.I)),
               ("en", re.compile(r"english|ingl[eê]s|英文|英语", re.I)),
               ("pt", re.compile(r"portuguese|portugu[eê]s|葡萄牙语|葡语|葡文", re.I)))

HUMAN = re.compile(
    r"(falar|conversar|contactar|contatar|ligar)\s+(com\s+)?(uma?\s+|algu[eé]m|o\s+|a\s+)?(pessoa|humano|algu[eé]m|equipa|equipe|"
    r"consultor|operador|agente|funcion[aá]rio)|pessoa real|atendimento humano|"
    r"(talk|speak|chat)\s+(to|with)\s+(a\s+|an\s+|some|the\s+)?(human|person|someone|real person|agent|staff|team|advisor|adviser)|"
    r"real person|human agent|"
    r"转人工|人工客服|人工服务|真人|(和|跟|与|找)(你们的?)?(工作人员|客服|顾问|人工)|工作人员(联系|沟通)",
    re.I,
)
STATUS = re.compile(
    r"(estado|ponto de situa[cç][aã]o|andamento|novidades|not[ií]cias)\s+(d[oa]s?\s+)?(meu|minha|nosso|nossa)\s+(pedido|contacto|pedidos)|"
    r"(status|progress|update|news)\s+(of|on|about)\s+(my|our)\s+(request|introduction|enquiry|inquiry)|"
    r"我的(请求|申请|需求|对接)(进展|进度|状态|处理)|(请求|申请|对接)(进展|进度)(如何|怎么样)",
    re.I,
)
GREETING_CHAT = re.compile(
    r"^(ol[aá]|oi|bom dia|boa tarde|boa noite|hello|hi|hey|你好|您好)?[\s,!.，。]*"
    r"(tudo bem|tudo bom|como est[aá]s?|como vai|how are you|how's it going|你好吗|最近好吗)[\s?!.？！。]*$",
    re.I,
)


def language_asked(text: str) -> str | None:
    """The reply language a message asks for ("can you answer in English?", "请用中文回复"), if any."""
    if not LANGUAGE_CHANGE.search(text):
        return None
    for lang, pattern in _LANG_WORDS:
        m = LANGUAGE_CHANGE.search(text)
        if m and pattern.search(m.group(0)):
            return lang
    return None
