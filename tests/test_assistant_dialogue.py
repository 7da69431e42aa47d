"""The dialogue core without HTTP: language, intents, follow-ups, hand-off, sessions."""

import pytest

from assistant._state import SQLiteStateStore
from assistant.dialogue import Assistant


def han(text):
    return any("\u4e00" <= c <= "\u9fff" for c in text)


@pytest.mark.parametrize(
    "text, lang, intent",
    [
        ("Olá", "pt", "greeting"), ("你好", "zh", "greeting"), ("Hello!", "en", "greeting"),
        ("ajuda", "pt", "help"), ("你能做什么？", "zh", "help"), ("what can you do?", "en", "help"),
        ("obrigado!", "pt", "thanks"), ("谢谢", "zh", "thanks"), ("thanks a lot", "en", "thanks"),
        ("adeus", "pt", "goodbye"), ("再见", "zh", "goodbye"), ("bye", "en", "goodbye"),
        ("conta-me uma anedota sobre futebol", "pt", "out_of_scope"),
        ("今天天气怎么样", "zh", "out_of_scope"),
        ("what's the weather like tomorrow?", "en", "out_of_scope"),
    ],
)
def test_small_talk_intents_in_three_languages(bot, text, lang, intent):
    reply = bot.respond("s-" + intent + lang, text)
    act = "smalltalk" if intent in ("greeting", "thanks", "goodbye") else intent
    assert (reply.intent, reply.step, reply.lang) == (act, intent, lang)
    assert reply.text and reply.results == []
    if lang == "zh":
        assert han(reply.text)


def test_empty_message_gets_help(bot):
    reply = bot.respond("s-empty", "   ")
    assert reply.intent == "help" and "\n- " in reply.text and reply.suggestions


def test_chinese_search_lists_portuguese_cork_in_chinese(bot):
    reply = bot.respond("s-zh", "我们想找葡萄牙的软木合作伙伴")
    assert (reply.intent, reply.lang) == ("search", "zh")
    assert 3 <= len(reply.results) <= 5
    top = reply.results[0]
    assert top.country == "PT" and "cork" in top.sectors and han(top.name)
    assert top.name in reply.text and "更多" in reply.text.splitlines()[-1]  # ends with a hint


def test_follow_ups_more_details_and_handoff(bot, store):
    first = bot.respond("s-flow", "fabricantes de moldes na China", "web")
    assert first.intent == "search" and [c.number for c in first.results] == [1, 2, 3, 4, 5]
    more = bot.respond("s-flow", "mais", "web")
    assert more.intent == "more" and more.lang == "pt"
    assert [c.number for c in more.results][0] == 6
    assert not {c.id for c in more.results} & {c.id for c in first.results}
    details = bot.respond("s-flow", "detalhes do 2", "web")
    assert details.intent == "details" and details.organisation == first.results[1].id
    assert first.results[1].name in details.text
    back = bot.respond("s-flow", "voltar à lista", "web")
    assert back.intent == "back" and [c.id for c in back.results] == [c.id for c in more.results]
    assert store.query_counts()["totals"]["all"] == 1  # one search logged, not one per page
    ask = bot.respond("s-flow", "tenho interesse no 1", "web")
    assert ask.step == "contact_consent" and not ask.handoff and store.leads() == []
    for text in ("sim", "Ana Silva", "Moldes Lda", "ana@moldes.pt", "ok"):
        bot.respond("s-flow", text, "web")
    lead = bot.respond("s-flow", "enviar", "web")
    assert lead.intent == "lead" and lead.handoff and lead.lead_id
    (saved,) = store.leads()
    assert saved["org_id"] == first.results[0].id and saved["session_id"] == "s-flow"
    assert saved["channel"] == "web" and saved["message"] == "tenho interesse no 1" and saved["lang"] == "pt"
    rec = bot.engine.records[first.results[0].id]
    assert (rec.website or "Site público: nenhum conhecido") in lead.text


def test_number_alone_keeps_session_language(bot):
    bot.respond("s-num", "我们想找葡萄牙的软木合作伙伴")
    reply = bot.respond("s-num", "2")
    assert (reply.intent, reply.lang) == ("details", "zh")
    reply = bot.respond("s-num", "第二个的详细信息")
    assert reply.intent == "details" and han(reply.text)
    bad = bot.respond("s-num", "第九个的详细信息")
    assert bad.intent == "details" and "9" in bad.text and bad.organisation is None


