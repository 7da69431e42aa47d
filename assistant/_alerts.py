"""Alerts: "tell me when something new fits" kept as a subscription and answered after each ingest.

A subscription keeps the understood need (the query, its hard filters, the engine's analysis and the
query vector) and where to say it: a web conversation, a Telegram chat, a WeChat openid or an
e-mail address. After an ingest, :func:`match_new` runs every subscription against the new records
with the search's own judgement (the calibrated judgement over the complete ranking, computed in
numpy for each distinct need: ``index._standing``) and writes pending notices, in a process of its
own (``_alerts_worker``); only then
does :func:`deliver` send them, at most one digest a day per subscription, once across workers (a
claim in the state store), each (subscription, record) once. A notice is marked sent only after the
channel accepted it, so a failed send is retried on the next run and a crash before the send loses
nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence

import numpy as np

from index import Filters, SearchEngine, analyse

from ._exemplars import Exemplars, nearest
from ._state import StateStore

log = logging.getLogger("cpc.alerts")

DAY = 86400.0
LOCK = "alerts:delivery"  # the shortlived key a delivering worker holds
# The delivering worker's lease, renewed before each digest: one digest's send is bounded by the
# channels' timeouts, so a worker killed mid-delivery blocks the others for at most this long.
LOCK_TTL = 120.0
WECHAT_WINDOW = 48 * 3600  # customer-service messages only within 48 hours of the user's last message
CHANNELS = ("web", "telegram", "wechat", "email")
PHRASES_FILE = Path(__file__).parent / "data" / "alert_phrases.json"
DIGEST_MAX = 10  # names listed in one digest; the rest are counted

TEXTS = {
    "pt": {"head": "Há novidades para o seu alerta «{query}»:", "more": "… e mais {n}.",
           "stop": "Para deixar de receber: escreva «parar alertas».", "unsubscribe": "Cancelar este alerta: {url}",
           "subject": "CPC Alliance: novidades para «{query}»", "subscribed": "Combinado: aviso-o quando entrar algo novo que corresponda a «{query}» (no máximo uma mensagem por dia). Para parar, escreva «parar alertas».",
           "stopped": "Alertas cancelados ({n}). Não receberá mais avisos.", "none": "Não tem alertas ativos.",
           "no_query": "Primeiro diga-me o que procura; depois posso avisá-lo quando entrar algo novo.",
           "button": "Avisar-me de novos", "unsubscribed_page": "Alerta cancelado. Não receberá mais avisos sobre «{query}».",
           "bad_link": "Ligação inválida ou expirada."},
    "zh": {"head": "您的提醒「{query}」有新的匹配：", "more": "……另有 {n} 家。", "stop": "回复“停止提醒”即可取消。",
           "unsubscribe": "取消此提醒：{url}", "subject": "CPC联盟：「{query}」有新的匹配",
           "subscribed": "好的：有新的机构符合「{query}」时我会通知您（每天最多一条）。回复“停止提醒”即可取消。",
           "stopped": "已取消提醒（{n} 条），您将不再收到通知。", "none": "您没有正在进行的提醒。",
           "no_query": "请先告诉我您在找什么，之后有新的匹配时我可以通知您。", "button": "有新的通知我",
           "unsubscribed_page": "提醒已取消，您将不再收到关于「{query}」的通知。", "bad_link": "链接无效或已过期。"},
    "en": {"head": "New matches for your alert “{query}”:", "more": "… and {n} more.", "stop": "To stop: write “stop alerts”.",
           "unsubscribe": "Unsubscribe from this alert: {url}", "subject": "CPC Alliance: new matches for “{query}”",
           "subscribed": "Done: I will tell you when something new fits “{query}” (at most one message a day). To stop, write “stop alerts”.",
           "stopped": "Alerts cancelled ({n}). You will get no more notices.", "none": "You have no active alerts.",
           "no_query": "Tell me first what you are looking for; then I can tell you when something new fits.",
           "button": "Tell me when new ones fit", "unsubscribed_page": "Alert cancelled. You will get no more notices about “{query}”.",
           "bad_link": "Invalid or expired link."},
}


def say(key: str, lang: str | None, **values: Any) -> str:
    return TEXTS.get(lang or "en", TEXTS["en"])[key].format(**values)


# -- subscriptions ------------------------------------------------------------------------------
def filters_json(filters: Filters | None) -> dict[str, list[str]]:
    return {k: list(v) for k, v in asdict(filters or Filters()).items() if v}


def filters_of(data: dict[str, Any]) -> Filters:
    names = {f.name for f in fields(Filters)}
    return Filters(**{k: tuple(v) for k, v in (data or {}).items() if k in names})


def understand(engine: SearchEngine, query: str, lang: str | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """What the engine understood of ``query`` (kept with the subscription) and its query vector."""
    return understand_many(engine, [(query, lang)])[0]


def understand_many(engine: SearchEngine, queries: Sequence[tuple[str, str | None]],
                    batch: int = 64) -> list[tuple[dict[str, Any], np.ndarray]]:
    """``understand`` for many queries, the encoder called once per ``batch`` (bench/alerts.py, imports)."""
    from index import cap_text
    from index import StandingNeed as Need, vocabulary_of

    vocabulary = vocabulary_of(engine._columns)  # as the engine's own search analyses a query
    analyses = [analyse(q, lang=lang, extra_places=engine.record_places, vocabulary=vocabulary) for q, lang in queries]
    texts = [cap_text(a.focus, engine.config.encode_chars_max)[0] for a in analyses]
    vectors = np.concatenate([np.asarray(engine.encoder.encode(texts[i:i + batch], "query"), np.float32)
                              for i in range(0, len(texts), batch)]) if texts else np.zeros((0, 0), np.float32)
    out = []
    for a, v in zip(analyses, vectors):
        if engine.config.calibrate:
            v = np.asarray(engine.calibration.apply_query(v, a.lang), np.float32)
        kept = {"lang": a.lang, "focus": a.focus, "sectors": a.sector_slugs, "complements": list(a.complements),
                "countries": list(a.countries), "places": bool(a.places), "needs": a.understood(),
                "judged": Need.judged(a)}  # what matching reads of the analysis: no query is analysed again per ingest
        out.append((kept, v))
    return out


def subscribe(store: StateStore, engine: SearchEngine, channel: str, address: str, query: str,
              filters: Filters | None = None, lang: str | None = None, email: str | None = None,
              base_url: str | None = None) -> int:
    """A new subscription for ``query``; its id. ``address``: the web or chat session id, or the e-mail."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}")
    query = query.strip()
    if not query:
        raise ValueError("the query is empty")
    kept, qv = understand(engine, query, lang)
    return store.add_alert(channel, address, lang or kept["lang"], query, filters_json(filters), kept,
                           qv.tobytes(), email, base_url)


