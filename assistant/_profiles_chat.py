"""The profile dialogue as the assistant runs it: what ``dialogue.py`` calls, kept here so the
dialogue only routes (an intent ``profile``, a draft in the session, "delete my data").

The steps themselves are pure (``_profiles.chat_turn``); this module reads and writes the store
and, to delete a published profile, calls ``assistant.unpublish`` (the service's write process,
set by ``_profiles_api``; None in a process without one, where a published profile is kept).
"""

from __future__ import annotations

import logging
from typing import Any

from . import _profiles as profiles
from ._messages import suggestions

log = logging.getLogger("cpc.profiles")


def _remove(assistant, profile: dict[str, Any]) -> None:
    """Out of the index first (when published), then the row: never a row gone and a record left."""
    if profile.get("published"):
        if assistant.unpublish is None:
            raise RuntimeError("no write process in this process")
        assistant.unpublish(profile)
    assistant.store.delete_profile(profile["id"])


def start(assistant, state, lang: str, sid: str, channel: str):
    """ "Add my company" / "my profile": the web chat opens the form; Telegram and WeChat ask one
    question at a time, or list the identity's profiles with edit / delete."""
    from .dialogue import Reply  # the dialogue imports this module

    found = profiles.profiles_of(assistant.store, channel, sid)
    if channel == "web" and not found:
        return Reply(profiles.say("web_form", lang), lang, "profile", form={"step": "profile_form", "url": f"/join?lang={lang}"},
                     step="profile_form")
    draft, step = profiles.menu(lang, found) if found else profiles.start(lang)
    state.profile = draft
    return Reply(step.text, lang, "profile", suggestions=step.suggestions, step=step.step)


def turn(assistant, text: str, state, sid: str, channel: str):
    """One answer while a draft (or the owner's menu) is in the session."""
    from .dialogue import Reply

    draft = state.profile
    lang = draft["lang"]
    store = assistant.store
    mine = {p["id"]: p for p in store.profiles(channel=channel, owner=sid)}
    step = profiles.chat_turn(draft, text, {i: p["data"].get("name", "") for i, p in mine.items()})
    if step.restart is not None:
        action, pid = step.restart
        draft, step = profiles.start(lang, mine[pid]["data"], edit=pid) if action == "edit" and pid in mine else profiles.start(lang)
        state.profile = draft
    elif step.done:
        state.profile = None
    if step.submit is not None:  # consented: stored now, never before
        sub = step.submit
        email = sub["data"]["contact"] if "@" in sub["data"]["contact"] else None
        if sub["edit"] is not None and sub["edit"] in mine:
            pid = sub["edit"]
            store.update_profile(pid, data=sub["data"], status="pending", consent_at=sub["consent_at"], email=email)
        else:
            pid = store.add_profile(channel, sid, lang, sub["data"], sub["consent_at"], email=email)
        step.text = profiles.say("submitted", lang, id=pid, name=sub["data"]["name"])
    if step.delete is not None:
        try:
            if step.delete in mine:
                _remove(assistant, mine[step.delete])
            step.text = profiles.say("deleted", lang, id=step.delete)
        except Exception:
            log.exception("deleting profile %s failed", step.delete)
            step.text = profiles.say("delete_failed", lang)
    chips = step.suggestions or (suggestions("start", lang) if step.done else [])
    return Reply(step.text, lang, "profile", suggestions=chips, step=step.step)


def erase(assistant, sid: str, channel: str) -> None:
    """ "Delete my data" takes the identity's profiles too (a published one that cannot leave the
    index here is kept, and logged)."""
    for p in assistant.store.profiles(channel=channel, owner=sid):
        try:
            _remove(assistant, p)
        except Exception:
            log.exception("profile %s was not erased", p["id"])
