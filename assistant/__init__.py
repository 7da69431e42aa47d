"""The assistant over the search core: dialogue, HTTP app and the `cpc` command.

What the packages on top (connectors, eval) use is exported here; the modules starting with
``_`` are internal. Exports load on first use, so importing a submodule stays cheap.
"""

from importlib import import_module

_EXPORTS = {
    "Assistant": ".dialogue", "Reply": ".dialogue",
    "say": "._messages", "suggestions": "._messages",
    "MORE": "._intents", "clean": "._intents",
    "TokenBuckets": "._limits", "retry_after": "._limits",
    "StateStore": "._state", "SQLiteStateStore": "._state", "SessionConflict": "._state",
    "open_state_store": "._state",
    "open_catalog": ".app", "Settings": ".settings", "settings_from_args": ".cli",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