# -- matching -----------------------------------------------------------------------------------
@dataclass
class MatchStats:
    subscriptions: int = 0
    records: int = 0
    candidates: int = 0  # (distinct need, new record) pairs judged
    verified: int = 0  # subscriptions that got at least one match
    searches: int = 0  # distinct needs judged: subscriptions with the same query, language and filters are one
    notices: int = 0  # new pending notices written
    seconds: float = 0.0


def need_key(sub: dict[str, Any]) -> tuple[str, str, str]:
    """Subscriptions that keep the same query, language and hard filters get the same answer."""
    return sub["query"], sub["understood"]["lang"], json.dumps(sub["filters"], sort_keys=True, ensure_ascii=False)


def match_new(engine: SearchEngine, store: StateStore, ids: Iterable[str], now: float | None = None,
              subscriptions: list[tuple[dict[str, Any], bytes | None]] | None = None,
              matched: int | None = None) -> MatchStats:
    """Pending notices for the records ``ids`` (new or changed): exactly the ones among them each
    subscription's search now returns as matches, judged as search judges (``index._standing``:
    the complete ranking, the calibrated judgement, matches only, never the "less close" fill).
    Each distinct need is judged once for all its subscribers; the notices are written in one
    transaction, pairs already known skipped, with the "to match" markers up to ``matched`` removed."""
    from index import StandingNeed as Need, matches_among, vocabulary_of

    t0 = time.perf_counter()
    stats = MatchStats()
    subs = store.alert_vectors() if subscriptions is None else subscriptions
    vids_of = engine.vids
    new = [rid for rid in dict.fromkeys(ids) if rid in vids_of and vids_of[rid]]
    stats.subscriptions, stats.records = len(subs), len(new)
    if not subs or not new:
        if matched is not None:
            store.add_notices([], now, matched=matched)
        return stats
    row_of = engine._columns.row_of
    rows = [row_of[rid] for rid in new]
    dim = _store_dim(engine)
    groups: dict[tuple[str, str, str], list[int]] = {}
    vectors: dict[tuple[str, str, str], bytes | None] = {}
    for i, (sub, vector) in enumerate(subs):
        key = need_key(sub)
        groups.setdefault(key, []).append(i)
        vectors.setdefault(key, vector)
    vocabulary = vocabulary_of(engine._columns)
    needs = []
    for key in groups:
        query, lang, _ = key
        sub = subs[groups[key][0]][0]
        vector, filters = _vector(vectors[key], dim), filters_of(sub["filters"])
        try:  # the understanding kept with the subscription
            needs.append(Need(query, vector, filters, **sub["understood"]["judged"]))
        except (KeyError, TypeError):  # kept before it was (or in another shape): understood now
            a = analyse(query, lang=lang, extra_places=engine.record_places, vocabulary=vocabulary)
            needs.append(Need.from_analysis(query, a, vector, filters))
    stats.searches = len(needs)
    stats.candidates = len(needs) * len(rows)
    found = matches_among(engine, needs, rows)
    ids_of = engine._columns.ids
    names: dict[tuple[str, str], str] = {}
    out: list[tuple[int, str, str]] = []
    for key, hits in zip(groups, found):
        if not hits:
            continue
        for i in groups[key]:
            sub = subs[i][0]
            stats.verified += 1
            for row in hits:
                rid = ids_of[row]
                name = names.get((rid, sub["lang"]))
                if name is None:
                    name = names[(rid, sub["lang"])] = engine.records[rid].name_in(sub["lang"])
                out.append((sub["id"], rid, name))
    stats.notices = store.add_notices(out, now, matched=matched)
    stats.seconds = time.perf_counter() - t0
    return stats


