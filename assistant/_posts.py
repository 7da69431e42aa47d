"""Opportunity posts in the service: publishing, staff approval, search, matching, and the chat dialogue.

Staff publish at once; members' posts wait for staff (approve, or reject with a reason the member
is told in their language). Published posts live in the state store (``_posts_store``) and, while
open, in a small index of their own (``index.PostIndex``) that is brought in step with the store
before it is read (the posts' version is one cheap query), so every worker sees a post as soon as
it is approved and none shows one after its closing date. Matching both ways and the search over
posts are the engine's own (``index/_posts.py``, docs/opportunity-posts.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import threading
from typing import Any, Callable

from pydantic import ValidationError

from corpus import default_lexicon, fold
from index import ORGANISATIONS, POST_TYPES, Post, PostIndex, SearchResult, organisations_for

from ._messages import as_written
from ._posts_store import EDITABLE
from ._present import hit_view, snippet

log = logging.getLogger("cpc.posts")

TEXTS: dict[str, dict[str, str]] = {
    "pt": {
        "rd_partner": "Procura de parceiro de I&D", "tech_offer": "Oferta de tecnologia", "tech_request": "Pedido de tecnologia",
        "joint_venture": "Joint venture", "distribution": "Distribuição ou agência", "supplier": "Procura de fornecedor",
        "closes": "prazo: {date}", "side_PT": "procura em Portugal", "side_CN": "procura na China",
        "posts_head": "Oportunidades publicadas que se ajustam:",
        "ask_type": "Vamos publicar uma oportunidade. Que tipo? Responda com o número:\n{options}\n(escreva “cancelar” para desistir)",
        "ask_title": "Um título curto para a oportunidade:", "ask_description": "Descreva o que oferece ou procura (na sua língua):",
        "ask_sectors": "Setores, nas suas palavras, separados por vírgulas:",
        "ask_side": "Procura parceiros em Portugal ou na China?", "ask_closes": "Até que data fica aberta? (AAAA-MM-DD)",
        "bad_type": "Não percebi o tipo: responda com um número de 1 a 6.", "bad_side": "Responda “Portugal” ou “China”.",
        "bad_date": "Indique uma data futura, até dois anos, como 2026-06-30.", "too_long": "Demasiado longo: no máximo {n} caracteres.",
        "submitted": "Obrigado! A sua oportunidade “{title}” foi recebida e será publicada depois de revista pela equipa. Avisamos aqui.",
        "published": "Publicada: “{title}”.", "cancelled": "Publicação cancelada.",
        "approved": "A sua oportunidade “{title}” foi aprovada e está publicada até {date}.",
        "rejected": "A sua oportunidade “{title}” não foi publicada. Motivo: {reason}",
        "none": "Não publicou nenhuma oportunidade.",
        "pending": "em revisão", "status_published": "publicada", "status_rejected": "não publicada", "withdrawn": "retirada",
        "expired": "encerrada",
    },
    "zh": {
        "rd_partner": "研发合作伙伴征集", "tech_offer": "技术供给", "tech_request": "技术需求", "joint_venture": "合资合作",
        "distribution": "分销或代理", "supplier": "寻找供应商", "closes": "截止日期：{date}", "side_PT": "寻找葡萄牙伙伴",
        "side_CN": "寻找中国伙伴", "posts_head": "符合条件的合作机会：",
        "ask_type": "我们来发布一条合作机会。请选择类型（回复序号）：\n{options}\n（回复“取消”可放弃）",
        "ask_title": "请给这条机会起一个简短的标题：", "ask_description": "请描述您提供或寻找的内容：",
        "ask_sectors": "所属行业（用您自己的话，逗号分隔）：", "ask_side": "您想在葡萄牙还是中国寻找合作伙伴？",
        "ask_closes": "截止日期是哪天？（格式：2026-06-30）", "bad_type": "没有看懂类型，请回复 1 到 6 的序号。",
        "bad_side": "请回复“葡萄牙”或“中国”。", "bad_date": "请给出两年内的未来日期，例如 2026-06-30。",
        "too_long": "内容太长：最多 {n} 个字符。",
        "submitted": "谢谢！您的合作机会“{title}”已收到，工作人员审核后即发布，结果会在这里通知您。",
        "published": "已发布：“{title}”。", "cancelled": "已取消发布。",
        "approved": "您的合作机会“{title}”已审核通过并发布，截止日期 {date}。",
        "rejected": "您的合作机会“{title}”未能发布。原因：{reason}", "none": "您还没有发布合作机会。",
        "pending": "审核中", "status_published": "已发布", "status_rejected": "未发布", "withdrawn": "已撤回", "expired": "已截止",
    },
    "en": {
        "rd_partner": "R&D partner search", "tech_offer": "Technology offer", "tech_request": "Technology request",
        "joint_venture": "Joint venture", "distribution": "Distribution or agency", "supplier": "Supplier search",
        "closes": "closes {date}", "side_PT": "seeks partners in Portugal", "side_CN": "seeks partners in China",
        "posts_head": "Published opportunities that fit:",
        "ask_type": "Let's publish an opportunity. Which type? Reply with the number:\n{options}\n(write “cancel” to stop)",
        "ask_title": "A short title for the opportunity:", "ask_description": "Describe what you offer or seek (in your language):",
        "ask_sectors": "Sectors, in your own words, separated by commas:", "ask_side": "Do you seek partners in Portugal or in China?",
        "ask_closes": "Until which date is it open? (YYYY-MM-DD)", "bad_type": "I did not get the type: reply with a number from 1 to 6.",
        "bad_side": "Reply “Portugal” or “China”.", "bad_date": "Give a future date within two years, such as 2026-06-30.",
        "too_long": "Too long: at most {n} characters.",
        "submitted": "Thank you! Your opportunity “{title}” was received and will be published once staff have reviewed it. We will tell you here.",
        "published": "Published: “{title}”.", "cancelled": "Publishing cancelled.",
        "approved": "Your opportunity “{title}” was approved and is published until {date}.",
        "rejected": "Your opportunity “{title}” was not published. Reason: {reason}", "none": "You have published no opportunity.",
        "pending": "under review", "status_published": "published", "status_rejected": "not published", "withdrawn": "withdrawn",
        "expired": "closed",
    },
}
CANCEL = re.compile(r"^\s*(cancel(ar)?|stop|parar|desistir|取消|算了)\s*[.!。！]?\s*$", re.I)
MAX_DAYS = 731  # a closing date at most two years ahead
POSTS_IN_CHAT = 3  # posts shown after a chat's organisations


def say(key: str, lang: str | None, **values: Any) -> str:
    return TEXTS.get(lang or "en", TEXTS["en"])[key].format(**values)


def type_label(post_type: str, lang: str) -> str:
    return say(post_type, lang)


def new_id() -> str:
    return f"post-{secrets.token_hex(5)}"


def check_closes(closes: dt.date, today: dt.date | None = None) -> str | None:
    """Why a closing date is refused, or None."""
    today = today or dt.date.today()
    if closes < today:
        return "closes: the closing date is in the past"
    if (closes - today).days > MAX_DAYS:
        return f"closes: at most {MAX_DAYS} days ahead"
    return None


def post_of(row: dict[str, Any]) -> Post:
    return Post.model_validate({**row, "closes": dt.date.fromisoformat(row["closes"])})


# -- the desk: store, index, approval ---------------------------------------------------------
class PostDesk:
    """The service's posts: the state store's rows and the index of the open ones, kept in step."""

    def __init__(self, store, engine: Callable[[], Any]):
        self.store = store
        self._engine = engine  # the organisations' engine now (it is swapped on every ingest)
        self._index: PostIndex | None = None
        self._seen: tuple | None = None
        self._lock = threading.Lock()

    @property
    def engine(self):
        return self._engine()

    def index(self, today: dt.date | None = None) -> PostIndex:
        """The open posts' index, synced when a post changed or the day turned. It takes the
        organisations' calibration when it is made and keeps it across their later generations (an
        ingest moves the language means very little; re-encoding every post after each would cost
        more than it gains); a new encoder model makes it anew."""
        today = today or dt.date.today()
        engine = self.engine
        version = (self.store.posts_version(), today)
        with self._lock:
            if self._index is None or self._index.encoder.model_id != engine.encoder.model_id:
                self._index = PostIndex(engine.encoder, engine.config, engine.calibration)
                self._seen = None
            if self._seen != version:
                self._index.sync([post_of(r) for r in self.store.posts(status="published", limit=100_000)], today)
                self._seen = version
            return self._index

    def warm(self) -> None:
        """Build the posts' index at start-up (a failure is logged; the first read tries again)."""
        try:
            self.index()
        except Exception:  # noqa: BLE001 - the state store may not answer yet
            log.exception("the open posts could not be indexed at start-up")

    def submit(self, data: dict[str, Any], channel: str, address: str, staff: bool = False,
               reviewer: str | None = None) -> dict[str, Any]:
        """Validate and store a post: published at once by staff, pending from a member. Raises
        ValueError (with the field) on bad input, before anything is written."""
        post = Post.model_validate({**data, "id": data.get("id") or new_id()})
        problem = check_closes(post.closes)
        if problem:
            raise ValueError(problem)
        row = self.store.add_post(post.model_dump(mode="json"), "published" if staff else "pending", channel, address)
        if staff and reviewer:
            row = self.store.set_post_status(row["id"], "published", reason=None, reviewer=reviewer) or row
        return row

    def review(self, post_id: str, approve: bool, reason: str | None, reviewer: str,
               corrections: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Approve (after staff's ``corrections``, if any) or reject a pending post; None when there is
        no pending post of that id. Corrections are validated as a new post is (ValueError naming the
        field, before anything is written) and stored with the approval in one statement."""
        fields = self.corrected(post_id, corrections) if approve and corrections else None
        return self.store.set_post_status(post_id, "published" if approve else "rejected", expect="pending",
                                          reason=None if approve else reason, reviewer=reviewer, fields=fields)

    def corrected(self, post_id: str, corrections: dict[str, Any]) -> dict[str, Any] | None:
        """The editable fields of a pending post with staff's corrections applied and validated."""
        row = self.store.post(post_id)
        if row is None:
            return None
        unknown = set(corrections) - set(EDITABLE)
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: not a field of a post staff may correct")
        post = Post.model_validate({**row, **corrections, "closes": corrections.get("closes", row["closes"])})
        problem = check_closes(post.closes)
        if problem and "closes" in corrections:
            raise ValueError(problem)
        data = post.model_dump(mode="json")
        return {name: data[name] for name in EDITABLE}

    def verdict(self, row: dict[str, Any]) -> str:
        """What the author is told of the review, in their language (a reason staff wrote in another
        language is marked as the original)."""
        if row["status"] == "published":
            return say("approved", row["lang"], title=row["title"], date=row["closes"])
        return say("rejected", row["lang"], title=row["title"], reason=as_written(row.get("reason") or "-", row["lang"]))

    # -- reading ---------------------------------------------------------------------------------
    def search(self, query: str, types: list[str] | None, limit: int, **kw) -> SearchResult | None:
        return self.index().search(query, types, limit, **kw)

    def for_organisation(self, org_id: str, limit: int = 10, lang: str | None = None,
                         types: list[str] | None = None) -> SearchResult | None:
        engine = self.engine
        return self.index().for_organisation(engine.records[org_id], limit, lang, types, organisations=engine)

    def organisations(self, post: Post, limit: int = 10, lang: str | None = None) -> SearchResult:
        return organisations_for(self.engine, post, limit, lang)


def post_view(hit, lang: str, analysis=None, post: Post | None = None) -> dict:
    """A post as a search result: the organisation result's fields, and its type and deadline labelled."""
    view = hit_view(hit, lang, analysis)
    rec = hit.record
    extra = rec.extra_fields()
    post_type, closes = extra.get("post_type", ""), extra.get("closes", "")
    view.update({
        "kind": "post", "type": post_type, "type_label": type_label(post_type, lang) if post_type in POST_TYPES else post_type,
        "closes": closes, "closes_label": say("closes", lang, date=closes), "side_sought": extra.get("side_sought"),
        "snippet": snippet(rec.description), "snippet_lang": rec.lang or "en",
    })
    return view


def post_line(hit, lang: str) -> str:
    """One line of a chat reply: [type] title — deadline."""
    extra = hit.record.extra_fields()
    return f"• [{type_label(extra.get('post_type', ''), lang)}] {hit.record.name} — {say('closes', lang, date=extra.get('closes', ''))}"


def wanted_types(types: list[str] | None) -> tuple[bool, list[str] | None]:
    """(organisations wanted, post types wanted or None for none) from ``filters.type``; no type:
    organisations only, as before posts existed."""
    if not types:
        return True, None
    posts = [t for t in types if t in POST_TYPES]
    if "post" in types:
        posts = list(POST_TYPES)
    return ORGANISATIONS in types, posts or None


def posts_of(state, identity: str) -> list[dict[str, Any]]:
    """"My requests": the posts one channel identity published, newest first, with their status
    (an open post past its date reads "expired")."""
    today = dt.date.today().isoformat()
    out = []
    for row in state.posts(address=identity):
        status = row["status"]
        if status == "published" and row["closes"] < today:
            status = "expired"
        out.append({"id": row["id"], "type": row["type"], "title": row["title"], "closes": row["closes"],
                    "status": status, "reason": row.get("reason"), "lang": row["lang"]})
    return out


def status_label(status: str, lang: str) -> str:
    key = {"published": "status_published", "rejected": "status_rejected"}.get(status, status)
    return say(key, lang)


# -- the chat dialogue ------------------------------------------------------------------------------
STEPS = ("type", "title", "description", "sectors", "side", "closes")
LIMITS = {"title": 200, "description": 4000}


def _type_of(text: str) -> str | None:
    m = re.fullmatch(r"\s*([1-6])\s*[.)]?\s*", text)
    if m:
        return POST_TYPES[int(m.group(1)) - 1]
    folded = fold(text)
    for t in POST_TYPES:
        if any(fold(TEXTS[lang][t]) in folded or folded in fold(TEXTS[lang][t]) for lang in TEXTS) and len(folded) >= 2:
            return t
    return None


def _side_of(text: str) -> str | None:
    found = [c for c in default_lexicon().countries(text) if c in ("PT", "CN")]
    if len(found) == 1:
        return found[0]
    t = fold(text).strip()
    return {"pt": "PT", "cn": "CN"}.get(t)


def _date_of(text: str) -> dt.date | None:
    t = text.strip()
    for pattern, order in ((r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", "ymd"), (r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", "dmy")):
        m = re.search(pattern, t)
        if m:
            a, b, c = (int(x) for x in m.groups())
            y, mo, d = (a, b, c) if order == "ymd" else (c, b, a)
            try:
                return dt.date(y, mo, d)
            except ValueError:
                return None
    return None


def _options(lang: str) -> str:
    return "\n".join(f"{i}. {type_label(t, lang)}" for i, t in enumerate(POST_TYPES, 1))


def form(lang: str) -> dict:
    """The web chat shows the same questions as one form (POST /api/v1/posts)."""
    return {"kind": "post", "action": "/api/v1/posts", "fields": [
        {"name": "type", "options": [{"value": t, "label": type_label(t, lang)} for t in POST_TYPES]},
        {"name": "title", "label": say("ask_title", lang)}, {"name": "description", "label": say("ask_description", lang)},
        {"name": "sectors", "label": say("ask_sectors", lang)},
        {"name": "side_sought", "options": [{"value": s, "label": say(f"side_{s}", lang)} for s in ("PT", "CN")]},
        {"name": "closes", "label": say("ask_closes", lang), "type": "date"}]}


def start(state, lang: str) -> tuple[str, list[str]]:
    """The publishing dialogue begins: the draft lives in the session until it is sent or cancelled."""
    state.post_draft = {"step": "type", "lang": lang}
    return say("ask_type", lang, options=_options(lang)), [type_label(t, lang) for t in POST_TYPES]


def active(state) -> bool:
    return bool(getattr(state, "post_draft", None))


def handle(desk: PostDesk, state, text: str, channel: str, sid: str) -> tuple[str, list[str], str]:
    """One answer in the dialogue: (reply, suggestions, step). The post is submitted after the last."""
    draft = state.post_draft
    lang = draft["lang"]
    if CANCEL.match(text):
        state.post_draft = None
        return say("cancelled", lang), [], "post_cancelled"
    step = draft["step"]
    value: Any = text.strip()
    if step == "type":
        value = _type_of(text)
        if value is None:
            return say("bad_type", lang) + "\n" + _options(lang), [type_label(t, lang) for t in POST_TYPES], "post_type"
    elif step in LIMITS and len(value) > LIMITS[step]:
        return say("too_long", lang, n=LIMITS[step]), [], f"post_{step}"
    elif step in LIMITS and not value:
        return say(f"ask_{step}", lang), [], f"post_{step}"
    elif step == "sectors":
        value = [s.strip() for s in re.split(r"[,，;；、]", text) if s.strip()][:10]
        value = [s[:100] for s in value]
    elif step == "side":
        value = _side_of(text)
        if value is None:
            return say("bad_side", lang), [say("side_PT", lang), say("side_CN", lang)], "post_side"
    elif step == "closes":
        value = _date_of(text)
        if value is None or check_closes(value):
            return say("bad_date", lang), [], "post_closes"
        value = value.isoformat()
    draft[step] = value
    following = STEPS[STEPS.index(step) + 1] if step != STEPS[-1] else None
    if following is not None:
        draft["step"] = following
        chips = ["Portugal", "China" if lang != "zh" else "中国"] if following == "side" else []
        return say(f"ask_{following}", lang), chips, f"post_{following}"
    state.post_draft = None
    data = {k: draft[k] for k in ("type", "title", "description", "sectors", "closes")}
    data.update(side_sought=draft["side"], lang=lang)
    try:
        row = desk.submit(data, channel, sid)
    except (ValidationError, ValueError):
        return say("bad_date", lang), [], "post_failed"
    return say("submitted", lang, title=row["title"]), [], "post_submitted"


# -- "my requests": the author's posts as one of its sections -------------------------------------
def _post_items(state, channel: str, session_id: str, lang: str) -> list[dict[str, Any]]:
    if not hasattr(state, "posts"):
        return []
    out = []
    for post in posts_of(state, session_id):
        label, status = type_label(post["type"], lang), status_label(post["status"], lang)
        reason = f" — {as_written(post['reason'], lang)}" if post["status"] == "rejected" and post.get("reason") else ""
        text = {"pt": f"{label} «{post['title']}» (até {post['closes']}): {status}{reason}",
                "zh": f"{label}「{post['title']}」（截止 {post['closes']}）：{status}{reason}"}.get(
            lang, f"{label} “{post['title']}” (until {post['closes']}): {status}{reason}")
        out.append({**post, "text": text})
    return out


def _register_my_requests_section() -> None:
    from ._my_requests import register_section

    register_section("posts", _post_items, {"pt": "As suas oportunidades publicadas:", "zh": "您发布的合作机会：",
                                            "en": "Your opportunity posts:"})


_register_my_requests_section()