def test_language_switch_mid_conversation(bot):
    assert bot.respond("s-switch", "我们想找葡萄牙的软木合作伙伴").lang == "zh"
    pt = bot.respond("s-switch", "procuro fornecedores de cortiça em Portugal")
    assert (pt.intent, pt.lang) == ("search", "pt")
    assert "cork" in pt.results[0].sectors and not han(pt.results[0].name)
    en = bot.respond("s-switch", "more please")
    assert (en.intent, en.lang) == ("more", "en")


@pytest.mark.parametrize(
    "turns",
    [
        ["fabricantes de moldes na China", "e só em Zhejiang?", "sem ser Ningbo"],
        ["寻找中国的模具产业集群", "只看浙江的", "除了宁波"],
        ["Chinese mould clusters", "only in Zhejiang", "not Ningbo"],
    ],
)
def test_region_narrowing_with_exclusion(bot, turns):
    sid = "s-ex-" + turns[0][:6]
    bot.respond(sid, turns[0])
    only = bot.respond(sid, turns[1])
    assert only.intent == "refine" and only.results
    assert all(c.region == "Zhejiang" for c in only.results)
    assert any(c.city == "Ningbo" for c in only.results)
    not_ningbo = bot.respond(sid, turns[2])
    assert not_ningbo.intent == "refine" and not_ningbo.results
    assert all(c.region == "Zhejiang" and c.city != "Ningbo" for c in not_ningbo.results)
    assert "moulds" in not_ningbo.results[0].sectors


def test_exclusion_in_first_message_is_hard(bot):
    reply = bot.respond("s-first-ex", "mould clusters in China except Ningbo")
    assert reply.results and all(c.city != "Ningbo" for c in reply.results)


def test_kind_refinement_and_zero_results(bot):
    bot.respond("s-kind", "cork in Portugal")
    companies = bot.respond("s-kind", "only companies")
    assert companies.intent == "refine" and all(c.kind == "company" for c in companies.results)
    none = bot.respond("s-kind", "only in Zhejiang")
    assert none.results == [] and none.text and "clear filters" in none.suggestions
    cleared = bot.respond("s-kind", "clear filters")
    assert cleared.results and cleared.text.startswith("Filters cleared.")


def test_other_language_gets_english_with_a_note(bot):
    reply = bot.respond("s-es", "Buscamos proveedores de calzado en China para nuestra empresa")
    assert reply.lang == "en" and reply.text.startswith("(I answer in English")
    assert reply.results and "footwear" in reply.results[0].sectors


def test_more_without_search_and_details_without_list(bot):
    assert bot.respond("s-cold", "mais").intent == "more"
    reply = bot.respond("s-cold2", "detalhes do 2")
    assert reply.intent == "details" and reply.organisation is None and reply.text


def test_details_by_name(bot):
    reply = bot.respond("s-name", "tell me more about Corticeira Amorim")
    assert reply.intent == "details" and reply.organisation == "pt-corticeira-amorim"


def test_session_expiry_and_persistence(bot, store, tmp_path, shipped_engine):
    bot.respond("s-exp", "fabricantes de moldes na China")
    again = Assistant(shipped_engine, SQLiteStateStore(tmp_path / "state.sqlite"))  # a restart
    assert again.respond("s-exp", "mais").intent == "more" and again.respond("s-exp", "mais").results
    state = store.load("s-exp")
    assert state.query == "fabricantes de moldes na China"
    import time

    assert store.load("s-exp", now=time.time() + 3601).query is None  # expired: a new session


def test_untranslated_record_text_stays_out_of_another_languages_list(shipped_engine, store):
    from corpus import Organisation

    rec = Organisation.model_validate({
        "id": "test-untranslated", "kind": "company", "name": "Empresa Fictícia de Cortiça", "country": "PT",
        "sectors": ["cork"], "lang": "pt", "description": "Empresa fictícia de teste que fabrica rolhas de cortiça natural.",
    })
    bot = Assistant(shipped_engine, store)
    card = bot._card(1, rec, ["cork"], "zh")
    assert card.reason == "软木" and card.name == "Empresa Fictícia de Cortiça"  # no "[pt]" text in a Chinese list
    card = bot._card(1, rec, ["cork"], "pt")
    assert card.reason.startswith("Cortiça · Empresa fictícia")  # in its own language the description shows