def _vector(raw: bytes | None, dim: int) -> np.ndarray:
    """A stored query vector; zeros when it is missing or of another size (the text still matches by keywords)."""
    if raw is not None and len(raw) == dim * 4:
        return np.frombuffer(raw, np.float32)
    return np.zeros(dim, np.float32)


def _store_dim(engine: SearchEngine) -> int:
    store = engine.cal if engine.config.calibrate else engine.raw
    return int(getattr(store, "dim"))


# -- delivery -----------------------------------------------------------------------------------
class NotYet(Exception):
    """The channel cannot take the notice now (e.g. WeChat's window closed): kept pending, not a failure."""


Sender = Callable[[dict[str, Any], str, list[dict[str, Any]]], Awaitable[None]]


def digest(sub: dict[str, Any], notices: list[dict[str, Any]], unsubscribe_url: str | None = None) -> str:
    lang = sub["lang"]
    lines = [say("head", lang, query=sub["query"])]
    lines += [f"• {n['record_name']}" for n in notices[:DIGEST_MAX]]
    if len(notices) > DIGEST_MAX:
        lines.append(say("more", lang, n=len(notices) - DIGEST_MAX))
    lines.append(say("unsubscribe", lang, url=unsubscribe_url) if unsubscribe_url else say("stop", lang))
    return "\n".join(lines)


@dataclass
class DeliveryStats:
    ran: bool = False  # False: another worker held the lock
    digests: int = 0
    notices: int = 0
    failed: int = 0
    waiting: int = 0  # kept for later (channel not available now)


async def deliver(store: StateStore, senders: dict[str, Sender], now: float | None = None, every: float = DAY,
                  lock_ttl: float = LOCK_TTL) -> DeliveryStats:
    """Send every due digest once. One worker at a time (a claim in the state store); a notice is
    marked sent in the same transaction as the digest time, after its channel accepted it."""
    stats = DeliveryStats()
    if not await asyncio.to_thread(store.claim, LOCK, lock_ttl):
        return stats
    stats.ran = True
    try:
        due = await asyncio.to_thread(store.due_notices, now, every)
        for sub, notices in due:
            sender = senders.get(sub["channel"])
            if sender is None:  # no such channel on this server: nothing to send, no lease to renew
                stats.waiting += 1
                continue
            await asyncio.to_thread(store.put, LOCK, True, lock_ttl)  # still alive: renew the lease
            try:
                await sender(sub, digest(sub, notices), notices)
            except NotYet:
                stats.waiting += 1
                continue
            except Exception as exc:  # the platform refused or was down: retried on the next run
                log.warning("alert %s on %s not delivered: %s", sub["id"], sub["channel"], type(exc).__name__)
                stats.failed += 1
                continue
            stats.notices += await asyncio.to_thread(store.mark_sent, sub["id"], [n["record_id"] for n in notices],
                                                     time.time() if now is None else now)
            stats.digests += 1
    finally:
        await asyncio.to_thread(store.pop, LOCK)
    return stats


