"""Alerts core (assistant/_alerts.py): matching an ingest with the search's judgement, delivery rules
(one digest a day, never an item twice, once across workers, retries, restarts) and the dialogue hook."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conftest import private_copy
from corpus import Organisation
from assistant import _alerts as alerts
from assistant._state import SessionState, SQLiteStateStore
from index import Filters

MOULDS = Organisation.model_validate({
    "id": "cn-test-example-moulds", "kind": "company", "name": "Example Precision Moulds Co.", "country": "CN",
    "region": "Zhejiang", "city": "Ningbo", "sectors": ["moulds", "plastics"], "lang": "en",
    "description": "A test company that designs and makes injection moulds and tooling for automotive plastic parts."})
WINE = Organisation.model_validate({
    "id": "pt-test-example-wines", "kind": "company", "name": "Example Douro Wines", "country": "PT", "region": "Norte",
    "sectors": ["wine"], "lang": "en", "description": "A test winery in the Douro valley that makes and exports port wine."})
MOULDS_PT = Organisation.model_validate({
    "id": "pt-test-example-moldes", "kind": "company", "name": "Exemplo Moldes Lda", "country": "PT", "region": "Centro",
    "city": "Marinha Grande", "sectors": ["moulds"], "lang": "pt",
    "description": "Empresa de teste que fabrica moldes de injeção para peças plásticas."})


@pytest.fixture(scope="module")
def catalog(shipped_data_dir, encoder, tmp_path_factory):
    cat = private_copy(shipped_data_dir, tmp_path_factory.mktemp("alerts") / "data", encoder)
    yield cat
    cat.close()


@pytest.fixture
def state(tmp_path):
    s = SQLiteStateStore(tmp_path / "state.sqlite")
    yield s
    s.close()


def test_a_matching_record_becomes_one_notice_and_others_none(catalog, state):
    engine = catalog.engine
    moulds = alerts.subscribe(state, engine, "telegram", "tg-42", "fabricantes de moldes na China")
    wine = alerts.subscribe(state, engine, "web", "web-1", "vinho do Porto", lang="pt")
    only_pt = alerts.subscribe(state, engine, "web", "web-2", "moldes", Filters(countries=("PT",)))
    sub = state.alert(moulds)
    assert sub["understood"]["sectors"] == ["moulds"] and "CN" in sub["understood"]["countries"]
    catalog.upsert([MOULDS, WINE, MOULDS_PT])
    stats = alerts.match_new(catalog.engine, state, [MOULDS.id, WINE.id, MOULDS_PT.id])
    assert stats.records == 3 and stats.subscriptions == 3
    new = {MOULDS.id, WINE.id, MOULDS_PT.id}
    # the same judgement as search: exactly what the search over everything returns among the new records
    for sub_id, query, filters in ((moulds, "fabricantes de moldes na China", None), (wine, "vinho do Porto", None),
                                   (only_pt, "moldes", Filters(countries=("PT",)))):
        found = {h.record.id for h in catalog.engine.search(query, filters, limit=100).hits if not h.less_close} & new
        assert {n["record_id"] for n in state.notices(sub_id)} == found, query
    assert MOULDS.id in {n["record_id"] for n in state.notices(moulds)}
    assert WINE.id not in {n["record_id"] for n in state.notices(moulds)}
    assert [n["record_id"] for n in state.notices(wine)] == [WINE.id]
    assert [n["record_id"] for n in state.notices(only_pt)] == [MOULDS_PT.id]  # the subscription's own filter holds
    # a record ingested again (changed) is never announced twice
    before = len(state.notices(moulds))
    again = alerts.match_new(catalog.engine, state, [MOULDS.id, WINE.id])
    assert again.candidates and again.notices == 0 and len(state.notices(moulds)) == before


def test_ids_not_in_the_index_and_no_subscriptions_are_nothing(catalog, state):
    assert alerts.match_new(catalog.engine, state, [MOULDS.id]).notices == 0  # no subscriptions
    alerts.subscribe(state, catalog.engine, "web", "web-1", "moulds")
    assert alerts.match_new(catalog.engine, state, ["no-such-id"]).records == 0
    with pytest.raises(ValueError):
        alerts.subscribe(state, catalog.engine, "fax", "x", "moulds")
    with pytest.raises(ValueError):
        alerts.subscribe(state, catalog.engine, "web", "x", "   ")


class Recorder:
    def __init__(self, fail: int = 0):
        self.sent: list[tuple[int, str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    async def __call__(self, sub, text, notices):
        await asyncio.sleep(0.01)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("platform down")
        with self.lock:
            self.sent.append((sub["id"], text))


def _notice(state, sub_id, *records):
    state.add_notices([(sub_id, r, f"Name of {r}") for r in records], now=1000.0)


def test_one_digest_a_day_never_twice_and_retry_without_duplicates(catalog, state):
    sub = alerts.subscribe(state, catalog.engine, "telegram", "tg-7", "cork stoppers", lang="en")
    _notice(state, sub, "a", "b")
    send = Recorder(fail=1)
    first = asyncio.run(alerts.deliver(state, {"telegram": send}, now=2000.0))
    assert first.failed == 1 and send.sent == []  # the platform was down: kept pending
    second = asyncio.run(alerts.deliver(state, {"telegram": send}, now=2100.0))
    assert second.digests == 1 and second.notices == 2 and len(send.sent) == 1
    assert "Name of a" in send.sent[0][1] and "Name of b" in send.sent[0][1] and "stop alerts" in send.sent[0][1]
    _notice(state, sub, "a", "c")  # "a" again is ignored
    assert asyncio.run(alerts.deliver(state, {"telegram": send}, now=2200.0)).digests == 0  # a day has not passed
    third = asyncio.run(alerts.deliver(state, {"telegram": send}, now=2100.0 + alerts.DAY))
    assert third.notices == 1 and "Name of c" in send.sent[1][1] and "Name of a" not in send.sent[1][1]
    assert [n["sent"] is not None for n in state.notices(sub)] == [True, True, True]


def test_two_workers_deliver_each_notice_once(catalog, tmp_path):
    one, two = SQLiteStateStore(tmp_path / "s.sqlite"), SQLiteStateStore(tmp_path / "s.sqlite")
    try:
        subs = [alerts.subscribe(one, catalog.engine, "telegram", f"tg-{i}", "moulds") for i in range(5)]
        for s in subs:
            _notice(one, s, "x")
        send = Recorder()

        async def both():
            return await asyncio.gather(alerts.deliver(one, {"telegram": send}), alerts.deliver(two, {"telegram": send}))

        for _ in range(3):
            asyncio.run(both())
        assert sorted(s for s, _ in send.sent) == subs
    finally:
        one.close()
        two.close()


def test_a_restart_between_ingest_and_delivery_loses_nothing(catalog, tmp_path):
    store = SQLiteStateStore(tmp_path / "s.sqlite")
    sub = alerts.subscribe(store, catalog.engine, "email", "ana@example.pt", "moulds", email="ana@example.pt")
    _notice(store, sub, "r1")
    store.close()  # the process stops before delivering
    again = SQLiteStateStore(tmp_path / "s.sqlite")
    try:
        send = Recorder()
        assert asyncio.run(alerts.deliver(again, {"email": send})).digests == 1 and len(send.sent) == 1
    finally:
        again.close()


def test_a_channel_that_cannot_take_it_now_keeps_it_pending(catalog, state):
    sub = alerts.subscribe(state, catalog.engine, "wechat", "wx-o1", "moulds")
    _notice(state, sub, "r1")

    async def closed(sub, text, notices):
        raise alerts.NotYet("window closed")

    assert asyncio.run(alerts.deliver(state, {"wechat": closed})).waiting == 1
    assert asyncio.run(alerts.deliver(state, {})).waiting == 1  # no sender for the channel at all
    send = Recorder()
    assert asyncio.run(alerts.deliver(state, {"wechat": send})).digests == 1


def test_unsubscribe_tokens_are_signed():
    key = b"k" * 32
    t = alerts.token(key, 12)
    assert alerts.token_id(key, t) == 12
    assert alerts.token_id(b"x" * 32, t) is None
    assert alerts.token_id(key, "13." + t.split(".")[1]) is None
    assert alerts.token_id(key, "garbage") is None and alerts.token_id(key, "") is None


def test_digest_is_in_the_subscribers_language():
    notices = [{"record_id": f"r{i}", "record_name": f"Org {i}"} for i in range(12)]
    zh = alerts.digest({"lang": "zh", "query": "模具"}, notices)
    assert "您的提醒「模具」" in zh and "另有 2 家" in zh and "停止提醒" in zh
    pt = alerts.digest({"lang": "pt", "query": "moldes"}, notices[:1], "https://x.example/u?token=1.a")
    assert "«moldes»" in pt and "Cancelar este alerta: https://x.example/u?token=1.a" in pt


# -- the dialogue hook --------------------------------------------------------------------------
HELD_OUT = {  # phrasings not among the exemplars of assistant/data/alert_phrases.json
    "subscribe": ["quando aparecer uma empresa nova destas avisa-me", "podes avisar-me se surgirem mais?",
                  "有新的合作伙伴加入请提醒我", "如果以后有类似的机构麻烦通知一下", "drop me a line when new ones appear",
                  "can you notify me if more of these show up"],
    "stop": ["já não quero alertas", "请取消所有提醒", "turn off my alerts", "quero cancelar os avisos"],
    "other": ["empresas de moldes em Leiria", "电池材料供应商", "cork producers", "mostra-me os detalhes do 1",
              "quero contactar o número 2", "do you have anything in Macau?", "obrigada!"],
}


@pytest.mark.parametrize("label", sorted(HELD_OUT))
def test_phrases_are_read_by_meaning_in_three_languages(encoder, label):
    c = alerts.classifier(encoder)
    got = {text: c.classify(text)[0] for text in HELD_OUT[label]}
    wrong = {t: g for t, g in got.items() if g != label}
    # measured on these unseen phrasings: subscribe 4/6 (two near "show me more" are missed), stop 4/4, other 7/7;
    # no searches or other requests may be taken for an alert request
    allowed = {"subscribe": len(got) // 2, "stop": len(got) // 4, "other": 0}[label]
    assert len(wrong) <= allowed, wrong
    for lang in ("pt", "zh", "en"):  # the button label is always understood
        assert c.classify(alerts.say("button", lang))[0] == "subscribe"


def test_dialogue_subscribes_the_current_search_and_stops(bot, store):
    reply = bot.respond("tg-5", "fabricantes de moldes na China", "telegram")
    assert reply.results
    reply = bot.respond("tg-5", "Avisar-me de novos", "telegram")
    assert reply.intent == "alerts_subscribe" and "moldes na China" in reply.text and reply.lang == "pt"
    (sub,) = store.alerts(channel="telegram", address="tg-5")
    assert sub["query"] == "fabricantes de moldes na China" and sub["lang"] == "pt"
    reply = bot.respond("tg-5", "stop alerts", "telegram")
    assert reply.intent == "alerts_stopped" and "1" in reply.text
    assert store.alerts(channel="telegram", address="tg-5") == []
    assert bot.respond("tg-5", "停止提醒", "telegram").text == alerts.say("none", "zh")


def test_any_wechat_message_opens_the_48_hour_window_again(bot, store):
    """The customer-service window counts from the user's last message, whatever it said (here one
    the dialogue's rules read: "mais"), not only from messages about alerts."""
    bot.respond("wx-o5", "fabricantes de moldes na China", "wechat")
    bot.respond("wx-o5", "Avisar-me de novos", "wechat")
    (sub,) = store.alerts(channel="wechat", address="wx-o5")
    store.seen_alerts("wechat", "wx-o5", now=1000.0)
    assert store.alert(sub["id"])["last_seen"] == 1000.0
    assert bot.respond("wx-o5", "mais", "wechat").intent == "more"
    assert store.alert(sub["id"])["last_seen"] > time.time() - 60


