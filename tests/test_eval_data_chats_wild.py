"""eval/data/chats-wild: the conversations in real users' styles hold to the extended chat format.

The file is read here line by line with json, not through eval's loader: the loader is being
extended for the new keys (channel, style, split, staff_before, act), and a dataset that only
the loader under test can read would check nothing. No embeddings, no assistant: this checks
the data, so that a runner's figure on it means what it says.
"""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "eval" / "data" / "chats-wild"
CHANNELS = {"web", "telegram", "wechat"}
LANGS = {"pt", "zh", "en"}
SPLITS = {"tune", "test"}
ACTS = {"search", "refine", "more", "details", "back", "interest", "contact", "lead", "to_team", "human", "status",
        "faq", "smalltalk", "clarify", "language", "out_of_scope", "erase", "help"}
RESULT_ACTS = {"search", "refine", "more", "back"}  # acts whose reply is a list of results
TURN_KEYS = {"user", "staff_before"}
EXPECT_KEYS = {"lang", "act", "any_of", "none_of", "no_results"}
LINE_KEYS = {"id", "channel", "style", "split", "turns", "expect"}


def _chats() -> list[dict]:
    lines = (FOLDER / "chats.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines and all(line.strip() for line in lines), "no blank lines, and at least one conversation"
    out = []
    for n, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"chats.jsonl:{n}: not JSON ({exc.msg})")
        assert isinstance(obj, dict), f"chats.jsonl:{n}: not an object"
        out.append(obj)
    return out


def _corpus_ids() -> set[str]:
    return {json.loads(line)["id"] for line in (FOLDER / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}


CHATS = _chats()
IDS = _corpus_ids()


def test_corpus_is_the_shipped_original_language_corpus_byte_for_byte():
    assert (FOLDER / "corpus.jsonl").read_bytes() == (ROOT / "eval" / "data" / "needs" / "corpus.jsonl").read_bytes()
    assert len(IDS) == 63


def test_the_dataset_loader_finds_the_folder_complete():
    """queries.jsonl and qrels.tsv are there only because the loader needs them: copies of needs/."""
    for name in ("queries.jsonl", "qrels.tsv"):
        assert (FOLDER / name).read_bytes() == (ROOT / "eval" / "data" / "needs" / name).read_bytes()


def test_enough_conversations_and_turns():
    assert len(CHATS) >= 44
    assert sum(len(c["turns"]) for c in CHATS) >= 170


@pytest.mark.parametrize("conv", CHATS, ids=[c.get("id", "?") for c in CHATS])
def test_each_line_has_the_extended_format(conv):
    assert set(conv) == LINE_KEYS
    assert isinstance(conv["id"], str) and re.fullmatch(r"cw-(pt|zh|en)-\d{2}", conv["id"])
    assert conv["channel"] in CHANNELS
    assert conv["split"] in SPLITS
    assert isinstance(conv["style"], list) and conv["style"] and all(isinstance(s, str) and s for s in conv["style"])
    turns, expect = conv["turns"], conv["expect"]
    assert isinstance(turns, list) and turns
    assert isinstance(expect, list) and len(expect) == len(turns), "one expect per turn"
    for turn in turns:
        assert isinstance(turn, dict) and set(turn) <= TURN_KEYS and "user" in turn
        assert isinstance(turn["user"], str) and turn["user"].strip()
        if "staff_before" in turn:
            assert isinstance(turn["staff_before"], str) and turn["staff_before"].strip()
    for exp in expect:
        assert isinstance(exp, dict) and set(exp) <= EXPECT_KEYS
        assert exp["lang"] in LANGS
        assert exp["act"] in ACTS
        for key in ("any_of", "none_of"):
            ids = exp.get(key, [])
            assert isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            assert not set(ids) - IDS, f"unknown ids in {key}: {sorted(set(ids) - IDS)}"
            assert len(ids) == len(set(ids)), f"duplicate ids in {key}"
        assert not set(exp.get("any_of", [])) & set(exp.get("none_of", [])), "an id both wanted and banned"
        if "no_results" in exp:
            assert exp["no_results"] is True and not exp.get("any_of")
        if exp.get("any_of") or exp.get("no_results"):
            assert exp["act"] in RESULT_ACTS, "results are judged only where a list is the answer"


def test_conversation_ids_are_unique_and_name_the_users_language():
    ids = [c["id"] for c in CHATS]
    assert len(ids) == len(set(ids))
    for c in CHATS:
        assert c["expect"][0]["lang"] == c["id"][3:5], "a conversation is named after the language it opens in"


def test_both_halves_hold_every_language_channel_and_flow():
    for split in SPLITS:
        half = [c for c in CHATS if c["split"] == split]
        assert {c["id"][3:5] for c in half} == LANGS
        assert {c["channel"] for c in half} == CHANNELS
        acts = Counter(e["act"] for c in half for e in c["expect"])
        for act in ("search", "refine", "more", "details", "interest", "contact", "lead", "to_team", "human", "status",
                    "faq", "smalltalk", "language"):
            assert acts[act], f"no '{act}' turn in the {split} half"
    sizes = Counter(c["split"] for c in CHATS)
    assert abs(sizes["tune"] - sizes["test"]) <= 2


def test_every_language_meets_every_channel():
    cells = Counter((c["id"][3:5], c["channel"]) for c in CHATS)
    assert set(cells) == {(lang, ch) for lang in LANGS for ch in CHANNELS}
    assert min(cells.values()) >= 4


def test_team_turns_follow_a_staff_message_or_a_thread():
    """to_team is only expected where staff wrote first (staff_before) earlier in the conversation or in that turn."""
    for c in CHATS:
        staff_seen = False
        for turn, exp in zip(c["turns"], c["expect"]):
            staff_seen = staff_seen or "staff_before" in turn
            if exp["act"] == "to_team":
                assert staff_seen, f"{c['id']}: to_team with no staff message before it"
            if "staff_before" in turn:
                assert exp["act"] == "to_team", f"{c['id']}: an answer to staff must go to the team"


def test_status_is_asked_only_once_a_request_exists():
    """A request exists after a recorded lead, a talk-to-a-person turn, or a staff message (the runner records one)."""
    for c in CHATS:
        lead = False
        for turn, exp in zip(c["turns"], c["expect"]):
            lead = lead or "staff_before" in turn
            if exp["act"] == "status":
                assert lead, f"{c['id']}: status asked before any request"
            lead = lead or exp["act"] in ("lead", "human")


def test_personal_details_are_invented():
    """Only example.com e-mail addresses; no phone numbers that could reach someone."""
    for c in CHATS:
        for turn in c["turns"]:
            for text in (turn["user"], turn.get("staff_before", "")):
                for address in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text):
                    assert address.endswith("@example.com"), address
                assert not re.search(r"\d{7,}", re.sub(r"\s", "", text)), f"{c['id']}: a phone-like number"