# -- needs, the relevance floor and topic changes (issue: needs-aware matching) ---------------
@pytest.mark.parametrize(
    "text, lang, words",
    [
        ("Procuramos clubes de futebol no Brasil para um acordo de patrocínio", "pt", "Não encontrei"),
        ("我们想找葡萄牙的陶瓷企业", "zh", "目录中没有"),
        ("quantum computing startups in Brazil", "en", "Nothing in the CPC Alliance directory fits"),
    ],
)
def test_nothing_fits_is_said_honestly_in_each_language(bot, text, lang, words):
    reply = bot.respond("s-none-" + lang, text)
    assert (reply.intent, reply.lang) == ("search", lang)
    assert reply.results == [] and words in reply.text
    if lang == "zh":
        assert han(reply.text)


def test_the_askers_own_side_is_not_the_answer(bot):
    reply = bot.respond("s-wenzhou", "温州的鞋厂想找葡萄牙的鞋业设计合作伙伴")
    assert reply.results and all(c.country == "PT" for c in reply.results)
    assert "cn-wenzhou-footwear" not in [c.id for c in reply.results]
    assert reply.results[0].id in ("pt-cluster-calcado", "pt-polo-moda")
    assert "[pt]" not in reply.text and han(reply.results[0].reason)  # the reason is in Chinese


def test_reasons_are_in_the_users_language(bot):
    reply = bot.respond("s-why-pt", "Somos uma PME de moldes da Marinha Grande e procuramos clientes do setor automóvel na China")
    assert reply.results and all(c.country == "CN" for c in reply.results)
    assert "o que procura" in reply.results[0].reason or "complementa" in reply.results[0].reason
    assert "[zh]" not in reply.text and "[en]" not in reply.text
    reply = bot.respond("s-why-en", "We make cork stoppers in Portugal and need customers in China")
    assert reply.results and any("complements your" in c.reason for c in reply.results)


def test_a_new_topic_starts_a_new_search_and_drops_old_filters(bot):
    bot.respond("s-topic", "fornecedores de cortiça em Portugal")
    refined = bot.respond("s-topic", "só empresas")
    assert refined.intent == "refine" and all(c.kind == "company" for c in refined.results)
    moved = bot.respond("s-topic", "Agora outra coisa: fabricantes de moldes na China")
    assert moved.intent == "search" and moved.results
    assert all(c.country == "CN" and "moulds" in c.sectors for c in moved.results)
    # a different trade without any marker is a new search too, not a filter on the last one
    again = bot.respond("s-topic", "e fabricantes de calçado em Portugal?")
    assert again.intent == "search" and "footwear" in again.results[0].sectors
    assert not any("moulds" in c.sectors for c in again.results)


@pytest.mark.parametrize("more", ["还有吗？", "mostra mais", "show me more", "更多结果"])
def test_more_in_many_phrasings(bot, more):
    sid = "s-more-" + more
    bot.respond(sid, "mould makers in China")
    reply = bot.respond(sid, more)
    assert reply.intent == "more"


def test_refinements_understand_exclusions_with_verbs(bot):
    sid = "s-excl"
    bot.respond(sid, "fornecedores de tecidos na China")
    reply = bot.respond(sid, "não quero Guangdong")
    assert reply.intent == "refine" and reply.results
    assert all(c.region != "Guangdong" for c in reply.results)


def test_places_are_learned_from_ingested_records(shipped_data_dir, tmp_path, encoder, store):
    from conftest import private_copy
    from corpus import Organisation

    catalog = private_copy(shipped_data_dir, tmp_path / "data", encoder)
    try:
        catalog.upsert([Organisation(
            id="test-linpu-mould-works", kind="company", name="Linpu Test Mould Works (fictional)", country="CN",
            region="Zhejiang", city="Linpu", sectors=["moulds"],
            description="A fictional injection-mould workshop used by the tests: plastic injection moulds for appliances.",
            sources=["https://example.org/test"])])
        bot = Assistant(lambda: catalog.engine, store)
        bot.respond("s-linpu", "mould makers in China")
        reply = bot.respond("s-linpu", "only in Linpu")
        assert reply.intent == "refine" and [c.id for c in reply.results] == ["test-linpu-mould-works"]
        result = catalog.engine.search("moulds near Linpu")
        assert [p.name for p in result.analysis.places] == ["Linpu"]
    finally:
        catalog.close()


