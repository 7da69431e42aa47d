"""Chat evaluation: scripted conversations (chats.jsonl) run through the real assistant.

A line is ``{"id", "turns", "expect"}`` with, in the extended format, ``"channel"`` (web, telegram,
wechat; web when absent), ``"style"`` (tags), ``"split"`` (tune/test), turns that may carry
``"staff_before"`` (a message the alliance staff send to this user's lead before the turn: the
runner records a lead if there is none and posts it) and expects that may name an ``"act"``
(what the reply must do, checked against ``Reply.intent``).

Each turn passes when the reply is in the expected language, does the expected act (when one is
given), at least one ``any_of`` id is among that turn's results (when any are given), no
``none_of`` id is, and a turn marked ``no_results`` shows no results at all. Pass rates are
reported overall and per split, language, channel, style and act.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from corpus import jsonl_lines

from ._dataset import Dataset, DatasetError

LANGS = ("pt", "zh", "en")
CHANNELS = ("web", "telegram", "wechat")
SPLITS = ("tune", "test")
ACTS = ("search", "refine", "more", "details", "back", "interest", "contact", "lead", "to_team", "human", "status",
        "faq", "smalltalk", "clarify", "language", "out_of_scope", "erase", "help", "mine", "profile", "publish")
GROUPS = ("split", "lang", "channel", "style", "act")


def load_chats(path: Path, known_ids: set[str]) -> list[dict[str, Any]]:
    chats: list[dict[str, Any]] = []
    seen: set[str] = set()

    def fail(line: int, field: str, message: str) -> DatasetError:
        return DatasetError(str(path), line, field, message)

    for lineno, line in enumerate(jsonl_lines(path.read_text(encoding="utf-8-sig")), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise fail(lineno, "-", f"not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise fail(lineno, "-", "a line must hold one JSON object")
        cid = obj.get("id")
        if not isinstance(cid, str) or not cid:
            raise fail(lineno, "id", "missing or empty")
        if cid in seen:
            raise fail(lineno, "id", f"duplicate conversation id '{cid}'")
        seen.add(cid)
        if obj.get("channel", "web") not in CHANNELS:
            raise fail(lineno, "channel", f"must be one of {', '.join(CHANNELS)}")
        if "split" in obj and obj["split"] not in SPLITS:
            raise fail(lineno, "split", f"must be one of {', '.join(SPLITS)}")
        style = obj.get("style", [])
        if not isinstance(style, list) or not all(isinstance(s, str) for s in style):
            raise fail(lineno, "style", "must be a list of tags")
        turns, expect = obj.get("turns"), obj.get("expect")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, dict) and isinstance(t.get("user"), str) for t in turns):
            raise fail(lineno, "turns", 'must be a non-empty list of {"user": text}')
        for i, t in enumerate(turns):
            if "staff_before" in t and (not isinstance(t["staff_before"], str) or not t["staff_before"].strip()):
                raise fail(lineno, f"turns[{i}].staff_before", "must be a non-empty text")
        if not isinstance(expect, list) or len(expect) != len(turns):
            raise fail(lineno, "expect", f"must be a list with one entry per turn ({len(turns)})")
        for i, exp in enumerate(expect):
            if not isinstance(exp, dict) or exp.get("lang") not in LANGS:
                raise fail(lineno, f"expect[{i}].lang", f"must be one of {', '.join(LANGS)}")
            if not isinstance(exp.get("no_results", False), bool):
                raise fail(lineno, f"expect[{i}].no_results", "must be true or false")
            if "act" in exp and exp["act"] not in ACTS:
                raise fail(lineno, f"expect[{i}].act", f"must be one of {', '.join(ACTS)}")
            for key in ("any_of", "none_of"):
                ids = exp.get(key, [])
                if not isinstance(ids, list):
                    raise fail(lineno, f"expect[{i}].{key}", "must be a list of ids")
                unknown = [x for x in ids if x not in known_ids]
                if unknown:
                    raise fail(lineno, f"expect[{i}].{key}", f"unknown id(s): {', '.join(map(str, unknown[:5]))}")
        chats.append(obj)
    return chats


def check_turn(reply, exp: dict[str, Any]) -> list[str]:
    """What is wrong with one reply against its expectation (nothing: the turn passes)."""
    ids = [c.id for c in reply.results]
    problems = []
    if reply.lang != exp["lang"]:
        problems.append(f"language {reply.lang}, expected {exp['lang']}")
    if exp.get("act") and reply.intent != exp["act"]:
        problems.append(f"act {reply.intent}, expected {exp['act']}")
    if exp.get("any_of") and not set(ids) & set(exp["any_of"]):
        problems.append("none of the expected organisations")
    if exp.get("no_results") and ids:
        problems.append(f"{len(ids)} result(s) where nothing fits")
    banned = sorted(set(ids) & set(exp.get("none_of", [])))
    if banned:
        problems.append("unwanted: " + ", ".join(banned))
    return problems


def _staff_message(bot, store, sid: str, channel: str, text: str, records) -> None:
    """What staff send before a turn: posted to this session's newest lead (one is recorded if
    there is none, as a staff member opening a conversation would)."""
    mine = [lead for lead in store.leads(limit=1000) if lead["session_id"] == sid]
    if mine:
        lead_id = mine[0]["id"]
    else:
        state = store.load(sid)
        org_id = state.focus or (state.shown[0] if state.shown else next(iter(records)))
        rec = records[org_id]
        lead_id = store.add_lead(sid, channel, org_id, rec.name, state.lang or "en", "(recorded by the chat evaluation)")
    store.add_staff_message(lead_id, sid, channel, text, "eval", author="eval")


def run_conversations(chats: list[dict[str, Any]], engine: Any, team: Any = None) -> dict:
    """Run each conversation in a fresh session on its channel; pass rates overall and per group."""
    from assistant import Assistant, SQLiteStateStore

    turns = passed = 0
    failures: list[dict[str, Any]] = []
    groups: dict[str, dict[str, list[int]]] = {g: {} for g in GROUPS}

    def count(group: str, key: str, ok: bool) -> None:
        cell = groups[group].setdefault(key, [0, 0])
        cell[0] += ok
        cell[1] += 1

    with tempfile.TemporaryDirectory(prefix="cpc-chats-") as tmp:
        store = SQLiteStateStore(Path(tmp) / "state.sqlite")
        bot = Assistant(engine, store, team=team) if team is not None else Assistant(engine, store)
        for conv in chats:
            channel = conv.get("channel", "web")
            sid = f"eval-{channel}-{conv['id']}"
            for i, (turn, exp) in enumerate(zip(conv["turns"], conv["expect"])):
                if turn.get("staff_before"):
                    _staff_message(bot, store, sid, channel, turn["staff_before"], engine.records)
                reply = bot.respond(sid, turn["user"], channel)
                problems = check_turn(reply, exp)
                ok = not problems
                turns += 1
                passed += ok
                count("split", conv.get("split", "-"), ok)
                count("lang", exp["lang"], ok)
                count("channel", channel, ok)
                for tag in conv.get("style", []) or ["-"]:
                    count("style", tag, ok)
                count("act", exp.get("act", "-"), ok)
                if not ok:
                    failures.append({"conversation": conv["id"], "turn": i + 1, "user": turn["user"][:200],
                                     "intent": reply.intent, "results": [c.id for c in reply.results][:5],
                                     "problems": problems})
        store.close()

    def rates(cells: dict[str, list[int]]) -> dict[str, dict]:
        return {k: {"turns": v[1], "passed": v[0], "rate": round(v[0] / v[1], 4)} for k, v in sorted(cells.items())}

    out = {
        "conversations": len(chats),
        "turns": turns,
        "passed": passed,
        "rate": round(passed / turns, 4) if turns else None,
        "by_lang": rates(groups["lang"]),
    }
    for g in ("split", "channel", "style", "act"):
        out[f"by_{g}"] = rates(groups[g])
    out["failures"] = failures
    return out


def select_chats(chats: list[dict[str, Any]], split: str = "all") -> list[dict[str, Any]]:
    """The conversations of one split; files without splits (the older format) are kept whole."""
    if split == "all" or not any("split" in c for c in chats):
        return chats
    return [c for c in chats if c.get("split") == split]


def run_chats(dataset: Dataset, engine: Any) -> dict | None:
    """Run every conversation in a fresh session; None when the dataset has no chats.jsonl."""
    if dataset.chats_path is None:
        return None
    chats = load_chats(dataset.chats_path, {r.id for r in dataset.records})
    return run_conversations(select_chats(chats, getattr(dataset, "split", "all")), engine)


def format_chats(data: dict) -> str:
    """The chat figures as text: overall, then one line per group."""
    lines = [f"chats: {data['passed']} of {data['turns']} turns passed ({_pct(data['rate'])}) in {data['conversations']} conversations"]
    for g in GROUPS:
        cells = data.get(f"by_{g}") or {}
        if cells and list(cells) != ["-"]:
            lines.append(f"  by {g}: " + ", ".join(f"{k} {v['passed']}/{v['turns']} ({_pct(v['rate'])})" for k, v in cells.items()))
    for f in data["failures"][:40]:
        lines.append(f"  ✗ {f['conversation']}#{f['turn']} {f['user'][:70]!r}: {'; '.join(f['problems'])} (got {f['intent']})")
    if len(data["failures"]) > 40:
        lines.append(f"  ... {len(data['failures']) - 40} more failures (--json lists them all)")
    return "\n".join(lines)


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"
