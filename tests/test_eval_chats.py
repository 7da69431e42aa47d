"""Chat evaluation in the extended format: loading, acts, staff messages, pass rates per group."""

import json

import pytest

from eval._chats import format_chats, load_chats, run_conversations, select_chats
from eval._dataset import DatasetError

from conftest import DATA

IDS = {"pt-apcor", "pt-corticeira-amorim", "cn-catl"}


def write(tmp_path, *lines):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    return path


def test_old_and_extended_lines_load(tmp_path):
    old = {"id": "a", "turns": [{"user": "cork"}], "expect": [{"lang": "en", "any_of": ["pt-apcor"]}]}
    new = {"id": "b", "channel": "wechat", "style": ["short", "traditional"], "split": "tune",
           "turns": [{"user": "葡萄牙軟木"}, {"user": "好的", "staff_before": "您好"}],
           "expect": [{"lang": "zh", "act": "search"}, {"lang": "zh", "act": "to_team"}]}
    chats = load_chats(write(tmp_path, old, new), IDS)
    assert [c["id"] for c in chats] == ["a", "b"]
    assert [c["id"] for c in select_chats(chats, "tune")] == ["b"]
    assert select_chats([old], "test") == [old]  # a file without splits is kept whole


@pytest.mark.parametrize("bad, field", [
    ({"channel": "sms"}, "channel"), ({"split": "dev"}, "split"), ({"style": "short"}, "style"),
    ({"expect": [{"lang": "en", "act": "dance"}]}, "expect[0].act"),
    ({"turns": [{"user": "x", "staff_before": ""}]}, "turns[0].staff_before"),
])
def test_bad_extended_fields_are_refused_with_their_line(tmp_path, bad, field):
    line = {"id": "c", "turns": [{"user": "x"}], "expect": [{"lang": "en"}], **bad}
    with pytest.raises(DatasetError) as err:
        load_chats(write(tmp_path, {"id": "ok", "turns": [{"user": "y"}], "expect": [{"lang": "en"}]}, line), IDS)
    assert err.value.line == 2 and err.value.field == field


def test_acts_staff_messages_and_groups(shipped_engine):
    chats = [
        {"id": "w1", "channel": "web", "style": ["short"], "split": "tune",
         "turns": [{"user": "Portuguese cork companies"}, {"user": "more"}, {"user": "tell me a joke", "staff_before": "Hello!"}],
         "expect": [{"lang": "en", "act": "search", "any_of": ["pt-apcor", "pt-corticeira-amorim"]},
                    {"lang": "en", "act": "more"}, {"lang": "en", "act": "search"}]},
        {"id": "t1", "channel": "telegram", "style": ["faq"], "split": "test",
         "turns": [{"user": "quanto custa este serviço?"}], "expect": [{"lang": "pt", "act": "faq"}]},
    ]
    data = run_conversations(chats, shipped_engine)
    assert (data["turns"], data["passed"]) == (4, 3)
    (failure,) = data["failures"]
    assert failure["conversation"] == "w1" and failure["turn"] == 3 and "act to_team, expected search" in failure["problems"]  # after staff wrote, it goes to them
    assert data["by_split"] == {"test": {"turns": 1, "passed": 1, "rate": 1.0}, "tune": {"turns": 3, "passed": 2, "rate": 0.6667}}
    assert data["by_channel"]["telegram"]["passed"] == 1 and data["by_act"]["more"]["passed"] == 1
    assert set(data["by_style"]) == {"short", "faq"}
    text = format_chats(data)
    assert "3 of 4 turns" in text and "by act:" in text and "w1#3" in text


def test_own_tune_conversations_pass(shipped_engine):
    """The issue's phrasings, written for this change (split tune): intents by meaning, places in
    three languages, details of two, back to the same list, FAQ, a person, status, contact in one message."""

    path = DATA / "chats_understand.jsonl"
    chats = load_chats(path, set(shipped_engine.records))
    data = run_conversations(chats, shipped_engine)
    assert data["rate"] >= 0.9, format_chats(data)