def test_subscribing_without_a_search_asks_for_one(bot, store):
    reply = bot.respond("web-x", "Tell me when new ones fit", "web")
    assert reply.text == alerts.say("no_query", "en") and store.alerts() == []


def test_erasing_my_data_removes_my_alerts(catalog, state):
    alerts.subscribe(state, catalog.engine, "web", "web-9", "moulds")
    state.save("web-9", SessionState(query="moulds"))
    assert state.erase_session("web-9", "web")["alerts"] == 1
    assert state.alerts(active=None) == []


def test_subscribers_with_the_same_need_share_one_search_and_each_get_their_notice(catalog, state):
    """Matching runs the engine's search once per distinct need (query, language, filters, candidates)."""
    engine = catalog.engine
    a = alerts.subscribe(state, engine, "telegram", "tg-1", "fabricantes de moldes na China")
    b = alerts.subscribe(state, engine, "web", "web-9", "fabricantes de moldes na China")
    c = alerts.subscribe(state, engine, "web", "web-8", "vinho do Porto", lang="pt")
    catalog.upsert([MOULDS, WINE])
    stats = alerts.match_new(catalog.engine, state, [MOULDS.id, WINE.id])
    assert stats.verified == 3 and stats.searches == 2
    assert [n["record_id"] for n in state.notices(a)] == [n["record_id"] for n in state.notices(b)]
    assert MOULDS.id in {n["record_id"] for n in state.notices(a)} and [n["record_id"] for n in state.notices(c)] == [WINE.id]