def test_a_turn_is_run_again_when_another_worker_saved_the_session_meanwhile(shipped_engine, tmp_path):
    """Two workers answer one user at once. The turn that loses the race to save runs again on the
    winner's state, so neither message is lost: "só empresas" narrows the search the other worker ran."""
    path = tmp_path / "state.sqlite"
    other = Assistant(shipped_engine, SQLiteStateStore(path))  # the other worker, its own connection

    class RacedStore(SQLiteStateStore):
        """This worker's store: right after its first load, the other worker answers a message."""

        loads = 0

        def load_versioned(self, session_id, now=None):
            loaded = super().load_versioned(session_id, now)
            self.loads += 1
            if self.loads == 1:
                other.respond(session_id, "fornecedores de cortiça em Portugal")
            return loaded

    mine = RacedStore(path)
    try:
        reply = Assistant(shipped_engine, mine).respond("web-race", "só empresas")
        assert mine.loads == 2  # the stale turn was refused and run again
        assert reply.intent == "refine" and reply.results and all(c.kind == "company" for c in reply.results)
        state = other.store.load("web-race")
        assert state.turns == 2 and state.query == "fornecedores de cortiça em Portugal" and state.filters
    finally:
        mine.close()
        other.store.close()


def test_an_organisation_is_recognised_by_the_start_of_any_of_its_names(shipped_engine):
    """The name keys live in the index columns, worked out when a record is written: a message
    naming an organisation costs a scan of them, no table is rebuilt per engine or per message."""
    from corpus import fold

    apcor = shipped_engine.records["pt-apcor"]
    assert shipped_engine.named_in(fold(f"quero falar com a {apcor.name} amanhã")) == "pt-apcor"
    assert shipped_engine.named_in(fold("uma frase sem nome de organização nenhuma")) is None
    shown_first = [rid for rid in shipped_engine.records if rid != "pt-apcor"][:3]
    assert shipped_engine.named_in(fold(apcor.name), shown_first) == "pt-apcor"



# -- every word in the user's language: offers and seeks (team) -------------------------------------
def test_details_of_a_portuguese_record_in_chinese_hold_no_portuguese_field_text_and_vice_versa(bot, shipped_engine):
    bot.respond("s-det-zh", "我们想找葡萄牙的软木合作伙伴")
    zh = bot.respond("s-det-zh", "第1个的详细信息")
    rec = shipped_engine.records[zh.organisation]
    assert zh.intent == "details" and rec.lang == "pt" and rec.offers
    for original in (rec.description, rec.offers, rec.seeks):
        assert not original or original not in zh.text
    assert rec.i18n["zh"].offers in zh.text and "原文" not in zh.text
    bot.respond("s-det-pt", "fabricantes de moldes na China")
    pt = bot.respond("s-det-pt", "detalhes do 1")
    assert pt.intent == "details" and shipped_engine.records[pt.organisation].lang == "zh"
    assert not han(pt.text), pt.text  # not one Chinese character in the Portuguese details
    assert shipped_engine.records[pt.organisation].i18n["pt"].offers in pt.text


def test_an_untranslated_offer_is_shown_as_the_original_with_its_language(bot, shipped_engine, monkeypatch):
    rid = "pt-apcor"
    rec = shipped_engine.records[rid]
    assert shipped_engine.records[rid] is rec  # held in the records' cache: a change below is what the dialogue reads
    for lang in ("zh", "en"):
        monkeypatch.setitem(rec.i18n, lang, rec.i18n[lang].model_copy(update={"offers": None, "seeks": None}))
    reply = bot.respond("s-untranslated", "APCOR的详细信息")
    assert reply.organisation == rid
    assert f"（原文，葡萄牙语）: {rec.offers}" in reply.text and f"（原文，葡萄牙语）: {rec.seeks}" in reply.text
    assert rec.untranslated() == ["offers:zh", "offers:en", "seeks:zh", "seeks:en"]


