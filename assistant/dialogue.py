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

from . import _contact as contact
from . import _intents as intents
from ._messages import label, say, suggestions
from ._present import reasons, snippet
from ._state import SessionConflict, SessionState, StateStore

log = logging.getLogger("cpc.assistant")
# A description the record has only in another language is shown as written, introduced in the reader's.
ORIGINAL_IN = {"pt": "(Descrição original, em {language}:)", "zh": "（原文为{language}：）", "en": "(Original description, in {language}:)"}
LANGUAGE_NAMES = {
    "pt": {"pt": "português", "zh": "chinês", "en": "inglês"},
    "zh": {"pt": "葡萄牙语", "zh": "中文", "en": "英语"},
    "en": {"pt": "Portuguese", "zh": "Chinese", "en": "English"},
}
PAGE = 5
TURN_ATTEMPTS = 3  # runs of one turn when another writer keeps saving the session first
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
    truncated: int = 0  # characters of a long partner description that were embedded (0: all of it)
    form: dict | None = None  # a contact-capture step the channel can show as a form or keyboard


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
        """One turn. The session is saved only if nobody else saved it meanwhile (another worker
        answering the same user); otherwise the turn is run again on the newer state, so each
        message is applied on top of the other. After ``TURN_ATTEMPTS`` the reply still goes out
        and the turn is not remembered."""
        text = intents.clean(text)[:TEXT_MAX]  # all of it is read; only what is embedded is capped (text_cap)
        for _ in range(TURN_ATTEMPTS):
            state, version = self.store.load_versioned(session_id)
            reply, keep = self._turn(session_id, text, channel, state)
            if not keep:
                return reply
            try:
                self.store.save(session_id, state, version=version)
                break
            except SessionConflict:
                if reply.lead_id is not None:  # a recorded request is not recorded twice: this turn's state wins
                    self.store.save(session_id, state)
                    break
                log.info("session changed during a turn: running the turn again on the newer state")
        else:
            log.warning("session changed during %d attempts at one turn: this turn is not remembered", TURN_ATTEMPTS)
        if channel in contact.IDENTITY_CHANNELS:
            self.store.touch(session_id)
        return reply

    def _turn(self, session_id: str, text: str, channel: str, state: SessionState) -> tuple[Reply, bool]:
        """The reply to ``text`` with ``state`` updated in place; False when the state must not be saved."""
        lang, other_language = self._language(text, state)
        if contact.language(state):  # a name or an e-mail in the middle of a request is no language switch
            lang, other_language = contact.language(state), False
        state.lang = lang
        state.turns += 1
        reply = self._dispatch(text, state, lang, session_id, channel)
        if other_language:
            reply.text = say("other_language", "en") + "\n" + reply.text
        if reply.intent == "privacy_erased":
            return reply, False  # nothing of this user is written back
        if not reply.intent.startswith(("contact", "privacy")):  # answers to a request stay out of the history
            contact.remember(state, text, reply.text)
        if reply.truncated:
            reply.text = say("truncated", lang, n=reply.truncated) + "\n" + reply.text
        return reply, True

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
        if contact.wants_erase(text) or contact.active(state):
            reply = self._contact_turn(text, state, lang, sid, channel)
            if reply is not None:
                return reply
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

        # -- alerts hook (members, assistant/_alerts.py): "tell me when new ones fit" / "stop alerts", "my requests" --
        from . import _alerts as alerts, _my_requests as mine
        turn = alerts.Turn(self, state, sid, channel)
        alert_reply = (alerts.handle_text(turn, text, lang) or mine.handle_text(turn, text, lang)) if text else None
        if alert_reply is not None:
            return alert_reply
        body = intents.GREETING_PREFIX.sub("", text).strip() or text
        topic = intents.NEW_TOPIC.search(body)
        if topic:  # "Agora outra coisa: fabricantes de moldes na China": a new search, old filters dropped
            rest = body[topic.end():].lstrip(" :：,，.。-—")
            body = rest if len(rest) >= 3 else body
        ref = intents.refinement(body, self.lexicon, self.taxonomy, self.engine.record_place_mentions)
        if state.query and not topic and self._is_refinement(body, ref, state):
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
        return self.scope.in_scope(cap_text(text, self.text_cap)[0])  # an encode: capped like a search

    def _is_refinement(self, text: str, ref: intents.Refinement, state: SessionState) -> bool:
        if ref.is_empty():
            return False
        current = {slug for slug, _ in self.taxonomy.find(state.query or "")}
        if ref.sectors and not set(ref.sectors) <= current and not (ref.exclude or ref.exclude_countries):
            return False  # names another trade: a new topic, not a narrower list
        if ref.exclude or ref.exclude_countries:
            return True
        # short follow-ups naming only a place, kind or country ("Zhejiang?", "e clusters?", "中国的",
        # "só no Porto"); a long message after "e"/"那" is a new question
        leftover = fold(text)
        for place in ref.include:
            for term in [place.name, *place.labels.values()]:
                leftover = leftover.replace(fold(term), " ")
        words = [w for w in re.findall(r"[^\W\d_]+", leftover) if len(w) > 2 and not has_han(w)]
        han = re.sub(r"[^\u4e00-\u9fff]", "", leftover)
        if intents.REFINE_START.match(text):
            return len(words) <= 4 and len(han) <= 8
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
        engine = self.engine
        rid = engine.named_in(fold(text), state.shown)
        return engine.records[rid] if rid is not None else None

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
        # a chat shows only the side the user asked for: pages of five that are all answers
        result: SearchResult = self.engine.search(state.query, self._filters(state), limit=PAGE, offset=state.page * PAGE,
                                                  other_side=False)
        if intent in ("find", "refine"):  # one log entry per search, as the search API does
            self.store.log_query(channel, lang, state.query, result.total, sid)
        filters = self._describe_filters(state, lang)
        if not result.hits:
            if state.page > 0:
                state.page -= 1
                return self._less_close(state, lang, intent, filters)
            if not state.filters:  # nothing in the directory fits: say so, and what is closest
                text = say("nothing_fits", lang, query=state.query, filters=filters, nearest=self._nearest(result, lang))
                return Reply("\n".join(p for p in (prefix, text) if p), lang, intent, suggestions=suggestions("broaden", lang))
            text = say("no_results", lang, query=state.query, filters=filters)
            return Reply("\n".join(p for p in (prefix, text) if p), lang, intent, suggestions=suggestions("broaden", lang))
        head = say("results" if intent != "more" else "results_more", lang, query=state.query, filters=filters)
        reply = self._list(state, result, result.hits, lang, intent, [prefix, head] if prefix else [head])
        if result.truncated and intent != "more":
            reply.truncated = len(result.embedded)
        return reply

    def _list(self, state: SessionState, result: SearchResult, hits, lang: str, intent: str, lines: list[str]) -> Reply:
        cards = []
        for hit in hits:
            state.shown.append(hit.record.id)
            cards.append(self._card(len(state.shown), hit.record, hit.sectors, lang, reasons(hit, result.analysis, lang)))
        for c in cards:
            lines.append(f"{c.number}. {c.name} — {self._where(c, lang)}")
            lines.append(f"   {c.reason}")
        lines.append(say("hint", lang))
        return Reply("\n".join(lines), lang, intent, cards, suggestions("results", lang))

    def _less_close(self, state: SessionState, lang: str, intent: str, filters: str) -> Reply:
        """"More" after the last match: organisations below the floor, said to be less close (never
        the asker's own side when the need named where the partner should be)."""
        assert state.query is not None
        result = self.engine.search(state.query, self._filters(state), limit=len(state.shown) + PAGE * 2, use_floor=False)
        where = result.analysis.countries
        shown = set(state.shown)
        extra = [h for h in result.hits if h.record.id not in shown and (not where or h.record.country in where)]
        extra = sorted(extra, key=lambda h: not h.on_topic)[:PAGE]  # the trade asked for first, then the rest
        if not extra:
            return Reply(say("no_more", lang, query=state.query), lang, intent, suggestions=suggestions("broaden", lang))
        state.page += 1
        return self._list(state, result, extra, lang, intent, [say("less_close", lang, query=state.query)])

    def _nearest(self, result: SearchResult, lang: str) -> str:
        """The closest sectors the directory has, for an honest "nothing fits"."""
        sectors: list[str] = []
        for hit in result.nearest:
            sectors += [s for s in hit.record.sectors[:2] if s in self.taxonomy and s not in sectors]
        if not sectors:
            return ""
        return say("nearest_sectors", lang, sectors=", ".join(self.taxonomy.label(s, lang) for s in sectors[:3]))

    def _card(self, number: int, rec: Organisation, matched: list[str], lang: str, why: list[str] | None = None) -> ResultCard:
        """A result line: name in the reader's language and why it fits; a description only in that language."""
        desc, desc_lang = rec.description_in(lang)
        if why:
            reason = "; ".join(why[:3])
        else:
            sectors = matched or rec.sectors[:2]
            labels = ", ".join(self.taxonomy.label(s, lang) for s in sectors if s in self.taxonomy)
            reason = labels
        if desc_lang == lang:
            first = snippet(desc, 60 if lang == "zh" else 110)
            reason = f"{reason} · {first}" if reason else first
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
        marker = "" if desc_lang == lang else ORIGINAL_IN[lang].format(language=LANGUAGE_NAMES[lang].get(desc_lang, desc_lang)) + "\n"
        lines = [f"{rec.name_in(lang)} — {self._where(rec, lang)}"]
        if rec.sectors:
            lines.append(f"{label('sectors', lang)}: " + ", ".join(self.taxonomy.label(s, lang) for s in rec.sectors))
        lines.append(marker + desc)
        if rec.offers:
            lines.append(f"{label('offers', lang)}: " + rec.offers)
        if rec.seeks:
            lines.append(f"{label('seeks', lang)}: " + rec.seeks)
        if rec.website:
            lines.append(f"{label('website', lang)}: {rec.website}")
        if rec.sources:
            lines.append(f"{label('sources', lang)}: " + " ".join(rec.sources[:2]))
        lines.append(say("details_hint", lang))
        card = self._card(state.shown.index(rec.id) + 1 if rec.id in state.shown else 0, rec, [], lang)
        return Reply("\n".join(lines), lang, "details", [card], suggestions("details", lang), organisation=rec.id)

    def _handoff(self, text: str, state: SessionState, lang: str, sid: str, channel: str,
                 number: int | None, named: Organisation | None) -> Reply:
        """Interest in an organisation starts a contact request (or adds to the one under way)."""
        rec = self._resolve(state, lang, "contact", number, named)
        if isinstance(rec, Reply):
            return rec
        if state.capture:
            step = contact.add_org(state, rec.id, rec.name_in(state.capture["lang"]))
        else:
            step = contact.start(state, rec.id, rec.name_in(lang), lang, channel, text)
        card = self._card(state.shown.index(rec.id) + 1 if rec.id in state.shown else 0, rec, [], lang)
        return Reply(step.text, lang, step.intent, [card], step.suggestions, organisation=rec.id, form=step.form)

    def _contact_turn(self, text: str, state: SessionState, lang: str, sid: str, channel: str) -> Reply | None:
        """A turn of a contact request or of "delete my data"; None lets the dialogue go on as usual."""
        if contact.wants_erase(text):
            step = contact.erase_ask(state, lang)
            return Reply(step.text, lang, step.intent, suggestions=step.suggestions)
        if state.capture and intents.CONTACT.search(text) and sum(c.isdigit() for c in text) <= 3 and "@" not in text:
            # "I'm interested in 3" (a card's button) adds to the request; in a free-text answer only a short one does,
            # and only a list number: an organisation's name there is the user's answer
            free_text = state.capture["step"] in ("name", "org", "need")
            number = intents.number_in(text) if not free_text or len(text) <= 40 else None
            named = None if free_text or number is not None else self._named_org(text, state)
            if number is not None or named is not None:
                return self._handoff(text, state, lang, sid, channel, number, named)
        step = contact.handle(state, text, channel)
        if step.erase:
            counts = self.store.erase_session(sid, channel)
            return Reply(contact.erased(lang, counts["leads"]), lang, step.intent)
        if step.lead is None:
            return Reply(step.text, lang, step.intent, suggestions=step.suggestions, form=step.form)
        lead = step.lead
        (first_id, first_name), records = lead["orgs"][0], self.engine.records
        lead_id = self.store.add_lead(
            sid, channel, first_id, records[first_id].name if first_id in records else first_name, lang, lead["message"],
            orgs=lead["orgs"], name=lead["name"], asker_org=lead["asker_org"], contact=lead["contact"],
            contact_kind=lead["contact_kind"], need=lead["need"], conversation=lead["conversation"],
            consent_at=lead["consent_at"])
        recs = [records[oid] for oid, _ in lead["orgs"] if oid in records]
        sites = ", ".join(r.website for r in recs if r.website) or say("no_website", lang)
        done = contact.text("done", lang, lead=lead_id, orgs=contact.orgs_text(lead["orgs"], lang),
                            contact=lead["contact_label"], website=sites)
        cards = [self._card(state.shown.index(r.id) + 1 if r.id in state.shown else 0, r, [], lang) for r in recs]
        return Reply(done, lang, "contact", cards, suggestions("results", lang) if state.shown else suggestions("start", lang),
                     handoff=True, lead_id=lead_id, organisation=first_id)
