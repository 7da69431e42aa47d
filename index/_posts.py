"""Opportunity posts ("we seek ..."), and matching them against organisations both ways.

A post is a need with a deadline: a technology offer seeks adopters or licensees, a technology
request seeks providers, a supplier search seeks suppliers, each on the side of the alliance it
names. Rather than a second way of ranking, posts reuse the engine twice:

- post → organisations: the post is read as an asker (``post_analysis``: its text, its sectors, the
  partner's role its type implies, the side sought) and searched for in the organisations' index
  with the same stages and judgement as any search;
- organisation → posts (and a user's search over posts): the open posts are records of a small
  generation of their own (``PostIndex``), on the author's side, calibrated with the organisations'
  language means so both live in one space; an organisation is the asker there, exactly as in
  ``SearchEngine.matches``.

Pure: no HTTP and no state store. The service keeps the posts (assistant/_posts.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
from typing import Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from corpus import Organisation, default_taxonomy, default_value_chain

from ._candidates import Filters, SearchResult
from ._config import SearchConfig
from ._needs import ALLIANCE, _complements
from ._query import QueryAnalysis, analyse_record

POST_TYPES = ("rd_partner", "tech_offer", "tech_request", "joint_venture", "distribution", "supplier")
PostType = Literal["rd_partner", "tech_offer", "tech_request", "joint_venture", "distribution", "supplier"]
ORGANISATIONS = "organisation"  # filters.type value for the directory's records
# The role of the partner each type of post seeks (the value chain's roles, corpus/data/value_chain.json):
# it decides which neighbouring sectors count (an adopter buys, a supplier sells).
SOUGHT_ROLES: dict[str, list[str]] = {
    "rd_partner": ["rnd"], "tech_offer": ["customer"], "tech_request": ["technology"],
    "joint_venture": ["jv"], "distribution": ["distributor"], "supplier": ["supplier"],
}
MUTUAL = 0.05  # added to a post found from both sides (the opportunity map ranks mutual pairs a little higher too)
REACH_DEPTH = 30  # organisations kept per post for the organisation -> posts direction
# What each type seeks, in the three languages: with the sectors' taxonomy labels, a post's short
# version in the languages it was not written in (``post_record``), so a reader of another language
# finds it by its trade (the organisations' records carry translations; a post has only its own words).
TYPE_WORDS = {
    "rd_partner": {"pt": "procura parceiro de I&D", "zh": "寻找研发合作伙伴", "en": "seeks an R&D partner"},
    "tech_offer": {"pt": "oferta de tecnologia", "zh": "技术供给，寻找技术采用方", "en": "technology offer, seeks adopters or licensees"},
    "tech_request": {"pt": "pedido de tecnologia", "zh": "技术需求，寻找技术提供方", "en": "technology request, seeks a provider"},
    "joint_venture": {"pt": "procura parceiro para joint venture", "zh": "寻找合资伙伴", "en": "seeks a joint venture partner"},
    "distribution": {"pt": "procura distribuidor ou agente", "zh": "寻找分销商或代理", "en": "seeks a distributor or agent"},
    "supplier": {"pt": "procura fornecedores", "zh": "寻找供应商", "en": "seeks suppliers"},
}
_POST_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


class Post(BaseModel):
    """One opportunity post as published (the eval data's posts.jsonl and the API share it)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str
    type: PostType
    lang: Literal["pt", "zh", "en"]
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4_000)
    sectors: list[str] = Field(default_factory=list, max_length=10)
    side_sought: Literal["PT", "CN"]
    closes: dt.date
    author: str | None = Field(default=None, max_length=200)

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _POST_ID.match(v):
            raise ValueError("must be a slug: lowercase letters, digits and '-', 1-100 characters")
        return v

    @field_validator("sectors")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        out = [t.strip() for t in v if t and t.strip()]
        if any(len(t) > 100 for t in out):
            raise ValueError("a sector is at most 100 characters")
        return out

    def is_open(self, today: dt.date | None = None) -> bool:
        """Open up to and including its closing date."""
        return self.closes >= (today or dt.date.today())

    @property
    def author_side(self) -> str:
        """The side the author is on: the other one of the alliance."""
        return next(c for c in ALLIANCE if c != self.side_sought)


