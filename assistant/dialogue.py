"""The conversational core: ``Assistant.respond(session_id, text, channel) -> Reply``.

No HTTP here. Connectors and web pages adapt it; the chat evaluation drives it directly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable

from corpus import SUPPORTED_LANGS, Organisation, default_lexicon, default_taxonomy, detect_lang, fold, has_han
from index import QUERY_CHARS_MAX, Filters, SearchEngine, SearchResult, cap_text

from . import _intents as intents
from ._messages import label, say, suggestions
from ._present import snippet
from ._state import SessionState, StateStore

log = logging.getLogger("cpc.assistant")
PAGE = 5
TEXT_MAX = 2000


@dataclass
class ResultCard:
    number: int
    id: str
    name: str
    kind: str
    country: str
    region: str | None
    city: str | None
    sectors: list[str]
    website: str | None
    reason: str


@dataclass
class Reply:
    text: str
    lang: str
    intent: str
    results: list[ResultCard] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    handoff: bool = False
    lead_id: int | None = None
    organisation: str | None = None  # the record a details or hand-off reply is about


class Assistant:
    def __init__(self, engine: SearchEngine | Callable[[], SearchEngine], store: StateStore,
                 text_cap: int = QUERY_CHARS_MAX):
        self._engine = engine
        self.text_cap = text_cap  # longer messages are read up to here: encoder time grows with the text
        self.store = store
        self.lexicon = default_lexicon()
        self.taxonomy = default_taxonomy()
        self._scope: intents.ScopeClassifier | None = None

    @property
    def engine(self) -> SearchEngine:
        """The current engine; a callable lets the service swap indexes under the assistant."""
        return self._engine() if callable(self._engine) else self._engine

    @property
    def scope(self) -> intents.ScopeClassifier:
        if self._scope is None:
            self._scope = intents.ScopeClassifier(self.engine.encoder)
        return self._scope

    # -- entry point --------------------------------------------------------------------
    def respond(self, session_id: str, text: str, channel: str = "web") -> Reply:
        text, truncated = cap_text(intents.clean(text)[:TEXT_MAX], self.text_cap)
        state = self.store.load(session_id)
        lang, other_language = self._language(text, state)
        state.lang = lang
        state.turns += 1
        reply = self._dispatch(text, state, lang, session_id, channel)
        if other_language:
            reply.text = say("other_language", "en") + "\n" + reply.text
        if truncated:
            reply.text = say("truncated", lang, n=len(text)) + "\n" + reply.text
        self.store.save(session_id, state)
        return reply

    def _language(self, text: str, state: SessionState) -> tuple[str, bool]:
        """Language of the latest message; very short or unclear messages keep the session's."""
        if not text:
            return state.lang or "en", False
        if has_han(text):
            return "zh", False
        found = detect_lang(text, default=None)
        if found in SUPPORTED_LANGS:
            return found, False
        if found and len(text.split()) >= 3:
            return "en", True
        return state.lang or "en", False

    def _dispatch(self, text: str, state: SessionState, lang: str, sid: str, channel: str) -> Reply:
        if not text or intents.HELP.search(text):
            return Reply(say("help", lang), lang, "help", suggestions=suggestions("start", lang))
        if intents.GREETING.match(text):
            return Reply(say("greeting", lang), lang, "greeting", suggestions=suggestions("start", lang))
        if intents.THANKS.match(text) and len(text) <= 40:
            return Reply(say("thanks", lang), lang, "thanks", suggestions=suggestions("start", lang))
        if intents.GOODBYE.match(text):
            return Reply(say("goodbye", lang), lang, "goodbye")

        number = intents.number_in(text)
        named = self._named_org(text, state)
        if intents.CONTACT.search(text):
            return self._handoff(text, state, lang, sid, channel, number, named)
        bare_number = re.fullmatch(r"\s*(n[º°o.]?\s*|#|number\s*|número\s*)?\d{1,3}\s*[.!?？。]?\s*", text, re.I)
        if intents.DETAILS.search(text) and (number is not None or named or state.focus) or (bare_number and state.shown):
            return self._details(state, lang, number, named)
        if intents.BACK.match(intents.without_courtesy(text)):
            if not state.query:
                return Reply(say("no_search", lang), lang, "list", suggestions=suggestions("start", lang))
            state.shown = state.shown[: state.page * PAGE]  # the current page is shown again
            state.focus = None
            return self._page(state, lang, sid, channel, "list")
        if intents.MORE.match(intents.without_courtesy(text)):
            return self._more(state, lang, sid, channel)
        if intents.CLEAR_FILTERS.search(text):
            if not state.query:
                return Reply(say("no_search", lang), lang, "refine", suggestions=suggestions("start", lang))
            state.filters = {}
            return self._search(state, lang, sid, channel, "refine", prefix=say("filters_cleared", lang))

        body = intents.GREETING_PREFIX.sub("", text).strip() or text
        ref = intents.refinement(body, self.lexicon, self.taxonomy)
        if state.query and self._is_refinement(body, ref):
            self._apply_refinement(state, ref)
            return self._search(state, lang, sid, channel, "refine")
        if self._looks_like_search(body):
            state.query = body
            state.filters = {}
            # exclusions and "only" in a first message are hard filters too
            if ref.exclude or ref.exclude_countries:
                self._apply_refinement(state, intents.Refinement(exclude=ref.exclude, exclude_countries=ref.exclude_countries))
            return self._search(state, lang, sid, channel, "find")
        return Reply(say("out_of_scope", lang), lang, "out_of_scope", suggestions=suggestions("start", lang))

    # -- understanding ------------------------------------------------------------------
    def _looks_like_search(self, text: str) -> bool:
        analysis_hits = self.taxonomy.find(text) or self.lexicon.kinds(text) or self.lexicon.countries(text)
        if analysis_hits:
            return True
        return self.scope.in_scope(text)

    def _is_refinement(self, text: str, ref: intents.Refinement) -> bool:
        if ref.is_empty():
            return False
        if intents.REFINE_START.match(text) or ref.exclude or ref.exclude_countries:
            return True
        # short follow-ups naming only a place, kind or country ("Zhejiang?", "e clusters?", "中国的")
        leftover = fold(text)
        for place in ref.include:
            for term in [place.name, *place.labels.values()]:
                leftover = leftover.replace(fold(term), " ")
        words = [w for w in re.findall(r"[^\W\d_]+", leftover) if len(w) > 2 and not has_han(w)]
        han = re.sub(r"[^\u4e00-\u9fff]", "", leftover)
        return len(words) <= 2 and len(han) <= 4 and not ref.sectors

    def _apply_refinement(self, state: SessionState, ref: intents.Refinement) -> None:
        f = state.filters
        for place in ref.include:
            key = "cities" if place.level == "city" else "regions"
            f[key] = [place.name]
            f["countries"] = [place.country]
            if key == "regions":
                f.pop("cities", None)
        for place in ref.exclude:
            key = "exclude_cities" if place.level == "city" else "exclude_regions"
            f[key] = sorted(set(f.get(key, [])) | {place.name})
        if ref.countries:
            f["countries"] = ref.countries[:1]
            for key in ("regions", "cities"):
                kept = [p for p in f.get(key, []) if (pl := self.lexicon.place(p)) and pl.country in ref.countries]
                f[key] = kept
        if ref.exclude_countries:
            f["exclude_countries"] = sorted(set(f.get("exclude_countries", [])) | set(ref.exclude_countries))
        if ref.kinds:
            f["kinds"] = ref.kinds[:1]
        if ref.sectors:
            f["sectors"] = ref.sectors[:1]
        state.filters = {k: v for k, v in f.items() if v}

    def _named_org(self, text: str, state: SessionState) -> Organisation | None:
        """An organisation named in the text: shown ones first, then the whole corpus."""
        folded = fold(text)
        records = self.engine.records
        pool = [records[i] for i in state.shown if i in records] + list(records.values())
        for rec in pool:
            names = {rec.name, *(t.name for t in rec.i18n.values() if t.name)}
            for name in names:
                short = fold(re.split(r"\s[–—-]\s|[（(,]", name)[0]).strip()
                if len(short) >= 4 and short in folded:
                    return rec
        return None

    # -- actions ------------------------------------------------------------------------
    def _filters(self, state: SessionState) -> Filters:
        f = state.filters
        return Filters(
            countries=tuple(f.get("countries", ())), regions=tuple(f.get("regions", ())), cities=tuple(f.get("cities", ())),
            kinds=tuple(f.get("kinds", ())), sectors=tuple(f.get("sectors", ())),
            exclude_countries=tuple(f.get("exclude_countries", ())), exclude_regions=tuple(f.get("exclude_regions", ())),
            exclude_cities=tuple(f.get("exclude_cities", ())),
        )

    def _search(self, state: SessionState, lang: str, sid: str, channel: str, intent: str, prefix: str = "") -> Reply:
        state.page = 0
        state.shown = []
        state.focus = None
        return self._page(state, lang, sid, channel, intent, prefix)

    def _more(self, state: SessionState, lang: str, sid: str, channel: str) -> Reply:
        if not state.query:
            return Reply(say("no_search", lang), lang, "more", suggestions=suggestions("start", lang))
        state.page += 1
        return self._page(state, lang, sid, channel, "more")

    def _page(self, state: SessionState, lang: str, sid: str, channel: str, intent: str, prefix: str = "") -> Reply:
        assert state.query is not None
        result: SearchResult = self.engine.search(state.query, self._filters(state), limit=PAGE, offset=state.page * PAGE)
        if intent in ("find", "refine"):  # one log entry per search, as the search API does
            self.store.log_query(channel, lang, state.query, result.total, sid)
        filters = self._describe_filters(state, lang)
        if not result.hits:
            if state.page > 0:
                state.page -= 1
                return Reply(say("no_more", lang, query=state.query), lang, intent, suggestions=suggestions("broaden", lang))
            text = say("no_results", lang, query=state.query, filters=filters)
            return Reply("\n".join(p for p in (prefix, text) if p), lang, intent, suggestions=suggestions("broaden", lang))
        cards = []
        for i, hit in enumerate(result.hits, start=state.page * PAGE + 1):
            state.shown.append(hit.record.id)
            cards.append(self._card(i, hit.record, hit.sectors, lang))
        head = say("results" if intent != "more" else "results_more", lang, query=state.query, filters=filters)
        lines = [prefix, head] if prefix else [head]
        for c in cards:
            lines.append(f"{c.number}. {c.name} — {self._where(c, lang)}")
            lines.append(f"   {c.reason}")
        lines.append(say("hint", lang))
        return Reply("\n".join(lines), lang, intent, cards, suggestions("results", lang))

    def _card(self, number: int, rec: Organisation, matched: list[str], lang: str) -> ResultCard:
        desc, desc_lang = rec.description_in(lang)
        sectors = matched or rec.sectors[:2]
        labels = ", ".join(self.taxonomy.label(s, lang) for s in sectors if s in self.taxonomy)
        first = snippet(desc, 60 if lang == "zh" else 110)
        marker = "" if desc_lang == lang else f"[{desc_lang}] "
        reason = f"{labels} · {marker}{first}" if labels else f"{marker}{first}"
        return ResultCard(number, rec.id, rec.name_in(lang), rec.kind, rec.country, rec.region, rec.city,
                          rec.sectors, rec.website, reason)

    def _where(self, card: ResultCard | Organisation, lang: str) -> str:
        place = self._place_label(card.city, card.region, card.country, lang)
        return f"{label(card.kind, lang)}, {place}"

    def _place_label(self, city: str | None, region: str | None, country: str, lang: str) -> str:
        parts = []
        for name in (city, region):
            if name:
                place = self.lexicon.place(name)
                parts.append(place.label(lang) if place else name)
        parts.append(self.lexicon.country_label(country, lang))
        sep = "，" if lang == "zh" else ", "
        return sep.join(dict.fromkeys(parts))

    def _describe_filters(self, state: SessionState, lang: str) -> str:
        f = state.filters
        if not f:
            return ""
        bits = []
        for key in ("countries", "regions", "cities"):
            for v in f.get(key, []):
                place = self.lexicon.place(v)
                name = place.label(lang) if place else self.lexicon.country_label(v, lang)
                bits.append(f"{label('only', lang)} {name}")
        for v in f.get("kinds", []):
            bits.append(f"{label('only', lang)} {label(v, lang)}")
        for v in f.get("sectors", []):
            bits.append(f"{label('only', lang)} {self.taxonomy.label(v, lang)}")
        for key in ("exclude_countries", "exclude_regions", "exclude_cities"):
            for v in f.get(key, []):
                place = self.lexicon.place(v)
                name = place.label(lang) if place else self.lexicon.country_label(v, lang)
                bits.append(f"{label('not', lang)} {name}")
        joined = ("，" if lang == "zh" else ", ").join(bits)
        return f"（{joined}）" if lang == "zh" else f" ({joined})"

    def _target(self, state: SessionState, number: int | None, named: Organisation | None) -> Organisation | str | None:
        """The organisation a follow-up points at, or an error key."""
        records = self.engine.records
        if number is not None and state.shown:
            idx = len(state.shown) if number == -1 else number
            if not 1 <= idx <= len(state.shown):
                return "bad_number"
            return records.get(state.shown[idx - 1])
        if named is not None:
            return named
        if state.focus and state.focus in records:
            return records[state.focus]
        if len(state.shown) == 1:
            return records.get(state.shown[0])
        return None

    def _resolve(self, state: SessionState, lang: str, intent: str, number: int | None,
                 named: Organisation | None) -> Organisation | Reply:
        """The organisation a follow-up points at (now in focus), or the reply asking which."""
        target = self._target(state, number, named)
        if target == "bad_number":
            return Reply(say("bad_number", lang, n=number, max=len(state.shown)), lang, intent, suggestions=suggestions("results", lang))
        if not isinstance(target, Organisation):
            return Reply(say("which_one" if state.shown else "no_search", lang), lang, intent,
                         suggestions=suggestions("results" if state.shown else "start", lang))
        state.focus = target.id
        return target

    def _details(self, state: SessionState, lang: str, number: int | None, named: Organisation | None) -> Reply:
        rec = self._resolve(state, lang, "details", number, named)
        if isinstance(rec, Reply):
            return rec
        desc, desc_lang = rec.description_in(lang)
        marker = "" if desc_lang == lang else f"[{desc_lang}] "
        lines = [f"{rec.name_in(lang)} — {self._where(rec, lang)}"]
        if rec.sectors:
            lines.append(f"{label('sectors', lang)}: " + ", ".join(self.taxonomy.label(s, lang) for s in rec.sectors))
        lines.append(marker + desc)
        if rec.offers:
            lines.append(f"{label('offers', lang)}: " + (rec.offers if rec.lang == lang else f"[{rec.lang}] {rec.offers}"))
        if rec.seeks:
            lines.append(f"{label('seeks', lang)}: " + (rec.seeks if rec.lang == lang else f"[{rec.lang}] {rec.seeks}"))
        if rec.website:
            lines.append(f"{label('website', lang)}: {rec.website}")
        if rec.sources:
            lines.append(f"{label('sources', lang)}: " + " ".join(rec.sources[:2]))
        lines.append(say("details_hint", lang))
        card = self._card(state.shown.index(rec.id) + 1 if rec.id in state.shown else 0, rec, [], lang)
        return Reply("\n".join(lines), lang, "details", [card], suggestions("details", lang), organisation=rec.id)

    def _handoff(self, text: str, state: SessionState, lang: str, sid: str, channel: str,
                 number: int | None, named: Organisation | None) -> Reply:
        rec = self._resolve(state, lang, "contact", number, named)
        if isinstance(rec, Reply):
            return rec
        name = rec.name_in(lang)
        lead = self.store.add_lead(sid, channel, rec.id, rec.name, lang, text)
        website = rec.website or say("no_website", lang)
        card = self._card(state.shown.index(rec.id) + 1 if rec.id in state.shown else 0, rec, [], lang)
        return Reply(say("handoff", lang, name=name, lead=lead, website=website), lang, "contact", [card],
                     suggestions("results", lang), handoff=True, lead_id=lead, organisation=rec.id)