# -- understanding by meaning, places in three languages, replies that fit (issue 20) --------------------
def test_greeting_with_how_are_you_is_answered_in_portuguese(bot):
    reply = bot.respond("u-hi", "Olá, tudo bem?")
    assert (reply.intent, reply.lang, reply.step) == ("smalltalk", "pt", "greeting_chat") and "Tudo bem" in reply.text


@pytest.mark.parametrize("text, lang", [("quanto custa este serviço?", "pt"), ("what is the CPC Alliance?", "en"),
                                        ("怎么成为联盟会员？", "zh")])
def test_questions_about_the_service_are_faq_not_searches(bot, text, lang):
    reply = bot.respond(f"u-faq-{lang}", text)
    assert (reply.intent, reply.lang) == ("faq", lang) and reply.results == []


@pytest.mark.parametrize("text, lang", [("quero falar com uma pessoa", "pt"), ("I want to talk to a human", "en"),
                                        ("我想和工作人员联系", "zh")])
def test_talk_to_a_person_is_its_own_intent(bot, text, lang):
    reply = bot.respond(f"u-human-{lang}", text)
    assert (reply.intent, reply.lang) == ("human", lang)


def test_status_of_a_request_without_a_team_hook_reads_the_lead(bot, store):
    sid = "u-status"
    assert bot.respond(sid, "我的请求进展如何？").intent == "status"
    bot.respond(sid, "我们想找葡萄牙的软木合作伙伴")
    for text in ("我对第1个感兴趣", "同意", "王华", "华布", "wang@huabu.cn", "好", "确认"):
        last = bot.respond(sid, text)
    assert last.intent == "lead"
    reply = bot.respond(sid, "我的请求进展如何？")
    assert reply.intent == "status" and str(last.lead_id) in reply.text and "等待" in reply.text


@pytest.mark.parametrize("follow_up", ["只看北部", "只要北部的", "only in the North", "só no Norte"])
def test_north_in_any_language_narrows_to_norte(bot, follow_up):
    sid = f"u-north-{abs(hash(follow_up))}"
    bot.respond(sid, "clusters portugueses de moldes e têxteis" if follow_up.startswith("s") else "Portuguese textile and mould clusters")
    reply = bot.respond(sid, follow_up)
    assert reply.intent == "refine" and reply.results
    assert all(bot.engine.records[c.id].region == "Norte" for c in reply.results)


def test_place_without_records_says_nothing_is_there_and_offers_to_widen(bot):
    bot.respond("u-algarve", "clusters de calçado em Portugal")
    reply = bot.respond("u-algarve", "só no Algarve")
    assert reply.intent == "refine" and reply.results == [] and "limpar filtros" in reply.text
    assert "limpar filtros" in reply.suggestions


def test_portuguese_sentence_with_one_chinese_place_stays_portuguese(bot):
    bot.respond("u-mixed", "fabricantes de moldes na China")
    reply = bot.respond("u-mixed", "só em 宁波 por favor")
    assert (reply.intent, reply.lang) == ("refine", "pt") and reply.results
    assert all(c.city == "Ningbo" for c in reply.results)


def test_details_of_two_numbers_shows_both(bot):
    first = bot.respond("u-two", "我们想找葡萄牙的软木合作伙伴")
    reply = bot.respond("u-two", "详细介绍一下第1个和第2个")
    assert reply.intent == "details" and [c.id for c in reply.results] == [c.id for c in first.results[:2]]
    assert first.results[0].name in reply.text and first.results[1].name in reply.text


def test_back_to_the_list_returns_the_same_list(bot):
    first = bot.respond("u-back", "fabricantes de moldes na China")
    bot.respond("u-back", "mais")
    bot.respond("u-back", "detalhes do 7")
    shown = bot.store.load("u-back").listed
    back = bot.respond("u-back", "返回列表")
    assert back.intent == "back" and [c.id for c in back.results] == [rid for _, rid, _ in shown]
    assert [c.number for c in back.results] == [n for n, _, _ in shown] and first.results[0].id not in {c.id for c in back.results}


def test_a_long_pasted_message_is_not_echoed(bot):
    profile = ("Somos uma empresa portuguesa de moldes de injeção para a indústria automóvel, com 120 trabalhadores, "
               "certificação IATF 16949 e clientes na Alemanha e em Espanha. ") * 4 + "Procuramos parceiros na China."
    reply = bot.respond("u-long", profile)
    head = reply.text.split("\n")[0] if not reply.truncated else reply.text.split("\n")[1]
    assert reply.intent == "search" and len(head) < 160 and "…" in head


