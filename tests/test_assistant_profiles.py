"""Joining the directory, the pure core (assistant/_profiles.py) and its chat dialogue (no HTTP):
validation in the member's language, one question at a time, cancel, nothing stored half-way,
the owner's menu (edit back to moderation, delete)."""

from __future__ import annotations

import pytest

from assistant import _profiles as profiles

GOOD = {"name": "Moldes Exemplo Lda (teste)", "kind": "empresa", "country": "Portugal", "city": "Marinha Grande",
        "sectors": "moldes para injeção; plásticos", "offers": "Projeto e fabrico de moldes de injeção para peças plásticas.",
        "seeks": "Parceiros na China para distribuição", "website": "www.moldes-exemplo.example",
        "contact": "geral@moldes-exemplo.example", "consent": True}


def test_validation_cleans_every_field_and_names_each_bad_one_in_the_members_language():
    data = profiles.validate(GOOD, "pt")
    assert data["kind"] == "company" and data["country"] == "PT" and data["sectors"] == ["moldes para injeção", "plásticos"]
    assert data["website"] == "https://www.moldes-exemplo.example" and data["contact"] == "geral@moldes-exemplo.example"
    assert profiles.validate({**GOOD, "country": "中国", "kind": "研究机构", "contact": "+86 574 1234 5678"}, "zh")["country"] == "CN"
    bad = {**GOOD, "name": "", "kind": "banana", "country": "Atlantis", "website": "not a site", "contact": "nobody",
           "offers": "<script>x</script>", "consent": False}
    with pytest.raises(profiles.ProfileError) as err:
        profiles.validate(bad, "zh")
    assert set(err.value.errors) == {"name", "kind", "country", "website", "contact", "offers", "consent"}
    assert err.value.errors["kind"] == "请选择：企业、产业集群或机构。"
    with pytest.raises(profiles.ProfileError) as err:
        profiles.validate({**GOOD, "sectors": ", ".join(f"s{i}" for i in range(20))}, "en")
    assert err.value.errors == {"sectors": "Give at most 12 sectors."}


def test_an_approved_profile_is_a_member_record_with_its_own_sector_words():
    data = profiles.validate(GOOD, "pt")
    rec = profiles.to_record({"id": 7, "data": data, "lang": "pt", "consent_at": 1700000000.0, "org_id": None})
    from corpus import Organisation

    org = Organisation.model_validate(rec)
    assert org.id == "member-7" and org.sectors == [] and rec["sector_labels"] == ["moldes para injeção", "plásticos"]
    assert rec["source"] == "member" and rec["consent_at"] == "2023-11-14T22:13:20Z" and "moldes de injeção" in org.description
    assert rec["lang"] == "pt"
    zh = profiles.validate({**GOOD, "sectors": "注塑模具", "offers": "为汽车行业设计和制造精密注塑模具"}, "en")
    assert profiles.to_record({"id": 8, "data": zh, "lang": "en", "consent_at": 1.0})["lang"] == "zh"  # the texts', not the page's


def say(bot, sid, text, channel="telegram"):
    return bot.respond(sid, text, channel)


def test_joining_on_a_chat_asks_one_field_at_a_time_and_stores_only_after_yes(bot, store):
    sid = "tg-900"
    first = say(bot, sid, "quero registar a minha empresa")
    assert first.intent == "profile" and first.step == "profile_name" and "cancelar" in first.text
    assert say(bot, sid, "Moldes Exemplo Lda (teste)").step == "profile_kind"
    wrong = say(bot, sid, "banana")
    assert wrong.step == "profile_kind" and "empresa, cluster ou instituição" in wrong.text  # asked again, in Portuguese
    say(bot, sid, "empresa")
    say(bot, sid, "Portugal")
    assert say(bot, sid, "saltar").step == "profile_sectors"  # city is optional
    say(bot, sid, "moldes, plásticos")
    say(bot, sid, "Moldes de injeção para a indústria automóvel")
    say(bot, sid, "saltar")
    bad = say(bot, sid, "isto não é um site")
    assert bad.step == "profile_website" and "Endereço inválido" in bad.text
    say(bot, sid, "saltar")
    summary = say(bot, sid, "geral@moldes-exemplo.example")
    assert summary.step == "profile_consent" and "Moldes Exemplo Lda (teste)" in summary.text and "Portugal" in summary.text
    assert store.profiles(channel="telegram", owner=sid) == []  # nothing stored before the yes
    done = say(bot, sid, "sim")
    assert done.step == "profile_submitted"
    (p,) = store.profiles(channel="telegram", owner=sid)
    assert p["status"] == "pending" and p["lang"] == "pt" and p["data"]["sectors"] == ["moldes", "plásticos"]
    assert p["data"]["contact"] == "geral@moldes-exemplo.example" and "city" not in p["data"] and p["consent_at"] > 0
    # the owner comes back: the menu; edit goes back to moderation with the values kept where skipped
    menu = say(bot, sid, "o meu perfil")
    assert menu.step == "profile_menu" and "em revisão" in menu.text
    assert say(bot, sid, f"editar {p['id']}").step == "profile_name"
    for answer in ["saltar", "saltar", "saltar", "Leiria"] + ["saltar"] * 5:
        last = say(bot, sid, answer)
    assert last.step == "profile_consent" and "Leiria" in last.text
    say(bot, sid, "sim")
    (edited,) = store.profiles(channel="telegram", owner=sid)
    assert edited["id"] == p["id"] and edited["data"]["city"] == "Leiria" and edited["data"]["name"] == "Moldes Exemplo Lda (teste)"
    say(bot, sid, "o meu perfil")
    assert say(bot, sid, f"apagar {p['id']}").step == "profile_confirm_delete"
    assert say(bot, sid, "sim").step == "profile_deleted"
    assert store.profiles(channel="telegram", owner=sid) == []


def test_cancel_at_any_step_keeps_nothing_and_chinese_is_answered_in_chinese(bot, store):
    sid = "wx-openid-cancel"
    first = say(bot, sid, "我们公司想加入", "wechat")
    assert first.intent == "profile" and "取消" in first.text
    say(bot, sid, "宁波示例模具有限公司（测试）", "wechat")
    gone = say(bot, sid, "取消", "wechat")
    assert gone.step == "profile_cancelled" and gone.text == "已取消，未保存任何内容。"
    assert store.profiles(channel="wechat", owner=sid) == []
    after = say(bot, sid, "中国的模具企业", "wechat")
    assert after.intent == "search"  # the conversation goes on as before


@pytest.mark.parametrize("text", ["add my company", "I want to register our firm in the directory", "quero inscrever a nossa empresa",
                                  "我们企业怎么加入名录"])
def test_join_is_understood_by_meaning(bot, text):
    assert bot.understand(text, bot.store.load("s")).name == "profile"


def test_the_web_chat_opens_the_form(bot):
    reply = bot.respond("web-conv-1", "add my company", "web")
    assert reply.step == "profile_form" and reply.form["url"] == "/join?lang=en"


def test_delete_my_data_takes_the_identitys_profiles_too(bot, store):
    sid = "tg-901"
    data = profiles.validate(GOOD, "pt")
    store.add_profile("telegram", sid, "pt", data, 1.0)
    other = store.add_profile("telegram", "tg-902", "pt", data, 1.0)
    say(bot, sid, "apagar os meus dados")
    say(bot, sid, "sim")
    assert store.profiles(channel="telegram", owner=sid) == [] and store.profile(other) is not None