def post_sectors(post: Post) -> list[str]:
    """Taxonomy sectors of the post's own words: each tag as a whole, else the sectors it names."""
    tax = default_taxonomy()
    out: dict[str, None] = {}
    for tag in post.sectors:
        slug = tax.link(tag)
        if slug:
            out[slug] = None
        else:
            out.update(dict.fromkeys(s for s, _ in tax.find(tag)))
    return list(out)


def post_record(post: Post, kind: str = "company") -> Organisation:
    """The post as a record of the posts' generation: on the author's side, its title as the
    name, what it offers or seeks as the record's own, its type and deadline kept as extra fields."""
    offer = post.type == "tech_offer"
    tax = default_taxonomy()
    slugs = post_sectors(post)
    i18n = {}
    for lang in ("pt", "zh", "en"):
        if lang != post.lang:
            labels = [tax.label(s, lang) for s in slugs] or post.sectors
            i18n[lang] = {"description": f"{TYPE_WORDS[post.type][lang]}: {', '.join(labels)}", "machine": ["description"]}
    return Organisation.model_validate({
        "id": post.id, "kind": kind, "name": post.title, "country": post.author_side, "lang": post.lang,
        "description": post.description, "sectors": post.sectors[:30],
        "offers": post.description[:2000] if offer else None, "seeks": None if offer else post.description[:2000],
        "post_type": post.type, "closes": post.closes.isoformat(), "side_sought": post.side_sought, "i18n": i18n,
    })


def post_analysis(post: Post, lang: str | None = None) -> QueryAnalysis:
    """The post as the asker, as ``analyse_record`` reads an organisation: what it says, its sectors
    and their value-chain neighbours for the role its type seeks, on the side it seeks."""
    rec = post_record(post)
    rec.description = f"{post.title}. {post.description}"
    rec.offers = rec.seeks = None
    rec.i18n = {}
    a = analyse_record(rec, lang)
    own = list(dict.fromkeys(post_sectors(post) + [s for s in a.needs.asker.sectors if s in default_taxonomy().sectors]))
    roles = SOUGHT_ROLES[post.type]
    needs = a.needs
    needs.asker.sectors = own
    needs.roles = list(dict.fromkeys(needs.roles + roles))
    needs.target_countries = [post.side_sought]
    needs.country_implied = False
    needs.complements = _complements(own, [], roles, default_value_chain())
    needs.peers = [s for s in own if s not in needs.seeking.sectors]
    a.countries = [post.side_sought]
    a.complements = [s for s in dict.fromkeys(needs.complement_sectors() + needs.peers) if s not in a.sector_slugs]
    return a