def test_reply_language_on_request(bot):
    assert bot.respond("u-lang", "can you answer in Portuguese?").intent == "language"
    reply = bot.respond("u-lang", "cork companies")
    assert (reply.intent, reply.lang) == ("search", "pt")
    assert bot.respond("u-lang", "请用中文回复").lang == "zh"
    assert bot.respond("u-lang", "more").lang == "zh"


def test_interest_after_nothing_fits_starts_a_request_for_the_team(bot, store):
    from assistant._state import SessionState

    # the state a "nothing fits" reply leaves: a search, no list
    store.save("u-nomatch", SessionState(lang="zh", query="有没有葡萄牙的律师事务所", turns=1))
    reply = bot.respond("u-nomatch", "我感兴趣")
    assert reply.intent == "interest" and reply.step == "contact_consent" and "律师事务所" in reply.text


def test_expired_or_new_conversation_says_so_on_a_follow_up(bot):
    reply = bot.respond("u-new", "mais")
    assert reply.intent == "more" and reply.step == "no_list" and "expiram" in reply.text


def test_a_new_search_or_a_refinement_when_unclear_asks(bot):
    from assistant._understand import Intent

    bot.respond("u-clarify", "fabricantes de moldes na China")
    reply = bot._handlers["clarify"](bot, "e moldes em Portugal", Intent("clarify", 0.5), bot.store.load("u-clarify"),
                                     "pt", "u-clarify", "web", False)
    assert reply.intent == "clarify" and "nova pesquisa" in reply.text


@pytest.mark.parametrize("text, lang, head, label", [
    ("moldes para a indústria automóvel na China", "pt", "menos próximo do que pediu", "menos próximo"),
    ("想找中国的汽车模具企业", "zh", "相关度较低", "相关度较低"),
    ("automotive mould makers in China", "en", "less close than you asked for", "less close"),
])
def test_a_question_just_below_the_threshold_gets_the_nearest_labelled_less_close(bot, shipped_engine, text, lang, head, label):
    """The calibrated judgement's band below "match": said as such in the user's language."""
    import dataclasses

    cfg = shipped_engine.config
    model = cfg.model
    assert cfg.judgement == "calibrated" and model is not None
    cfg.model = dataclasses.replace(model, threshold=1.01, near=0.0)  # no question answered; all in the band
    try:
        reply = bot.respond("s-near-" + lang, text)
    finally:
        cfg.model = model
    assert (reply.intent, reply.lang) == ("search", lang)
    assert 1 <= len(reply.results) <= 3 and head in reply.text
    assert all(label in c.reason for c in reply.results)


@pytest.mark.parametrize("text, lang, words", [
    ("fabricantes de moldes na China", "pt", "correspondências ao todo"),
    ("中国的模具企业", "zh", "个匹配结果"),
    ("mould makers in China", "en", "matches in all"),
])
def test_a_result_list_says_how_many_matches_there_are_and_more_marks_the_less_close(bot, shipped_engine, text, lang, words):
    """The chat's pages hold matches only, the head says how many in all; "more" past them says
    the rest are less close and marks each (never counted as matches)."""
    import re

    reply = bot.respond("s-count-" + lang, text)
    matches = shipped_engine.search(text, other_side=False, fill=False).matches
    assert reply.intent == "search" and reply.results
    head = reply.text.split("\n")[0]
    n = int(re.search(r"(\d+)", head.split(text)[-1]).group(1))
    assert n == matches and (words in head or (n == 1 and lang != "zh"))
    sid, pages = "s-count-" + lang, [reply]
    while len(pages) < 6 and not any(c.reason.startswith(("less close", "menos próximo", "相关度较低")) for c in pages[-1].results):
        pages.append(bot.respond(sid, {"pt": "mais", "zh": "更多", "en": "more"}[lang]))
    shown = [c for p in pages for c in p.results]
    first_less = next(i for i, c in enumerate(shown) if "less close" in c.reason or "menos próximo" in c.reason or "相关度较低" in c.reason)
    assert first_less == matches  # every match first, then only less-close ones, each marked
