"""Chat evaluation: scripted conversations (chats.jsonl) run through the real assistant.

Each turn passes when the reply is in the expected language, at least one ``any_of`` id is
among that turn's results (when any are given), no ``none_of`` id is, and a turn marked
``no_results`` (nothing in the corpus fits) shows no results at all.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from corpus import jsonl_lines

from ._dataset import Dataset, DatasetError

LANGS = ("pt", "zh", "en")


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
        turns, expect = obj.get("turns"), obj.get("expect")
        if not isinstance(turns, list) or not turns or not all(isinstance(t, dict) and isinstance(t.get("user"), str) for t in turns):
            raise fail(lineno, "turns", 'must be a non-empty list of {"user": text}')
        if not isinstance(expect, list) or len(expect) != len(turns):
            raise fail(lineno, "expect", f"must be a list with one entry per turn ({len(turns)})")
        for i, exp in enumerate(expect):
            if not isinstance(exp, dict) or exp.get("lang") not in LANGS:
                raise fail(lineno, f"expect[{i}].lang", f"must be one of {', '.join(LANGS)}")
            if not isinstance(exp.get("no_results", False), bool):
                raise fail(lineno, f"expect[{i}].no_results", "must be true or false")
            for key in ("any_of", "none_of"):
                ids = exp.get(key, [])
                if not isinstance(ids, list):
                    raise fail(lineno, f"expect[{i}].{key}", "must be a list of ids")
                unknown = [x for x in ids if x not in known_ids]
                if unknown:
                    raise fail(lineno, f"expect[{i}].{key}", f"unknown id(s): {', '.join(map(str, unknown[:5]))}")
        chats.append(obj)
    return chats


def run_chats(dataset: Dataset, engine: Any) -> dict | None:
    """Run every conversation in a fresh session; None when the dataset has no chats.jsonl."""
    if dataset.chats_path is None:
        return None
    from assistant import Assistant, SQLiteStateStore

    chats = load_chats(dataset.chats_path, {r.id for r in dataset.records})
    turns = passed = 0
    failures: list[dict[str, Any]] = []
    by_lang: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="cpc-chats-") as tmp:
        store = SQLiteStateStore(Path(tmp) / "state.sqlite")
        bot = Assistant(engine, store)
        for conv in chats:
            sid = f"eval-{conv['id']}"
            for i, (turn, exp) in enumerate(zip(conv["turns"], conv["expect"])):
                reply = bot.respond(sid, turn["user"], "eval")
                ids = [c.id for c in reply.results]
                problems = []
                if reply.lang != exp["lang"]:
                    problems.append(f"language {reply.lang}, expected {exp['lang']}")
                if exp.get("any_of") and not set(ids) & set(exp["any_of"]):
                    problems.append("none of the expected organisations")
                if exp.get("no_results") and ids:
                    problems.append(f"{len(ids)} result(s) where nothing fits")
                banned = sorted(set(ids) & set(exp.get("none_of", [])))
                if banned:
                    problems.append("unwanted: " + ", ".join(banned))
                turns += 1
                ok = not problems
                passed += ok
                by_lang.setdefault(exp["lang"], [0, 0])
                by_lang[exp["lang"]][0] += ok
                by_lang[exp["lang"]][1] += 1
                if not ok:
                    failures.append({"conversation": conv["id"], "turn": i + 1, "user": turn["user"],
                                     "intent": reply.intent, "results": ids[:5], "problems": problems})
        store.close()
    return {
        "conversations": len(chats),
        "turns": turns,
        "passed": passed,
        "rate": round(passed / turns, 4) if turns else None,
        "by_lang": {k: {"turns": v[1], "passed": v[0], "rate": round(v[0] / v[1], 4)} for k, v in sorted(by_lang.items())},
        "failures": failures,
    }
