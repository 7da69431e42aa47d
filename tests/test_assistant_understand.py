"""Intents as components: rules, the exemplar classifier over the real encoder, the fallback, the combiner."""

import json

import pytest

from assistant._understand import (GAP, INTENTS, Context, Intent, IntentClassifier, Rule, Understanding, fallback,
                                   language_asked, load_exemplars)


@pytest.fixture(scope="module")
def classifier(encoder):
    return IntentClassifier(encoder)


def test_exemplars_cover_every_intent_in_three_languages():
    rows = load_exemplars()
    by = {(r["intent"], r["lang"]) for r in rows}
    for intent in ("search", "refine", "more", "back", "details", "interest", "human", "status", "to_team", "faq",
                   "smalltalk", "language", "erase", "help", "out_of_scope"):
        assert {(intent, lang) for lang in ("pt", "zh", "en")} <= by, intent


def test_bad_exemplar_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "intents.jsonl"
    path.write_text(json.dumps({"intent": "search", "lang": "pt", "text": "x"}) + "\n"
                    + json.dumps({"intent": "shopping", "lang": "pt", "text": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        load_exemplars(path)


@pytest.mark.parametrize("text, intent", [
    ("quanto custa este serviço?", "faq"), ("what is the CPC Alliance?", "faq"), ("como me torno membro da aliança?", "faq"),
    ("quero falar com uma pessoa", "human"), ("I want to talk to a human", "human"), ("我想和工作人员联系", "human"),
    ("我的请求进展如何？", "status"), ("What is the status of my request?", "status"),
    ("only in the North", "refine"), ("只要北部的", "refine"),
    ("Olá, tudo bem?", "smalltalk"), ("can you answer in English?", "language"), ("请用中文回复", "language"),
    ("precisamos de parceiros para cerâmica", "search"), ("tell me a joke about cats", "out_of_scope"),
])
def test_classifier_reads_messages_no_rule_was_written_for(classifier, text, intent):
    ranking, best = classifier.rank(text)
    assert ranking[0][0] == intent, ranking[:3]
    assert abs(sum(c for _, c in ranking) - 1.0) < 1e-5


def test_exemplar_vectors_are_computed_once_per_encoder(encoder, classifier):
    again = IntentClassifier(encoder)
    assert again.vectors is classifier.vectors


def test_fallback_threshold_and_ambiguity_gap():
    ctx = Context(has_query=True)
    raw = {"search": 0.92, "refine": 0.92 - GAP / 2, "faq": 0.80}
    unclear = fallback([("search", 0.5), ("refine", 0.4), ("faq", 0.1)], 0.92, raw, ctx)
    assert unclear.name == "clarify" and unclear.source == "fallback"
    assert fallback([("search", 0.5), ("refine", 0.4)], 0.92, raw, Context(has_query=False)).name == "search"
    assert fallback([("faq", 0.9), ("search", 0.1)], 0.70, raw, ctx).name == "out_of_scope"  # nothing close enough
    clear = fallback([("faq", 0.9), ("search", 0.1)], 0.95, {"faq": 0.95, "search": 0.85}, ctx)
    assert (clear.name, clear.source) == ("faq", "model")


def test_rules_override_the_model_by_priority():
    class Fixed:
        names = ["faq", "search", "refine"]

        def scores(self, text):
            return {"faq": 0.97, "search": 0.80, "refine": 0.79}

        def rank(self, text, allowed=None):
            return [("faq", 0.99), ("search", 0.01)], 0.97

    rules = [Rule("more", lambda t, c: {} if t == "mais" else None, priority=1),
             Rule("search", lambda t, c: {"body": t} if "moldes" in t else None, priority=5)]
    understanding = Understanding(rules, lambda: Fixed())
    assert understanding.read("mais", Context()) == Intent("more", 1.0)
    assert understanding.read("moldes e mais", Context()).name == "search"  # the higher priority wins
    reading = understanding.read("quanto custa?", Context())
    assert (reading.name, reading.source) == ("faq", "model")


def test_readings_that_need_a_list_are_not_offered_without_one(classifier):
    understanding = Understanding([], lambda: classifier)
    assert understanding.model("mais", Context(has_query=False)).name not in ("more", "refine", "back", "details")
    assert understanding.model("to_team check", Context(thread=False)).name != "to_team"


@pytest.mark.parametrize("text, lang", [("can you answer in English?", "en"), ("请用中文回复", "zh"),
                                        ("pode responder em português?", "pt"), ("English please", "en"),
                                        ("fabricantes de moldes na China", None)])
def test_language_asked(text, lang):
    assert language_asked(text) == lang


def test_intent_names_are_the_chat_acts():
    from eval._chats import ACTS

    assert set(INTENTS) - {"contact"} <= set(ACTS) | {"contact"}
