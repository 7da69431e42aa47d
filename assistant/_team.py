"""The team side of a conversation, as the dialogue's hooks (``assistant/_hooks.py:TeamHooks``): the
lead's thread with staff and "talk to a person" / "status of my request" (``_threads.TeamDesk``),
and the staff's FAQ (``_faq.FaqBook``).

The dialogue decides what a message means (its intent classifier); this only acts on it, so one
reading of the message serves both. The desk and the FAQ share one encode of the message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ._faq import FaqBook
from ._messages import suggestions
from index import cap_text

from . import _intents as intents
from ._threads import SEARCH_MARGIN, QueryVectors, TeamDesk, text

if TYPE_CHECKING:  # pragma: no cover
    from ._state import SessionState, StateStore
    from .dialogue import Assistant, Reply


class StaffTeam:
    """Threads, people, status and FAQ backed by the state store the staff console reads."""

    def __init__(self, store: "StateStore", encoder: Callable[[], object]):
        vectors = QueryVectors(encoder)
        self.desk = TeamDesk(store, vectors)
        self.book = FaqBook(store, vectors)

    def warm(self) -> None:
        """The FAQ's questions and the desk's examples embedded at start-up, not under the first
        message (WeChat answers within 5 s)."""
        self.book.warm()
        self.desk.warm()

    def _thread(self, assistant: "Assistant", state: "SessionState", sid: str) -> dict | None:
        thread = assistant.store.open_thread(sid)
        if thread is None or thread["last_staff"] <= (getattr(state, "thread_left", 0) or 0):
            return None  # no staff message since the user left the thread for a new search
        return thread

    def thread_open(self, assistant, state, sid, channel) -> bool:
        return self._thread(assistant, state, sid) is not None

    def leaves_thread(self, assistant, text_, state, sid, channel) -> bool:
        """Inside a thread a message read as a search leaves it only when it says so ("new search: …")
        or reads closer to the desk's search examples than to its replies-to-staff ones: "thanks, Tuesday
        in China time is fine" names a country and is still an answer to staff."""
        if intents.NEW_TOPIC.search(text_):
            return True
        scores = self.desk.read(cap_text(text_, assistant.text_cap)[0]).scores  # the encoder's cap, as for search
        return scores["search"] >= scores["reply"] + SEARCH_MARGIN

    def leave_thread(self, assistant, state, sid, channel) -> None:
        thread = assistant.store.open_thread(sid)
        if thread is not None:
            state.thread_left = thread["last_staff"]

    def to_team(self, assistant, text_, state, lang, sid, channel) -> "Reply | None":
        thread = self._thread(assistant, state, sid)
        if thread is None:
            return None
        assistant.store.add_user_message(thread["lead_id"], sid, channel, text_)
        from .dialogue import Reply

        return Reply(text("to_team", lang, lead=thread["lead_id"]), lang, "to_team", lead_id=thread["lead_id"])

    def human(self, assistant, text_, state, lang, sid, channel) -> "Reply | None":
        return self.desk.open_request(text_, state, lang, sid, channel, "human")

    def status(self, assistant, text_, state, lang, sid, channel) -> "Reply | None":
        return self.desk.status(state, lang, sid)

    def faq(self, assistant, text_, state, lang, sid, channel) -> "Reply | None":
        found = self.book.answer(cap_text(text_, assistant.text_cap)[0], lang, sid, channel)
        if found is None:
            return None
        from .dialogue import Reply

        return Reply(found.text, lang, "faq", suggestions=suggestions("start", lang))