class PostIndex:
    """The open posts as a small index generation of their own, kept in step with the posts.

    ``sync`` re-encodes only new or changed posts (``Generation.sync``); expired posts leave it at
    the next sync, and every answer drops them again by date, so one never shows after its day."""

    def __init__(self, encoder, config: SearchConfig | None = None, calibration=None):
        self.encoder = encoder
        self.config = config or SearchConfig()
        self.calibration = calibration  # the organisations' (one space for both), None: fitted on the posts
        self.engine = None
        self.posts: dict[str, Post] = {}
        self._lock = threading.Lock()
        self._reach: dict[str, tuple] = {}  # post id -> (what it was worked out for, {organisation id: score})

    def sync(self, posts: Iterable[Post], today: dt.date | None = None) -> None:
        from ._engine import SearchEngine

        open_posts = {p.id: p for p in posts if p.is_open(today)}
        records = [post_record(p) for p in open_posts.values()]
        with self._lock:
            if not records:
                self.engine = None
            elif self.engine is None:
                self.engine = SearchEngine.build(records, self.encoder, self.config, query_samples=[],
                                                 calibration=self.calibration)
            else:
                self.engine.sync(records)
            self.posts = open_posts

    def _filters(self, types: Sequence[str] | None, exclude: Sequence[str] = (), today: dt.date | None = None) -> Filters:
        """Types not asked for and posts past their date, as excluded ids."""
        out = [pid for pid, p in self.posts.items()
               if (types and p.type not in types) or not p.is_open(today)]
        return Filters(exclude_ids=tuple(out) + tuple(exclude))

    def _open(self, result: SearchResult, today: dt.date | None) -> SearchResult:
        keep = lambda hits: [h for h in hits if h.record.id in self.posts and self.posts[h.record.id].is_open(today)]  # noqa: E731
        result.hits, result.nearest = keep(result.hits), keep(result.nearest)
        return result

    def search(self, query: str, types: Sequence[str] | None = None, limit: int = 10, today: dt.date | None = None,
               analysis: QueryAnalysis | None = None, **kw) -> SearchResult | None:
        """A user's search over the open posts (of ``types``); None when there are none. A search
        here is a browse of opportunities by topic: what the query is about counts, the asker's
        trade among it ("we make cork": posts about cork), and no side is required (each post says
        the side it seeks)."""
        engine = self.engine
        if engine is None:
            return None
        a = copy.copy(analysis or engine.analyse(query))
        own = [s for s in a.needs.asker.sectors if s not in a.sector_slugs]
        a.sectors = a.sectors + [(s, s) for s in own]
        a.countries = []
        filters = self._filters(types, today=today)
        if kw.get("query_vector") is None and kw.get("mode", "hybrid") != "bm25":  # encoded once for both searches below
            kw["query_vector"] = engine.encode_query(a.focus, a.lang, engine.config.calibrate)
        result = engine.search(query, filters, limit=limit, analysis=a, **kw)
        if a.sectors:  # a post about a sector the query names is an answer, however short its text
            kept = {h.record.id for h in result.hits}
            topical = [h for h in engine.search(query, filters, limit=limit, analysis=a, use_floor=False, **kw).hits
                       if h.sectors and h.record.id not in kept]
            if topical:
                result.hits = sorted(result.hits + topical, key=lambda h: -h.score)[:limit]
                result.total = len(result.hits)
        return self._open(result, today)

    def for_organisation(self, rec: Organisation, limit: int = 10, lang: str | None = None,
                         types: Sequence[str] | None = None, today: dt.date | None = None,
                         organisations=None) -> SearchResult | None:
        """Open posts an organisation should be shown. Asked from both sides, as the opportunity map
        pairs members: the organisation as the asker over the posts (its seeks, else what it does;
        its sectors and their value chain; the other side), and, given the ``organisations``'
        engine, every post that reaches it when the post is the asker (a cork maker says nothing
        of wanting buyers, the buyer's post finds it). A pair found both ways ranks a little higher.
        Its own posts are left out."""
        engine = self.engine
        if engine is None:
            return None
        a = analyse_record(rec, lang)
        own = [pid for pid, p in self.posts.items() if p.author == rec.id]
        filters = self._filters(types, own, today)
        result = engine.search(a.focus, filters, limit=max(limit, 50), analysis=a)
        if organisations is not None:
            gone = set(filters.exclude_ids)
            back = {pid: score for pid, score in ((pid, self.reaches(organisations, pid).get(rec.id)) for pid in self.posts)
                    if score is not None and pid not in gone}
            if back:
                direct = {h.record.id: h for h in result.hits}
                every = {h.record.id: h for h in engine.search(a.focus, filters, limit=len(self.posts), analysis=a,
                                                               use_floor=False).hits}
                scored = {pid: h.score for pid, h in direct.items()}
                for pid, score in back.items():
                    scored[pid] = max(scored.get(pid, 0.0), score) + (MUTUAL if pid in direct else 0.0)
                hits = []
                for pid in sorted(scored, key=lambda p: -scored[p]):
                    hit = direct.get(pid) or every.get(pid)
                    if hit is not None:
                        hit.score = scored[pid]
                        hits.append(hit)
                result.hits, result.total = hits, len(hits)
        result = self._open(result, today)
        result.hits = result.hits[:limit]
        return result

    def reaches(self, organisations, post_id: str) -> dict[str, float]:
        """Organisation id -> score, for the organisations one post reaches (``organisations_for``),
        kept per post until the organisations' index or the post changes."""
        post = self.posts[post_id]
        key = (id(organisations), getattr(organisations, "generation", None), post)
        held = self._reach.get(post_id)
        if held is None or held[0] != key:
            found = organisations_for(organisations, post, REACH_DEPTH)
            held = (key, {h.record.id: h.score for h in found.hits})
            self._reach[post_id] = held
        return held[1]


def organisations_for(engine, post: Post, limit: int = 10, lang: str | None = None) -> SearchResult:
    """Organisations a post should reach, judged as any search is; its author left out."""
    a = post_analysis(post, lang)
    exclude = (post.author,) if post.author else ()
    return engine.search(a.focus, Filters(exclude_ids=exclude), limit=limit, analysis=a)
