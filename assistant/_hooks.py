"""Where the dialogue hands a turn to the team side (threads with staff, talk to a person, status of
a request, the staff's FAQ). The dialogue calls these through ``Assistant(..., team=...)``; with no
team given, :class:`NoTeam` answers honestly with what the dialogue alone can do.

Every method gets the assistant (for its store, engine and texts), the user's text, the session
state (changed in place and saved by the dialogue), the reply language, the session id and the
channel, and returns a :class:`~assistant.dialogue.Reply` whose ``intent`` is the act it performed
("to_team", "human", "status", "faq"), or None to let the dialogue go on as if it had not been asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._messages import say, suggestions

if TYPE_CHECKING:  # pragma: no cover
    from ._state import SessionState
    from .dialogue import Assistant, Reply


class TeamHooks(Protocol):
    def thread_open(self, assistant: "Assistant", state: "SessionState", sid: str, channel: str) -> bool:
        """True while staff have written to this user and the thread is not closed: the user's
        messages that are not a new search go to it (intent ``to_team``)."""

    def leaves_thread(self, assistant: "Assistant", text: str, state: "SessionState", sid: str, channel: str) -> bool:
        """Whether a message read as a new search inside an open thread really leaves it (else it is
        an answer to staff that happens to name a sector or a place)."""

    def leave_thread(self, assistant: "Assistant", state: "SessionState", sid: str, channel: str) -> None:
        """The user started a new search inside a thread: their next messages are searches again
        until staff write once more."""

    def to_team(self, assistant: "Assistant", text: str, state: "SessionState", lang: str, sid: str,
                channel: str) -> "Reply | None":
        """Post ``text`` to the lead's thread and tell the user it was sent."""

    def human(self, assistant: "Assistant", text: str, state: "SessionState", lang: str, sid: str,
              channel: str) -> "Reply | None":
        """Talk to a person: open a lead without a search (or with the search that found nothing)."""

    def status(self, assistant: "Assistant", text: str, state: "SessionState", lang: str, sid: str,
               channel: str) -> "Reply | None":
        """The status of this user's request(s), in ``lang``."""

    def faq(self, assistant: "Assistant", text: str, state: "SessionState", lang: str, sid: str,
            channel: str) -> "Reply | None":
        """The staff's answer to a question about the alliance or the service; None when there is none."""


class NoTeam:
    """The dialogue alone: no threads, and plain answers for the rest."""

    def thread_open(self, assistant, state, sid, channel) -> bool:
        return False

    def leaves_thread(self, assistant, text, state, sid, channel) -> bool:
        return True

    def leave_thread(self, assistant, state, sid, channel) -> None:
        return None

    def to_team(self, assistant, text, state, lang, sid, channel):
        return None

    def human(self, assistant, text, state, lang, sid, channel):
        from .dialogue import Reply

        return Reply(say("human_without_team", lang), lang, "human", suggestions=suggestions("start", lang))

    def status(self, assistant, text, state, lang, sid, channel):
        from .dialogue import Reply

        mine = [lead for lead in assistant.store.leads() if lead.get("session_id") == sid]
        if not mine:
            return Reply(say("status_none", lang), lang, "status", suggestions=suggestions("start", lang))
        lead = mine[0]  # newest first
        status = say("status_" + lead.get("status", "new"), lang) if lead.get("status") in STATUSES else lead.get("status", "")
        return Reply(say("status_lead", lang, lead=lead["id"], status=status), lang, "status")

    def faq(self, assistant, text, state, lang, sid, channel):
        from .dialogue import Reply

        return Reply(say("faq_unknown", lang), lang, "faq", suggestions=suggestions("start", lang))


STATUSES = ("new", "contacted", "introduced", "closed")
