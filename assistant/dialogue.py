"""The conversational core: ``Assistant.respond(session_id, text, channel) -> Reply``.

No HTTP here. Connectors and web pages adapt it; the chat evaluation drives it directly.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Callable

from corpus import KINDS, SUPPORTED_LANGS, Organisation, default_lexicon, default_taxonomy, detect_lang, fold, has_han
from index import QUERY_CHARS_MAX, Filters, SearchEngine, SearchResult, cap_text

from . import _contact as contact
from . import _intents as intents
from . import _understand
from ._gazetteer import District, default_gazetteer
from . import _alerts, _my_requests
from . import _profiles_chat
from . import _posts  # opportunity posts
from ._hooks import NoTeam, TeamHooks
from ._team import StaffTeam
from ._messages import ORIGINAL_IN, LANGUAGE_NAMES, label, original_mark, say, suggestions
from ._present import reasons, snippet
from ._state import SessionConflict, SessionState, StateStore

log = logging.getLogger("cpc.assistant")
PAGE = 5
SUMMARY_CHARS = 60  # a reply quotes at most this much of the user's message
# words that carry no topic in a short follow-up ("only companies please", "só as do norte")
_FILLERS = {"only", "just", "please", "pls", "the", "ones", "those", "and", "but", "not", "apenas", "somente", "por", "favor",
            "the", "quero", "want", "show", "mostra", "mostre", "das", "dos", "nas", "nos", "que", "with", "com", "sem"}
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
    step: str = ""  # the finer step behind the act in ``intent`` ("greeting", "contact_name", "privacy_erased" ...)
    posts: list[dict] = field(default_factory=list)  # open opportunity posts that fit a search (assistant/_posts.py)


@dataclass
class _Ctx(_understand.Context):
    """The rule components' view of the conversation."""

    state: SessionState | None = None
    focus: str | None = None
    named: Organisation | None = None
    pending: str | None = None


# Function words that tell Portuguese from English in a message of a few words, where statistical
# detection guesses ("voltar a lista" reads as English to it); "a" and "no" are in both and count for neither.
_PT_WORDS = frozenset("o os as do da dos das de em na nas nos com para por mais lista voltar volta só so sim não nao quero "
                      "tem detalhes obrigado obrigada um uma sem ver mostra outros outras empresas apenas também ou".split())
_EN_WORDS = frozenset("the of to in on more back list show me please only yes details thanks and with for companies is "
                      "any others other next just what about".split())


# A verb with a hyphenated pronoun ("avisa-me", "diga-nos", "mostra-lhes") is Portuguese, whatever
# the pronoun would be alone ("me" is also English).
_PT_CLITIC = re.compile(r"^[^\W\d_]{2,}-(me|te|se|nos|vos|lhe|lhes|o|a|os|as|lo|la|los|las)$")


def _short_lang(text: str) -> str | None:
    tokens = re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", text.lower())
    words = [w for t in tokens for w in t.split("-")]
    if not words or len(words) > 5:
        return None
    pt = sum(w in _PT_WORDS for w in words) + 2 * sum(bool(_PT_CLITIC.match(t)) for t in tokens)
    en = sum(w in _EN_WORDS for w in words)
    return "pt" if pt > en else "en" if en > pt else None


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def normalise(text: str) -> str:
    """What the rules and the classifier read: Traditional Chinese as Simplified (OpenCC), a space
    between Han and Latin runs ("只看Marinha Grande", "Porto地区" stay findable as words), and the
    few command words with a typo spelled right ("detials of 1")."""
    if has_han(text):
        text = _t2s().convert(text)
        text = re.sub(r"(?<=[\u4e00-\u9fff])(?=[A-Za-z])|(?<=[A-Za-z])(?=[\u4e00-\u9fff])", " ", text)
    return intents.fix_command_typos(text)


def summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """What a reply quotes of a message: all of a short one, the opening words of a long one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if not has_han(cut) and " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:，、。 ") + "…"


class Assistant:
    def __init__(self, engine: SearchEngine | Callable[[], SearchEngine], store: StateStore,
                 text_cap: int = QUERY_CHARS_MAX, team: TeamHooks | None = None):
        self._engine = engine
        # threads with staff, a person, status and FAQ (assistant/_hooks.py); NoTeam() for the dialogue alone
        self.team: TeamHooks = team if team is not None else StaffTeam(store, lambda: self.engine.encoder)
        self.gazetteer = default_gazetteer()
        self._classifier: _understand.IntentClassifier | None = None
        self.understanding = _understand.Understanding(self._rules(), lambda: self.scope)
        self.text_cap = text_cap  # longer messages are read up to here: encoder time grows with the text
        self.store = store
        self.lexicon = default_lexicon()
        self.taxonomy = default_taxonomy()
        # what removes a published profile from the index (the service's write process); None: not here
        self.unpublish: Callable[[dict], None] | None = None
        self.posts = None  # the service's PostDesk (assistant/_posts.py), set by the app: opportunity posts

    @property
    def engine(self) -> SearchEngine:
        """The current engine; a callable lets the service swap indexes under the assistant."""
        return self._engine() if callable(self._engine) else self._engine

    @property
    def scope(self) -> _understand.IntentClassifier:
        """The intent classifier over the engine's encoder (its exemplars are embedded on first use)."""
        if self._classifier is None:
            self._classifier = _understand.IntentClassifier(self.engine.encoder)
        return self._classifier

    # -- entry point --------------------------------------------------------------------
    def respond(self, session_id: str, text: str, channel: str = "web", group: bool = False) -> Reply:
        """One turn. The session is saved only if nobody else saved it meanwhile (another worker
        answering the same user); otherwise the turn is run again on the newer state, so each
        message is applied on top of the other. After ``TURN_ATTEMPTS`` the reply still goes out
        and the turn is not remembered. In a ``group`` chat (a session every member shares) nothing
        personal is asked for, kept or erased: requests and "delete my data" are sent to a private chat."""
        text = intents.clean(text)[:TEXT_MAX]  # all of it is read; only what is embedded is capped (text_cap)
        for _ in range(TURN_ATTEMPTS):
            state, version = self.store.load_versioned(session_id)
            reply, keep = self._turn(session_id, text, channel, state, group)
            if not keep:
                return reply
            try:
                self.store.save(session_id, state, version=version)
                break
            except SessionConflict:
                if reply.lead_id is not None:
                    # a racing turn saved first: the request was stored once (its key), the reply
                    # names that lead, and the session stays as the other turn left it
                    break
                log.info("session changed during a turn: running the turn again on the newer state")
        else:
            log.warning("session changed during %d attempts at one turn: this turn is not remembered", TURN_ATTEMPTS)
        if channel in contact.IDENTITY_CHANNELS:
            self.store.touch(session_id)
        if channel == "wechat":  # whatever was said, WeChat's 48-hour customer-service window opens again
            self.store.seen_alerts(channel, session_id)
        return reply

    def _turn(self, session_id: str, text: str, channel: str, state: SessionState,
              group: bool = False) -> tuple[Reply, bool]:
        """The reply to ``text`` with ``state`` updated in place; False when the state must not be saved."""
        lang, other_language = self._language(text, state)
        if group and (contact.wants_erase(text) or contact.active(state) or intents.CONTACT.search(text)):
            # one session for every member of the group: whoever wrote, the request or the erasure
            # would be someone else's, and the bot would echo a name and an e-mail to the group
            state.capture, state.erase_pending = None, False
            return Reply(say("private_only", lang), lang, "private_only", suggestions=suggestions("start", lang)), True
        if contact.language(state):  # a name or an e-mail in the middle of a request is no language switch
            lang, other_language = contact.language(state), False
        elif state.profile:  # a firm's name or a website while joining is no language switch either
            lang, other_language = state.profile["lang"], False
        elif state.reply_lang:  # the user asked for replies in this language
            lang, other_language = state.reply_lang, False
        fresh = state.turns == 0
        state.lang = lang
        state.turns += 1
        reply = self._dispatch(text, state, lang, session_id, channel, fresh)
        if other_language:
            reply.text = say("other_language", "en") + "\n" + reply.text
        if reply.step == "privacy_erased":
            return reply, False  # nothing of this user is written back
        if reply.intent not in ("interest", "contact", "lead", "erase"):  # answers to a request stay out of the history
            contact.remember(state, text, reply.text)
        if reply.truncated:
            reply.text = say("truncated", lang, n=reply.truncated) + "\n" + reply.text
        return reply, True

    def _language(self, text: str, state: SessionState) -> tuple[str, bool]:
        """Language of the latest message; very short or unclear messages keep the session's. A
        sentence in Portuguese or English naming one Chinese place ("só em 宁波 por favor") stays in
        its own language: the Han characters are a name, not the language of the sentence."""
        if not text:
            return state.lang or "en", False
        if has_han(text):
            han = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
            rest = re.sub(r"[\u3400-\u9fff\uf900-\ufaff]+", " ", text)
            words = re.findall(r"[^\W\d_]{2,}", rest)
            if han > 6 or len(words) < 2 or han > 2 * sum(map(len, words)):
                return "zh", False
            found = detect_lang(rest, default=None) if len(words) >= 3 else None
            if found in ("pt", "en"):
                return found, False
            return (state.lang, False) if state.lang in ("pt", "en") else ("zh", False)
        found = _short_lang(text) or detect_lang(text, default=None)
        if found in SUPPORTED_LANGS:
            return found, False
        if found and len(text.split()) >= (6 if state.lang else 3):  # "voltar a lista" is no Italian
            return "en", True
        return state.lang or "en", False

    # -- understanding ------------------------------------------------------------------
    def _rules(self) -> list[_understand.Rule]:
        """The precise components, in the order they are tried (the classifier reads the rest)."""
        R = _understand.Rule
        return [
            R("erase", lambda t, c: {} if contact.wants_erase(t) else None),
            R("help", lambda t, c: {} if not t or intents.HELP.search(t) else None),
            R("language", lambda t, c: {"lang": lang} if (lang := _understand.language_asked(t)) else None),
            R("smalltalk", self._smalltalk_rule),
            R("human", lambda t, c: {} if _understand.HUMAN.search(t) else None),
            R("status", lambda t, c: {} if _understand.STATUS.search(t) else None),
            R("interest", lambda t, c: {} if intents.CONTACT.search(t) else None),
            R("details", self._details_rule),
            R("back", lambda t, c: {} if intents.BACK.match(intents.without_courtesy(t)) else None),
            R("more", lambda t, c: {} if intents.MORE.match(intents.without_courtesy(t)) else None),
            R("refine", lambda t, c: {"clear": True} if intents.CLEAR_FILTERS.search(t) else None),
            R("search", self._new_topic_rule),
            R("refine", self._refine_rule),
        ]  # a message naming a sector or country is a search unless the model reads it as a question for the team

    @staticmethod
    def _smalltalk_rule(text: str, ctx) -> dict | None:
        if _understand.GREETING_CHAT.match(text):
            return {"say": "greeting_chat"}
        if intents.GREETING.match(text):
            return {"say": "greeting"}
        if intents.THANKS.match(text) and len(text) <= 40:
            return {"say": "thanks"}
        if intents.GOODBYE.match(text):
            return {"say": "goodbye"}
        return None

    def _details_rule(self, text: str, ctx) -> dict | None:
        numbers = intents.numbers_in(text)
        bare = re.fullmatch(r"\s*(n[º°o.]?\s*|#|number\s*|número\s*)?\d{1,3}\s*[.!?？。]?\s*", text, re.I)
        if intents.DETAILS.search(text) and (numbers or ctx.named or ctx.focus) or (bare and ctx.has_list) \
                or (intents.SHOW_NUMBER.match(text) and ctx.has_list):
            return {"numbers": numbers}
        return None

    def _body(self, text: str) -> tuple[str, bool]:
        """The message without a greeting, and after "now something else:" (True when that was said)."""
        body = intents.GREETING_PREFIX.sub("", text).strip() or text
        topic = intents.NEW_TOPIC.search(body)
        if topic:  # "Agora outra coisa: fabricantes de moldes na China": a new search, old filters dropped
            rest = body[topic.end():].lstrip(" :：,，.。-—")
            body = rest if len(rest) >= 3 else body
        return body, bool(topic)

    def _new_topic_rule(self, text: str, ctx) -> dict | None:
        body, topic = self._body(text)
        if topic and (body != text or ctx.pending):
            return {"body": body if body != text else ctx.pending}
        return None

    def _refine_rule(self, text: str, ctx) -> dict | None:
        if not ctx.has_query:
            return None
        body, _ = self._body(text)
        ref = self._refinement(body)
        if self._is_refinement(body, ref, ctx.state):
            return {"ref": ref}
        return None

    def _named_search_rule(self, text: str, ctx) -> dict | None:
        """A message naming a sector, a kind of partner or a country is a partner search."""
        body, _ = self._body(text)
        if self.taxonomy.find(body) or self.lexicon.kinds(body) or self.lexicon.countries(body):
            return {"body": body}
        return None

    def _refinement(self, text: str) -> intents.Refinement:
        engine_places = self.engine.record_place_mentions
        return intents.refinement(text, self.lexicon, self.taxonomy, lambda t: engine_places(t) + self.gazetteer.mentions(t))

    def understand(self, text: str, state: SessionState) -> _understand.Intent:
        """The reading of ``text`` in this conversation: a rule's, else the classifier's with its fallback."""
        text = normalise(text)
        ctx = _Ctx(has_query=bool(state.query), has_list=bool(state.shown), thread=False, state=state,
                   focus=state.focus, named=None, pending=state.pending)
        ctx.named = self._named_org(text, state) if state.shown or intents.DETAILS.search(text) or intents.CONTACT.search(text) else None
        found = self.understanding.rule(text, ctx)
        if found is not None:
            return found
        body, _ = self._body(text)
        reading = self.understanding.model(cap_text(body, self.text_cap)[0], ctx)
        if reading.name == "refine":
            ref = self._refinement(body)
            if not ref.is_empty():
                return _understand.Intent("refine", reading.confidence, {"ref": ref}, reading.source, reading.ranking)
        named = self._named_search_rule(body, ctx)
        sure = reading.source == "model" and reading.confidence >= 0.5
        if named is not None and not (sure and reading.name in ("faq", "human", "status", "language", "to_team", "profile", "publish")):
            return _understand.Intent("search", max(reading.confidence, 0.5), named, "model", reading.ranking)
        return reading

    def _dispatch(self, text: str, state: SessionState, lang: str, sid: str, channel: str, fresh: bool = False) -> Reply:
        """States first (a contact request or an erase confirmation under way, an open thread with the
        team), then the handler registered for what the message means."""
        if contact.wants_erase(text) or contact.active(state):
            reply = self._contact_turn(text, state, lang, sid, channel)
            if reply is not None:
                return reply
        if state.profile:  # joining the directory, or managing one's profile (_profiles.py)
            return _profiles_chat.turn(self, text, state, sid, channel)
        if _posts.active(state) and self.posts is not None:  # an opportunity post being written
            text_, chips, step = _posts.handle(self.posts, state, text, channel, sid)
            return Reply(text_, lang, "publish", suggestions=chips, step=step)
        if self.team.thread_open(self, state, sid, channel):
            reading = self.understand(text, state)
            list_command = state.shown and reading.source == "rule" and reading.name in ("more", "details", "back", "interest")
            if reading.name not in ("search", "erase", "help", "language", "status", "human", "mine") and not list_command:
                reply = self.team.to_team(self, text, state, lang, sid, channel)
                if reply is not None:
                    return reply
            elif reading.name == "search":  # a new search: the thread stays with staff, the user searches again
                if not self.team.leaves_thread(self, text, state, sid, channel):
                    reply = self.team.to_team(self, text, state, lang, sid, channel)
                    if reply is not None:
                        return reply
                self.team.leave_thread(self, state, sid, channel)
        else:
            reading = self.understand(text, state)
        if reading.name != "clarify":
            state.pending = None
        if reading.name in ("search", "out_of_scope") and reading.source != "rule" and text and not isinstance(self.team, NoTeam):
            # a question the staff added to the FAQ is answered even where the classifier's examples
            # know nothing of its topic (the FAQ answers only what reads very close to one of its questions)
            reply = self.team.faq(self, text, state, lang, sid, channel)
            if reply is not None:
                return reply
        joining = reading.name == "profile" and reading.confidence >= 0.5  # "o meu perfil" is no "os meus pedidos"
        if reading.source != "rule" and text and not joining and reading.name != "publish":  # "tell me when new ones fit", "stop alerts", "my requests" (_alerts.py)
            turn = _alerts.Turn(self, state, sid, channel)
            reply = _alerts.handle_text(turn, text, lang)
            if reply is not None:
                return reply
        handler = self._handlers.get(reading.name, Assistant._on_out_of_scope)
        return handler(self, text, reading, state, lang, sid, channel, fresh)

    # -- handlers, one per intent ---------------------------------------------------------
    def _on_erase(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        return self._contact_turn(text, state, lang, sid, channel) or self._on_out_of_scope(text, reading, state, lang, sid, channel, fresh)

    def _on_help(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        return Reply(say("help", lang), lang, "help", suggestions=suggestions("start", lang), step="help")

    def _on_smalltalk(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        key = reading.slots.get("say") or ("greeting_chat" if not state.query else "thanks")
        chips = [] if key == "goodbye" else suggestions("results" if state.shown and key == "thanks" else "start", lang)
        return Reply(say(key, lang), lang, "smalltalk", suggestions=chips, step=key)

    def _on_language(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        wanted = reading.slots.get("lang") or _understand.language_asked(text) or lang
        state.reply_lang = wanted
        state.lang = wanted
        return Reply(say("language_set", wanted), wanted, "language",
                     suggestions=suggestions("results" if state.shown else "start", wanted), step="language")

    def _on_human(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        return self.team.human(self, text, state, lang, sid, channel) or NoTeam().human(self, text, state, lang, sid, channel)

    def _on_status(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        return self.team.status(self, text, state, lang, sid, channel) or NoTeam().status(self, text, state, lang, sid, channel)

    def _on_mine(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        """ "My requests": the user's leads, alerts (and what else registered a section), with statuses."""
        return _my_requests.reply(self.store, channel, sid, lang)

    def _on_faq(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        reply = self.team.faq(self, text, state, lang, sid, channel)
        if reply is None and type(self.team) is not NoTeam:
            reply = NoTeam().faq(self, text, state, lang, sid, channel)
        return reply or NoTeam().faq(self, text, state, lang, sid, channel)

    def _on_to_team(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        reply = self.team.to_team(self, text, state, lang, sid, channel)
        return reply or self._on_out_of_scope(text, reading, state, lang, sid, channel, fresh)

    def _on_interest(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        number = intents.number_in(text)
        named = self._named_org(text, state)
        if number is None and named is None and not state.focus and len(state.shown) != 1:
            if state.query and not state.shown:  # "I'm interested" after "nothing fits": the team looks for you
                step = contact.start(state, "", say("team_search", lang, query=summary(state.query)), lang, channel, text)
                return Reply(step.text, lang, "interest", [], step.suggestions, form=step.form, step=step.intent)
            if not state.shown:
                return self._no_list(state, lang, "interest", fresh)
        return self._handoff(text, state, lang, sid, channel, number, named)

    def _on_details(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        numbers = reading.slots.get("numbers") or intents.numbers_in(text)
        if not state.shown and not self._named_org(text, state) and not state.focus:
            return self._no_list(state, lang, "details", fresh)
        if len(numbers) > 1:
            return self._details_many(state, lang, numbers)
        return self._details(state, lang, numbers[0] if numbers else None, self._named_org(text, state))

    def _on_back(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        if not state.query:
            return self._no_list(state, lang, "back", fresh)
        return self._back(state, lang)

    def _on_more(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        if not state.query:
            return self._no_list(state, lang, "more", fresh)
        return self._more(state, lang, sid, channel)

    def _on_refine(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        if not state.query:
            return self._no_list(state, lang, "refine", fresh)
        if reading.slots.get("clear"):
            state.filters = {}
            return self._search(state, lang, sid, channel, "refine", prefix=say("filters_cleared", lang))
        ref = reading.slots.get("ref")
        if ref is None or ref.is_empty():
            return Reply(say("clarify_refine_what", lang), lang, "clarify", suggestions=suggestions("results", lang),
                         step="clarify_refine")
        self._apply_refinement(state, ref)
        return self._search(state, lang, sid, channel, "refine")

    def _on_search(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        body = reading.slots.get("body") or self._body(text)[0]
        state.query = body
        state.filters = {}
        ref = self._refinement(body)
        if ref.exclude or ref.exclude_countries:  # exclusions in a first message are hard filters too
            self._apply_refinement(state, intents.Refinement(exclude=ref.exclude, exclude_countries=ref.exclude_countries))
        return self._search(state, lang, sid, channel, "search")

    def _on_clarify(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        body = self._body(text)[0]
        state.pending = body
        return Reply(say("clarify_search_or_refine", lang, text=summary(body)), lang, "clarify",
                     suggestions=suggestions("clarify", lang), step="clarify_search")

    def _on_publish(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        """Publish an opportunity: a short dialogue in every channel (the web can show it as a form)."""
        if self.posts is None or state.capture:
            return self._on_out_of_scope(text, reading, state, lang, sid, channel, fresh)
        question, chips = _posts.start(state, lang)
        return Reply(question, lang, "publish", suggestions=chips, step="post_type",
                     form=_posts.form(lang) if channel == "web" else None)

    def _on_out_of_scope(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        return Reply(say("out_of_scope", lang), lang, "out_of_scope", suggestions=suggestions("start", lang), step="out_of_scope")

    def _on_profile(self, text, reading, state, lang, sid, channel, fresh) -> Reply:
        return _profiles_chat.start(self, state, lang, sid, channel)  # join the directory (_profiles_chat.py)

    _handlers: dict[str, Callable] = {
        "erase": _on_erase, "help": _on_help, "smalltalk": _on_smalltalk, "language": _on_language, "human": _on_human,
        "status": _on_status, "faq": _on_faq, "to_team": _on_to_team, "interest": _on_interest, "details": _on_details,
        "back": _on_back, "more": _on_more, "refine": _on_refine, "search": _on_search, "clarify": _on_clarify,
        "out_of_scope": _on_out_of_scope, "mine": _on_mine, "profile": _on_profile, "publish": _on_publish,
    }

    def _no_list(self, state: SessionState, lang: str, act: str, fresh: bool) -> Reply:
        """A follow-up with nothing to follow: a new or expired conversation says so and offers a search."""
        return Reply(say("no_list" if fresh else "no_search", lang), lang, act, suggestions=suggestions("start", lang),
                     step="no_list")

    def _is_refinement(self, text: str, ref: intents.Refinement, state: SessionState) -> bool:
        if ref.is_empty():
            return False
        current = {slug for slug, _ in self.taxonomy.find(state.query or "")}
        if ref.sectors and not set(ref.sectors) <= current and not (ref.exclude or ref.exclude_countries or ref.exclude_kinds):
            return False  # names another trade: a new topic, not a narrower list
        if ref.exclude or ref.exclude_countries or ref.exclude_kinds:
            return True
        # short follow-ups naming only a place, kind or country ("Zhejiang?", "e clusters?", "中国的",
        # "só no Porto"); a long message after "e"/"那" is a new question
        leftover = fold(text)
        for place in ref.include:
            for term in [place.name, *place.labels.values()]:
                leftover = leftover.replace(fold(term), " ")
        for _, term, _ in [*self.gazetteer.mentions(text), *self.lexicon._kinds.find(text), *self.lexicon.country_mentions(text)]:
            leftover = leftover.replace(fold(term), " ")
        words = [w for w in re.findall(r"[^\W\d_]+", leftover) if len(w) > 2 and not has_han(w) and w not in _FILLERS]
        han = re.sub(r"[^\u4e00-\u9fff]", "", leftover)
        if intents.REFINE_START.match(text):
            return len(words) <= 4 and len(han) <= 8
        return len(words) <= 2 and len(han) <= 4 and not ref.sectors

    def _apply_refinement(self, state: SessionState, ref: intents.Refinement) -> None:
        f = state.filters
        for place in ref.include:
            f.pop("districts", None)
            if isinstance(place, District):  # records name municipalities, not districts
                f["cities"], f["districts"] = list(place.cities), [place.name]
                f.pop("regions", None)
            else:
                key = "cities" if place.level == "city" else "regions"
                f[key] = [place.name]
                if key == "regions":
                    f.pop("cities", None)
            f["countries"] = [place.country]
        for place in ref.exclude:
            if isinstance(place, District):
                f["exclude_cities"] = sorted(set(f.get("exclude_cities", [])) | set(place.cities))
                continue
            key = "exclude_cities" if place.level == "city" else "exclude_regions"
            f[key] = sorted(set(f.get(key, [])) | {place.name})
        if ref.countries:
            f["countries"] = ref.countries[:1]
            # "那中国的呢？" after a search naming Portugal: the query no longer names the other side
            named = [(term, start) for code, term, start in self.lexicon.country_mentions(state.query or "")
                     if code not in ref.countries]
            if named and len(fold(state.query)) == len(state.query):
                query = state.query
                for term, start in sorted(named, key=lambda t: -t[1]):
                    query = query[:start] + query[start + len(term):]
                state.query = " ".join(query.split()) or state.query
            for key in ("regions", "cities"):
                kept = [p for p in f.get(key, []) if (pl := self.gazetteer.find(p)) and pl.country in ref.countries]
                f[key] = kept
        if ref.exclude_countries:
            f["exclude_countries"] = sorted(set(f.get("exclude_countries", [])) | set(ref.exclude_countries))
        if ref.kinds:
            f["kinds"] = ref.kinds[:1]
        if ref.exclude_kinds:  # "sem clusters": every other kind
            f["kinds"] = [k for k in (f.get("kinds") or KINDS) if k not in ref.exclude_kinds]
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
                                                  other_side=False, fill=False)
        if intent in ("search", "refine"):  # one log entry per search, as the search API does
            self.store.log_query(channel, lang, state.query, result.total, sid)
        filters = self._describe_filters(state, lang)
        if not result.hits:
            if state.page > 0:
                state.page -= 1
                return self._less_close(state, lang, intent, filters)
            if not state.filters:  # nothing in the directory fits: say so, and what is closest
                text = say("nothing_fits", lang, query=summary(state.query), filters=filters, nearest=self._nearest(result, lang))
                reply = Reply("\n".join(p for p in (prefix, text) if p), lang, intent, suggestions=suggestions("broaden", lang))
                self._with_posts(reply, state, result, lang)  # no organisation fits, an open post may
                return reply
            places = any(state.filters.get(k) for k in ("regions", "cities", "districts"))
            text = say("nothing_in_place" if places else "no_results", lang, query=summary(state.query), filters=filters)
            return Reply("\n".join(p for p in (prefix, text) if p), lang, intent, suggestions=suggestions("broaden", lang))
        if all(h.less_close for h in result.hits):  # no match on this page: the nearest are shown as such
            # on the first page nothing matched; on a later one the matches were all shown before
            head = say("only_less_close" if state.page == 0 else "less_close", lang, query=summary(state.query), filters=filters)
        else:
            count = say("match_count_one", lang) if result.matches == 1 else say("match_count", lang, n=result.matches)
            head = say("results" if intent != "more" else "results_more", lang, query=summary(state.query), filters=filters,
                       count=count)
        reply = self._list(state, result, result.hits, lang, intent, [prefix, head] if prefix else [head])
        if result.truncated and intent != "more":
            reply.truncated = len(result.embedded)
        if state.page == 0:
            self._with_posts(reply, state, result, lang)
        return reply

    def _with_posts(self, reply: Reply, state: SessionState, result: SearchResult, lang: str) -> None:
        """Open opportunity posts that fit the search, after the organisations, with type and deadline."""
        if self.posts is None or not state.query:
            return
        found = self.posts.search(state.query, None, _posts.POSTS_IN_CHAT, analysis=result.analysis)
        if found is None or not found.hits:
            return
        reply.posts = [_posts.post_view(h, lang, found.analysis) for h in found.hits]
        reply.text += "\n" + "\n".join([_posts.say("posts_head", lang)] + [_posts.post_line(h, lang) for h in found.hits])

    def _list(self, state: SessionState, result: SearchResult, hits, lang: str, intent: str, lines: list[str]) -> Reply:
        cards = []
        for hit in hits:
            state.shown.append(hit.record.id)
            cards.append(self._card(len(state.shown), hit.record, hit.sectors, lang, reasons(hit, result.analysis, lang)))
        state.listed = [[c.number, c.id, c.reason] for c in cards]  # what "back to the list" shows again
        return self._render_list(cards, lines, lang, intent)

    def _render_list(self, cards: list[ResultCard], lines: list[str], lang: str, intent: str) -> Reply:
        for c in cards:
            lines.append(f"{c.number}. {c.name} — {self._where(c, lang)}")
            lines.append(f"   {c.reason}")
        lines.append(say("hint", lang))
        return Reply("\n".join(lines), lang, intent, cards, suggestions("results", lang), step=intent)

    def _back(self, state: SessionState, lang: str) -> Reply:
        """The list last shown, as it was: same organisations, same numbers (no new search)."""
        records = self.engine.records
        listed = [(n, rid, why) for n, rid, why in (state.listed or []) if rid in records]
        if not listed:  # a session from before lists were remembered: the current page again
            state.shown = state.shown[: state.page * PAGE]
            state.focus = None
            return self._page(state, lang, "", "", "back")
        state.focus = None
        cards = [self._card(n, records[rid], [], lang) for n, rid, _ in listed]
        for card, (_, _, why) in zip(cards, listed):
            card.reason = why or card.reason
        head = say("results_back", lang, query=summary(state.query or ""), filters=self._describe_filters(state, lang))
        return self._render_list(cards, [head], lang, "back")

    def _less_close(self, state: SessionState, lang: str, intent: str, filters: str) -> Reply:
        """"More" after the last match: organisations below the floor, said to be less close (never
        the asker's own side when the need named where the partner should be)."""
        assert state.query is not None
        result = self.engine.search(state.query, self._filters(state), limit=len(state.shown) + PAGE * 2, use_floor=False)
        where = result.analysis.countries
        shown = set(state.shown)
        extra = [h for h in result.hits if h.record.id not in shown and (not where or h.record.country in where)]
        extra = sorted(extra, key=lambda h: not h.on_topic)[:PAGE]  # the trade asked for first, then the rest
        for hit in extra:  # past the matches: labelled, never presented as a match
            hit.less_close = True
        if not extra:
            return Reply(say("no_more", lang, query=summary(state.query)), lang, intent, suggestions=suggestions("broaden", lang))
        state.page += 1
        return self._list(state, result, extra, lang, intent, [say("less_close", lang, query=summary(state.query))])

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
        for key in ("countries", "regions", "districts", "cities"):
            if key == "cities" and f.get("districts"):
                continue  # a district's municipalities: the district says it
            if key == "countries" and (f.get("regions") or f.get("cities")):
                continue  # "only Zhejiang" says China
            for v in f.get(key, []):
                place = self.gazetteer.find(v) if key != "districts" else self.gazetteer.places.get(f"district:{v}".casefold())
                name = place.label(lang) if place else self.lexicon.country_label(v, lang)
                bits.append(f"{label('only', lang)} {name}")
        for v in f.get("kinds", []):
            bits.append(f"{label('only', lang)} {label(v, lang)}")
        for v in f.get("sectors", []):
            bits.append(f"{label('only', lang)} {self.taxonomy.label(v, lang)}")
        for key in ("exclude_countries", "exclude_regions", "exclude_cities"):
            for v in f.get(key, []):
                place = self.gazetteer.find(v)
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
        for name in ("offers", "seeks"):  # in the reader's language, else the original marked as such
            value, value_lang = rec.field_in(name, lang)
            if value:
                lines.append(f"{label(name, lang)}{original_mark(value_lang, lang)}: {value}")
        if rec.website:
            lines.append(f"{label('website', lang)}: {rec.website}")
        if rec.sources:
            lines.append(f"{label('sources', lang)}: " + " ".join(rec.sources[:2]))
        lines.append(say("details_hint", lang))
        card = self._card(state.shown.index(rec.id) + 1 if rec.id in state.shown else 0, rec, [], lang)
        return Reply("\n".join(lines), lang, "details", [card], suggestions("details", lang), organisation=rec.id, step="details")

    def _details_many(self, state: SessionState, lang: str, numbers: list[int]) -> Reply:
        """ "详细介绍一下第1个和第2个": the details of each, one after the other."""
        parts, cards, last = [], [], None
        for n in numbers[:3]:
            one = self._details(state, lang, n, None)
            parts.append(one.text.rsplit("\n", 1)[0] if one.organisation else one.text)
            cards += one.results
            last = one.organisation or last
        text = "\n\n".join(parts) + "\n" + say("details_hint", lang)
        return Reply(text, lang, "details", cards, suggestions("details", lang), organisation=last, step="details")

    def _handoff(self, text: str, state: SessionState, lang: str, sid: str, channel: str,
                 number: int | None, named: Organisation | None) -> Reply:
        """Interest in an organisation starts a contact request (or adds to the one under way)."""
        rec = self._resolve(state, lang, "interest", number, named)
        if isinstance(rec, Reply):
            return rec
        if state.capture:
            step = contact.add_org(state, rec.id, rec.name_in(state.capture["lang"]))
        else:
            step = contact.start(state, rec.id, rec.name_in(lang), lang, channel, text)
        card = self._card(state.shown.index(rec.id) + 1 if rec.id in state.shown else 0, rec, [], lang)
        return Reply(step.text, lang, "interest", [card], step.suggestions, organisation=rec.id, form=step.form,
                     step=step.intent)

    def _contact_turn(self, text: str, state: SessionState, lang: str, sid: str, channel: str) -> Reply | None:
        """A turn of a contact request or of "delete my data"; None lets the dialogue go on as usual."""
        if state.capture and not contact.wants_erase(text) and (intents.BACK.match(intents.without_courtesy(text))
                                                              or intents.MORE.match(intents.without_courtesy(text))):
            state.capture = None  # "back to the list" is a way out of a request, not its answer
            return None
        if contact.wants_erase(text):
            step = contact.erase_ask(state, lang)
            return Reply(step.text, lang, "erase", suggestions=step.suggestions, step=step.intent)
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
            _profiles_chat.erase(self, sid, channel)
            counts = self.store.erase_session(sid, channel)
            return Reply(contact.erased(lang, counts["leads"]), lang, "erase", step=step.intent)
        if step.lead is None:
            if step.intent == "contact_cancelled" and state.shown:  # the conversation goes on where it was
                step.suggestions = suggestions("results", lang)
            return Reply(step.text, lang, _act(step.intent), suggestions=step.suggestions, form=step.form, step=step.intent)
        lead = step.lead
        (first_id, first_name), records = lead["orgs"][0], self.engine.records
        lead_id = self.store.add_lead(
            sid, channel, first_id, records[first_id].name if first_id in records else first_name, lang, lead["message"],
            orgs=lead["orgs"], name=lead["name"], asker_org=lead["asker_org"], contact=lead["contact"],
            contact_kind=lead["contact_kind"], need=lead["need"], conversation=lead["conversation"],
            consent_at=lead["consent_at"], request_key=lead["request_key"])
        recs = [records[oid] for oid, _ in lead["orgs"] if oid in records]
        sites = ", ".join(r.website for r in recs if r.website) or say("no_website", lang)
        done = contact.text("done", lang, lead=lead_id, orgs=contact.orgs_text(lead["orgs"], lang),
                            contact=lead["contact_label"], website=sites)
        cards = [self._card(state.shown.index(r.id) + 1 if r.id in state.shown else 0, r, [], lang) for r in recs]
        return Reply(done, lang, "lead", cards, suggestions("results", lang) if state.shown else suggestions("start", lang),
                     handoff=True, lead_id=lead_id, organisation=first_id, step="lead")


def _act(step: str) -> str:
    """The act a contact-request step performs: its start is "interest", its answers "contact"."""
    if step.startswith("privacy"):
        return "erase"
    if step == "contact_start":
        return "interest"
    return "contact"