# -- unsubscribe tokens -------------------------------------------------------------------------
def token(key: bytes, alert_id: int) -> str:
    mac = hmac.new(key, f"alert:{alert_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{alert_id}.{mac}"


def token_id(key: bytes, value: str) -> int | None:
    """The subscription a token was signed for, or None for a forged or malformed one."""
    head, _, _ = value.partition(".")
    if not head.isdigit() or len(head) > 18:
        return None
    return int(head) if hmac.compare_digest(token(key, int(head)), value) else None


def alert_email(settings: Any, sub: dict[str, Any], text: str, unsubscribe_url: str) -> EmailMessage:
    """A digest by e-mail, with a one-click unsubscribe (RFC 8058 headers and a link in the text)."""
    msg = EmailMessage()
    msg["From"] = formataddr(("CPC Alliance", settings.smtp_from))
    msg["To"] = sub["email"] or sub["address"]
    msg["Subject"] = say("subject", sub["lang"], query=sub["query"][:80])
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text + "\n")
    return msg


# -- the dialogue hook --------------------------------------------------------------------------
@dataclass
class Turn:
    """What :func:`handle_text` needs of a turn: the assistant (its store and engine), the session's
    state, the session id and the channel."""

    assistant: Any
    state: Any
    session_id: str
    channel: str


class PhraseClassifier:
    """"Tell me when new ones fit" / "stop alerts" by meaning: the nearest of embedded exemplars in
    three languages (``data/alert_phrases.json``, read by ``_exemplars.Exemplars``), with searches and
    other requests as counter-examples, so "alert me about moulds" and "moulds" are told apart without
    a phrase list."""

    def __init__(self, encoder, path: Path = PHRASES_FILE, labels: Sequence[str] = ("subscribe", "stop")):
        data = json.loads(path.read_text(encoding="utf-8"))
        self.threshold = float(data["threshold"])
        self.k, self.margin = int(data["k"]), float(data["margin"])
        self.max_chars = int(data["max_chars"])
        self.names = (*labels, "other")
        self.encoder = encoder
        self.exemplars = Exemplars(encoder, [(label, text) for label in self.names for text in data[label]], k=self.k)
        self.buttons = {TEXTS[lang]["button"].casefold(): "subscribe" for lang in TEXTS} if "subscribe" in labels else {}

    def classify(self, text: str) -> tuple[str, float]:
        """A label when its nearest examples are close enough and ahead of the counter-examples by
        the margin; else "other"."""
        stripped = text.strip()
        if stripped.casefold() in self.buttons:
            return self.buttons[stripped.casefold()], 1.0
        if not stripped or len(stripped) > self.max_chars:
            return "other", 0.0
        label, score = nearest(self.exemplars.scores(stripped), self.threshold, self.margin, rivals=("other",))
        return (label, score) if label not in (None, "other") else ("other", score)


_classifiers: dict[int, PhraseClassifier] = {}


def classifier(encoder) -> PhraseClassifier:
    found = _classifiers.get(id(encoder))
    if found is None:
        found = _classifiers[id(encoder)] = PhraseClassifier(encoder)
    return found


def handle_text(turn: Turn, text: str, lang: str):
    """The reply to "tell me when new ones fit" or "stop alerts" (a dialogue Reply), or None when the
    message is neither. Subscribing keeps the conversation's current search and filters."""
    from .dialogue import Reply  # the dialogue imports this module

    assistant = turn.assistant
    engine, store = assistant.engine, assistant.store
    label, _ = classifier(engine.encoder).classify(text)
    if label == "other":
        return None
    if label == "stop":
        n = store.stop_alerts(turn.channel, turn.session_id)
        return Reply(say("stopped", lang, n=n) if n else say("none", lang), lang, "alerts_stopped")
    state = turn.state
    if not state.query:
        return Reply(say("no_query", lang), lang, "alerts_subscribe")
    filters = assistant._filters(state)
    subscribe(store, engine, turn.channel, turn.session_id, state.query, filters, lang=lang)
    return Reply(say("subscribed", lang, query=state.query), lang, "alerts_subscribe")
