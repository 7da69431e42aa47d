"""Contact capture in the dialogue (no HTTP): consent first, validation with clear re-asks,
corrections, several organisations, cancel, and "delete my data", in pt, zh and en."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from assistant import _contact as contact
from assistant._state import SessionState, SQLiteStateStore
from assistant.dialogue import Assistant



def rows(store, sql, *args):
    db = sqlite3.connect(store.path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# Each language: the search, interest in two results, consent with the conversation, answers, and
# the words it must use on the way (a PIPL/GDPR mention, the summary and the done message).
FLOWS = {
    "pt": dict(search="fabricantes de moldes na China", interest=["tenho interesse no 1", "tenho interesse no 3"],
               consent="sim, com a conversa", name="Ana Silva", org="Moldes Leiria Lda", contact="ana.silva@moldes-leiria.pt",
               need="ok", send="enviar", law="RGPD", summary="Confirme o pedido", done="Pedido n.º"),
    "zh": dict(search="我们想找葡萄牙的软木合作伙伴", interest=["我对第1个感兴趣", "我对第2个感兴趣"],
               consent="同意并分享对话", name="王芳", org="宁波海天塑机", contact="+86 138 0013 8000",
               need="寻找葡萄牙软木供应商，用于酒塞生产", send="确认", law="个人信息保护法", summary="请确认", done="编号"),
    "en": dict(search="Portuguese cork companies", interest=["I'm interested in 2", "I'm interested in 1"],
               consent="yes, with the conversation", name="John Smith", org="Acme Bottling Ltd", contact="john@acme.co.uk",
               need="cork stoppers for 2 million bottles a year", send="send", law="GDPR", summary="Please confirm", done="Request no."),
}


@pytest.mark.parametrize("lang", FLOWS)
def test_consented_request_carries_name_contact_need_and_organisations(bot, store, lang):
    f = FLOWS[lang]
    sid = f"s-{lang}"
    first = bot.respond(sid, f["search"], "web")
    ask = bot.respond(sid, f["interest"][0], "web")
    assert ask.step == "contact_consent" and not ask.handoff and ask.lang == lang
    assert f["law"] in ask.text and ask.suggestions and ask.form["step"] == "consent"
    assert store.leads() == []  # nothing stored before consent
    added = bot.respond(sid, f["interest"][1], "web")
    assert added.step == "contact_consent"
    for text, intent in [(f["consent"], "contact_name"), (f["name"], "contact_org"), (f["org"], "contact_contact"),
                         (f["contact"], "contact_need"), (f["need"], "contact_confirm")]:
        reply = bot.respond(sid, text, "web")
        assert reply.step == intent and reply.lang == lang, (text, reply.text)
    assert f["summary"] in reply.text and f["name"] in reply.text
    assert store.leads() == []
    done = bot.respond(sid, f["send"], "web")
    assert done.intent == "lead" and done.handoff and done.lead_id and f["done"] in done.text
    (lead,) = store.leads()
    chosen = [first.results[int(re.search(r"\d", t).group()) - 1].id for t in f["interest"]]
    assert [o["id"] for o in lead["organisations"]] == chosen and lead["org_id"] == chosen[0]
    assert (lead["name"], lead["asker_org"], lead["lang"], lead["channel"]) == (f["name"], f["org"], lang, "web")
    expected_contact = f["contact"].replace(" ", "")
    assert lead["contact"] == expected_contact and lead["contact_kind"] == ("phone" if lang == "zh" else "email")
    assert lead["need"] == (f["search"] if f["need"] == "ok" else f["need"])
    assert lead["conversation"][0][1] == f["search"]  # shared on consent: the turns before the request
    assert lead["consent_at"] and lead["status"] == "new"
    assert bot.store.load(sid).capture is None


BAD = [
    # (step reached by these answers, the bad input, a word the re-ask must contain)
    ("name", "", "nothing"), ("name", "   ", "nothing"), ("name", "<script>alert(1)</script>", "plain text"),
    ("name", "x" * 5000, "too long"), ("name", "12345", "name"),
    ("org", "<b>Acme</b>", "plain text"), ("org", "y" * 200, "too long"),
    ("contact", "ana@", "valid e-mail"), ("contact", "ana@@x.pt", "valid e-mail"), ("contact", "ana@x", "valid e-mail"),
    ("contact", "12-34", "phone number"), ("contact", "+351 91 234 567 890 123 45", "phone number"),
    ("contact", "call me maybe", "reach you"), ("contact", "<img src=x onerror=alert(1)>", "plain text"),
    ("contact", "z" * 5000, "too long"), ("need", "n" * 400, "too long"), ("need", "<a href='http://x'>x</a>", "plain text"),
]
ANSWERS = {"name": "Mary Jones", "org": "Acme", "contact": "mary@acme.com"}


@pytest.mark.parametrize("step, bad, expected", BAD)
def test_bad_answers_get_a_clear_re_ask_and_change_nothing(bot, store, step, bad, expected):
    sid = f"bad-{step}-{abs(hash(bad))}"
    bot.respond(sid, "Portuguese cork companies", "web")
    bot.respond(sid, "I'm interested in 1", "web")
    bot.respond(sid, "yes", "web")
    for key in ("name", "org", "contact"):
        if key == step:
            break
        bot.respond(sid, ANSWERS[key], "web")
    reply = bot.respond(sid, bad, "web")
    assert reply.step == "contact_invalid" and expected in reply.text.lower(), reply.text
    assert bot.store.load(sid).capture["step"] == step and not bot.store.load(sid).capture.get(step)
    assert "<" not in reply.text
    assert store.leads() == []


@pytest.mark.parametrize("lang, search, interest, cancel", [
    ("pt", "fabricantes de moldes na China", "tenho interesse no 1", "cancelar"),
    ("zh", "葡萄牙的模具企业", "我对第1个感兴趣", "取消"),
    ("en", "Chinese mould clusters", "I'm interested in 1", "cancel"),
])
def test_cancel_leaves_nothing_stored(bot, store, lang, search, interest, cancel):
    sid = f"cancel-{lang}"
    bot.respond(sid, search, "web")
    bot.respond(sid, interest, "web")
    bot.respond(sid, {"pt": "sim", "zh": "同意", "en": "yes"}[lang], "web")
    bot.respond(sid, "Zé Secret-Name", "web")
    reply = bot.respond(sid, cancel, "web")
    assert reply.step == "contact_cancelled" and reply.lang == lang
    assert store.leads() == []
    (state,) = rows(store, "SELECT state FROM sessions WHERE id = ?", sid)
    assert "Secret-Name" not in state[0] and json.loads(state[0])["capture"] is None


def test_a_cards_interest_button_during_the_questions_adds_the_organisation(bot, store):
    first = bot.respond("add-1", "Portuguese cork companies", "web")
    bot.respond("add-1", "I'm interested in 1", "web")
    bot.respond("add-1", "yes", "web")
    added = bot.respond("add-1", "I'm interested in 3", "web")  # at the name question
    assert added.step == "contact_name" and "added" in added.text
    assert [o[0] for o in bot.store.load("add-1").capture["orgs"]] == [first.results[0].id, first.results[2].id]
    bot.respond("add-1", "Mary Jones", "web")
    bot.respond("add-1", "Acme", "web")
    bot.respond("add-1", "mary@acme.com", "web")
    need = bot.respond("add-1", "We are interested in 2 suppliers for cork stoppers and bark", "web")
    assert need.step == "contact_confirm"  # a long need is the need, not a third organisation
    assert "We are interested in 2 suppliers" in need.text


def test_no_to_consent_cancels(bot, store):
    bot.respond("no-1", "Portuguese cork companies", "web")
    bot.respond("no-1", "I'm interested in 1", "web")
    assert bot.respond("no-1", "no", "web").step == "contact_cancelled"
    assert bot.respond("no-1", "more", "web").intent == "more"  # the conversation goes on


def test_corrections_at_the_summary(bot, store):
    sid = "fix-1"
    bot.respond(sid, "Portuguese cork companies", "web")
    bot.respond(sid, "I'm interested in 1", "web")
    for text in ("yes", "Mary Jones", "Acme", "mary@acme.com", "ok"):
        bot.respond(sid, text, "web")
    again = bot.respond(sid, "change contact", "web")
    assert again.step == "contact_contact"
    summary = bot.respond(sid, "+44 20 7946 0958", "web")
    assert summary.step == "contact_confirm" and "+442079460958" in summary.text
    summary = bot.respond(sid, "organisation: Acme Bottling", "web")
    assert "Acme Bottling" in summary.text
    done = bot.respond(sid, "send", "web")
    (lead,) = store.leads()
    assert done.handoff and lead["contact"] == "+442079460958" and lead["contact_kind"] == "phone"
    assert lead["asker_org"] == "Acme Bottling" and lead["conversation"] is None  # not shared: plain "yes"


def test_web_form_answers_all_fields_in_one_message(bot, store):
    sid = "form-1"
    bot.respond(sid, "fabricantes de moldes na China", "web")
    bot.respond(sid, "tenho interesse no 2", "web")
    bot.respond(sid, "sim", "web")
    reply = bot.respond(sid, "nome: Rui Costa | organização: Plásticos do Lis | contacto: rui@lis.pt | necessidade: moldes para peças automóveis", "web")
    assert reply.step == "contact_confirm" and "Rui Costa" in reply.text
    bad = bot.respond(sid, "nome: Rui | contacto: rui@", "web")
    assert bad.step == "contact_invalid" and "rui@" in bad.text


@pytest.mark.parametrize("channel, here", [("telegram", "here"), ("wechat", "就在这里")])
def test_chat_identity_is_enough_on_telegram_and_wechat(bot, store, channel, here):
    sid = f"{channel[:2]}-42"
    bot.respond(sid, "Portuguese cork companies", channel)
    bot.respond(sid, "I'm interested in 1", channel)
    bot.respond(sid, "yes", channel)
    bot.respond(sid, "Li Wei", channel)
    ask = bot.respond(sid, "Ningbo Corks", channel)
    assert ask.form["channel_identity"] is True and ask.suggestions[0] in ("here", "就在这里")
    bot.respond(sid, here, channel)
    bot.respond(sid, "ok", channel)
    done = bot.respond(sid, "send", channel)
    (lead,) = store.leads()
    assert done.handoff and lead["contact_kind"] == channel and lead["channel"] == channel
    # on the web, "here" is no way to reach anyone
    bot.respond("web-9", "Portuguese cork companies", "web")
    bot.respond("web-9", "I'm interested in 1", "web")
    for text in ("yes", "Li Wei", "Ningbo Corks"):
        bot.respond("web-9", text, "web")
    assert bot.respond("web-9", "here", "web").step == "contact_invalid"


@pytest.mark.parametrize("channel, value, accepted", [
    ("wechat", "用微信", True), ("wechat", "WeChat", True), ("wechat", "telegram", False),
    ("telegram", "telegram", True), ("telegram", "微信", False), ("web", "微信", False),
])
def test_naming_the_channel_is_only_the_chat_itself_on_that_channel(channel, value, accepted):
    cap = {"lang": "zh"}
    problem = contact._set_contact(cap, value, channel)
    assert (problem is None) == accepted and (cap.get("contact_kind") == channel) == accepted


@pytest.mark.parametrize("lang, ask, yes", [("pt", "apagar os meus dados", "sim, apagar"),
                                            ("zh", "删除我的数据", "确认删除"), ("en", "delete my data", "yes, delete")])
def test_delete_my_data_after_confirmation(bot, store, lang, ask, yes):
    sid = f"erase-{lang}"
    bot.respond(sid, "Portuguese cork companies", "telegram")
    bot.respond(sid, "I'm interested in 1", "telegram")
    for text in ("yes", "Mary Jones", "Acme", "mary@acme.com", "ok", "send"):
        bot.respond(sid, text, "telegram")
    store.add_staff_message(store.leads()[0]["id"], sid, "telegram", "hello", "sent")
    other = bot.respond("someone-else", "Portuguese cork companies", "telegram")
    assert other.intent == "search"
    confirm = bot.respond(sid, ask, "telegram")
    assert confirm.step == "privacy_confirm" and confirm.lang == lang
    assert rows(store, "SELECT COUNT(*) FROM leads WHERE session_id = ?", sid) == [(1,)]  # nothing yet
    done = bot.respond(sid, yes, "telegram")
    assert done.step == "privacy_erased" and done.lang == lang
    store.flush_query_log()
    for table, column in (("leads", "session_id"), ("sessions", "id"), ("staff_messages", "session_id")):
        assert rows(store, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", sid) == [(0,)], table
    from assistant._state import user_hash
    assert rows(store, "SELECT COUNT(*) FROM query_log WHERE user_hash = ?", user_hash(store._salt, "telegram", sid)) == [(0,)]
    assert rows(store, "SELECT COUNT(*) FROM sessions WHERE id = 'someone-else'") == [(1,)]  # only that user's


def test_delete_my_data_not_confirmed_deletes_nothing(bot, store):
    bot.respond("keep-1", "Portuguese cork companies", "web")
    bot.respond("keep-1", "delete my data", "web")
    reply = bot.respond("keep-1", "no", "web")
    assert reply.step == "privacy_kept" and "Nothing" in reply.text
    assert rows(store, "SELECT COUNT(*) FROM sessions WHERE id = 'keep-1'") == [(1,)]


@pytest.mark.parametrize("value, kind, stored", [
    ("ana@empresa.pt", "email", "ana@empresa.pt"), ("E-mail: wang.fang@163.com", "email", "wang.fang@163.com"),
    ("+351 912 345 678", "phone", "+351912345678"), ("(21) 555-0100 99", "phone", "21555010099"),
    ("电话：138 0013 8000", "phone", "13800138000"), ("WeChat: ana_silva88", "wechat_id", "ana_silva88"),
    ("微信号：wangfang_2024", "wechat_id", "wangfang_2024"),
])
def test_contact_kinds_are_recognised(value, kind, stored):
    """(The chat itself as the contact is tested above, per channel.)"""
    cap = {"lang": "en"}
    assert contact._set_contact(cap, value, "web") is None
    assert (cap["contact_kind"], cap["contact"]) == (kind, stored)


def test_capture_state_survives_json_round_trip():
    state = SessionState(query="cork")
    contact.start(state, "pt-apcor", "APCOR", "en", "web", "I'm interested in 1")
    again = SessionState.from_json(json.dumps({**state.__dict__}))
    assert again.capture["orgs"] == [["pt-apcor", "APCOR"]] and again.capture["need_default"] == "cork"


# -- details volunteered in one message (assistant/_contact.volunteered) --------------------------
@pytest.mark.parametrize("text, expected", [
    ("Chamo-me Ana Silva, da Moldes Silva Lda, email ana.silva@example.com",
     {"name": "Ana Silva", "org": "Moldes Silva Lda", "contact": "ana.silva@example.com"}),
    ("Chamo-me Ana da Silva, da Moldes Silva Lda, email ana.silva@example.com",
     {"name": "Ana da Silva", "org": "Moldes Silva Lda", "contact": "ana.silva@example.com"}),
    ("微信: wang_huabu88", {"contact": "wechat:wang_huabu88"}),
    ("微信：ana_silva88", {"contact": "wechat:ana_silva88"}),
    ("WeChat：li_wei_2024", {"contact": "wechat:li_wei_2024"}),
    ("我叫王华，来自宁波华布纺织有限公司，微信 wang_huabu88", {"name": "王华", "org": "宁波华布纺织有限公司", "contact": "wechat:wang_huabu88"}),
    ("I am Li Wei from Ningbo Textiles, phone +86 138 0000 0000", {"name": "Li Wei", "org": "Ningbo Textiles", "contact": "+86 138 0000 0000"}),
    ("我是一家纺织企业", {}), ("I am looking for moulds", {}), ("Ana Silva", {}), ("sim", {}),
    ("Plásticos do Lis", {}), ("Moldes do Norte, Lda", {}),  # an organisation named with "do", not after a name
])
def test_volunteered_details_are_read_in_three_languages(text, expected):
    from assistant._contact import volunteered

    assert volunteered(text) == expected


def test_details_in_one_message_after_consent_ask_only_for_what_is_missing(bot, store):
    sid = "vol-1"
    bot.respond(sid, "fabricantes de moldes na China", "web")
    bot.respond(sid, "tenho interesse no 1", "web")
    bot.respond(sid, "sim", "web")
    reply = bot.respond(sid, "Chamo-me Ana Silva, da Moldes Silva Lda, email ana.silva@example.com", "web")
    assert reply.step == "contact_need" and reply.intent == "contact", reply.text  # only the need is left
    cap = store.load(sid).capture
    assert (cap["name"], cap["org"], cap["contact"], cap["contact_kind"]) == \
        ("Ana Silva", "Moldes Silva Lda", "ana.silva@example.com", "email")
    assert bot.respond(sid, "ok", "web").step == "contact_confirm"
    assert bot.respond(sid, "enviar", "web").intent == "lead"
    assert store.leads()[0]["name"] == "Ana Silva"


@pytest.mark.parametrize("answer", ["微信: wang_huabu88", "微信：ana_silva88", "WeChat：wang_huabu88", "wang_huabu88"])
def test_wechat_id_accepted_at_the_contact_step(bot, store, answer):
    sid = f"wx-id-{abs(hash(answer))}"
    bot.respond(sid, "我们想找葡萄牙的软木合作伙伴", "web")
    bot.respond(sid, "我对第1个感兴趣", "web")
    for text in ("同意", "王华", "宁波华布"):
        bot.respond(sid, text, "web")
    reply = bot.respond(sid, answer, "web")
    assert reply.step == "contact_need", reply.text
    assert store.load(sid).capture["contact_kind"] == "wechat_id"
    assert store.load(sid).capture["contact"] in ("wang_huabu88", "ana_silva88")


def test_back_to_the_list_leaves_a_request_under_way(bot, store):
    sid = "vol-back"
    first = bot.respond(sid, "Portuguese cork companies", "web")
    bot.respond(sid, "I'm interested in 1", "web")
    bot.respond(sid, "yes", "web")
    back = bot.respond(sid, "back to the list", "web")
    assert back.intent == "back" and [c.id for c in back.results] == [c.id for c in first.results]
    assert store.load(sid).capture is None and store.leads() == []
