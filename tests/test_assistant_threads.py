"""Threads with the team, "talk to a person" and "status of my request", without HTTP: the real
encoder, the shipped index and a real SQLite store."""

import pytest

from assistant._threads import ACT_FLOOR, TeamDesk, load_exemplars


def han(text):
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def staff_writes(store, sid, channel="telegram", lang="zh", text="您好，我是Rita，我们联系了对方。"):
    """A lead for this user (as the contact flow records it) and a staff message on it."""
    lead_id = store.add_lead(sid, channel, "pt-apcor", "APCOR", lang, "我对第1个感兴趣", contact=channel, contact_kind=channel)
    store.add_staff_message(lead_id, sid, channel, text, "sent", "Rita")
    return lead_id


@pytest.mark.parametrize("channel, sid, lang, text", [
    ("telegram", "telegram-501", "zh", "好的，谢谢！我下周三有空，可以电话联系"),
    ("wechat", "wechat-oX1", "zh", "好的，谢谢！我下周三有空，可以电话联系"),
    ("web", "web-thread", "pt", "Obrigada Rita! Quando será a feira em Ningbo?"),
    ("web", "web-thread-en", "en", "Thanks! I'm free on Wednesday, you can call me"),
])
def test_an_answer_after_staff_wrote_goes_to_the_thread(bot, store, channel, sid, lang, text):
    lead_id = staff_writes(store, sid, channel, lang)
    reply = bot.respond(sid, text, channel)
    assert (reply.intent, reply.lang, reply.lead_id) == ("to_team", lang, lead_id)
    assert str(lead_id) in reply.text and (han(reply.text) == (lang == "zh"))
    assert bot.store.load(sid).capture is None  # no consent prompt reopened
    thread = store.staff_messages(lead_id=lead_id)
    assert [(m["sender"], m["delivery"]) for m in thread] == [("staff", "sent"), ("user", "unread")]
    assert thread[1]["text"] == text
    assert store.query_counts()["totals"]["all"] == 0  # not a search
    assert store.mark_read(lead_id) == 1 and store.staff_messages(lead_id=lead_id)[1]["delivery"] == "read"


def test_a_new_search_leaves_the_thread_until_staff_write_again(bot, store):
    sid = "telegram-77"
    lead_id = staff_writes(store, sid)
    assert bot.respond(sid, "好的，收到", "telegram").intent == "to_team"
    search = bot.respond(sid, "新的搜索：我想找葡萄牙的软木企业", "telegram")
    assert search.intent == "search" and search.results
    after = bot.respond(sid, "好的，谢谢", "telegram")
    assert after.intent != "to_team"  # back to the assistant
    store.add_staff_message(lead_id, sid, "telegram", "还有一个问题", "sent", "Rita")
    assert bot.respond(sid, "请说", "telegram").intent == "to_team"
    store.update_lead(lead_id, status="closed", outcome="partnership")
    assert bot.respond(sid, "好的，谢谢你们", "telegram").intent != "to_team"  # a closed lead has no thread


def test_list_commands_stay_with_the_list_inside_a_thread(bot, store):
    sid = "web-list"
    first = bot.respond(sid, "fabricantes de moldes na China", "web")
    assert first.results
    staff_writes(store, sid, "web", "pt", "Olá, temos novidades")
    assert bot.respond(sid, "mais", "web").intent == "more"
    assert bot.respond(sid, "detalhes do 2", "web").intent == "details"


@pytest.mark.parametrize("text, lang", [
    ("quero falar com uma pessoa", "pt"), ("I want to talk to a human", "en"), ("我想和工作人员联系", "zh"),
])
def test_talk_to_a_person_opens_a_lead_without_a_search(bot, store, text, lang):
    sid = f"telegram-h{lang}"
    reply = bot.respond(sid, text, "telegram")
    assert (reply.intent, reply.lang) == ("human", lang) and reply.lead_id
    lead = store.lead(reply.lead_id)
    assert lead["session_id"] == sid and lead["contact_kind"] == "telegram" and lead["message"] == text
    assert han(reply.text) == (lang == "zh")


def test_talk_to_a_person_on_the_web_goes_through_consent_and_contact(bot, store):
    sid = "web-human"
    ask = bot.respond(sid, "quero falar com uma pessoa", "web")
    assert ask.intent == "human" and ask.form and "RGPD" in ask.text
    bot.respond(sid, "sim", "web")
    bot.respond(sid, "Ana Silva", "web")
    bot.respond(sid, "Moldes Silva Lda", "web")
    bot.respond(sid, "ana.silva@example.pt", "web")
    need = bot.respond(sid, "Quero saber como aderir à aliança", "web")
    done = need if need.lead_id else bot.respond(sid, "enviar", "web")
    assert done.intent == "lead" and done.lead_id
    lead = store.lead(done.lead_id)
    assert lead["contact"] == "ana.silva@example.pt" and lead["org_id"] == ""


@pytest.mark.parametrize("text, lang", [
    ("What is the status of my request?", "en"), ("我的请求进展如何？", "zh"), ("qual o estado do meu pedido", "pt"),
])
def test_status_of_my_request_in_the_users_language(bot, store, text, lang):
    sid = f"wechat-s{lang}"
    none = bot.respond(sid, text, "wechat")
    assert none.intent == "status" and none.lead_id is None
    lead_id = store.add_lead(sid, "wechat", "pt-apcor", "APCOR", lang, "x", contact="wechat", contact_kind="wechat")
    store.update_lead(lead_id, status="contacted")
    reply = bot.respond(sid, text, "wechat")
    assert (reply.intent, reply.lang, reply.lead_id) == ("status", lang, lead_id)
    assert str(lead_id) in reply.text and "APCOR" in reply.text
    word = {"en": "contacted you", "zh": "处理中", "pt": "em curso"}[lang]
    assert word in reply.text


def test_im_interested_after_nothing_fits_opens_a_request_for_the_need(bot, store):
    sid = "telegram-unmet"
    nothing = bot.respond(sid, "我们想找葡萄牙的陶瓷企业", "telegram")
    assert not nothing.results and "我感兴趣" in nothing.text
    ask = bot.respond(sid, "我感兴趣", "telegram")  # consent first, as for any request
    assert ask.intent == "interest" and han(ask.text)
    for text in ("同意", "王华", "华布", "这里", "好", "发送"):
        lead = bot.respond(sid, text, "telegram")
        if lead.lead_id:
            break
    assert store.lead(lead.lead_id)["need"] == "我们想找葡萄牙的陶瓷企业"
    web = bot.respond("web-unmet", "quantum computing startups in Brazil", "web")
    assert not web.results
    ask = bot.respond("web-unmet", "I'm interested", "web")
    assert ask.intent == "interest" and ask.form and "GDPR" in ask.text


@pytest.mark.parametrize("text", [
    "fabricantes de moldes na China", "我们想找葡萄牙的软木合作伙伴", "Portuguese aerospace cluster", "tenho interesse no 1",
    "I'm interested", "我感兴趣", "mais", "quero falar com a APCOR", "contact the first one", "apagar os meus dados",
])
def test_searches_and_list_commands_are_not_read_as_team_acts(shipped_engine, store, text):
    desk = TeamDesk(store, lambda: shipped_engine.encoder)
    assert desk.read(text).act not in ("human", "status")


def test_exemplars_are_in_three_languages_and_the_floor_is_sane():
    data = load_exemplars()
    assert set(data) == {"human", "status", "search", "reply", "other"}
    assert all(len(v) >= 15 for v in data.values())
    assert 0.8 < ACT_FLOOR < 1
