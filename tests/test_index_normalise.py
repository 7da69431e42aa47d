"""Normalisation of what users type (index/_normalise.py): each component, and the words it must
leave alone. Real OpenCC, pypinyin, rapidfuzz and wordfreq; the shipped glossary and records."""

import json

import pytest

from corpus import DEFAULT_CORPUS, default_taxonomy
from index._normalise import (
    Vocabulary, base_vocabulary, correct, is_pinyin, normalise, pinyin_key, vocabulary_of,
)
from index._query import analyse


def changes(text, vocab=None):
    return [(c.kind, c.source, c.target) for c in normalise(text, vocab).changes]


@pytest.fixture(scope="module")
def names_vocab():
    """The glossary plus the shipped records' names, as an index generation builds it."""
    names = []
    for line in DEFAULT_CORPUS.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        names += [rec["name"], *(t.get("name", "") for t in rec.get("i18n", {}).values())]
    return Vocabulary([], [], names, base=base_vocabulary())


# -- Traditional -> Simplified (OpenCC) ---------------------------------------------------------

def test_traditional_becomes_simplified_word_by_word():
    n = normalise("想找葡萄牙的紡織企業")
    assert n.text == "想找葡萄牙的纺织企业"
    assert n.script == "hant"
    assert ("traditional", "紡織", "纺织") in changes("想找葡萄牙的紡織企業")
    assert normalise("軟木").text == "软木"


def test_simplified_and_latin_text_is_left_alone():
    for text in ("想找葡萄牙的纺织企业", "我们想找葡萄牙的软木合作伙伴", "moldes China", "著名的模具企业"):
        n = normalise(text)
        assert n.text == text and n.changes == [], text


# -- written Cantonese ---------------------------------------------------------------------------

def test_cantonese_function_words_become_mandarin():
    n = normalise("有冇葡萄牙嘅軟木公司？我想搵佢哋合作")
    assert n.text == "有没有葡萄牙的软木公司？我想找他们合作"
    kinds = {(k, f) for k, f, _ in changes("有冇葡萄牙嘅軟木公司？我想搵佢哋合作")}
    assert {("cantonese", "有冇"), ("cantonese", "嘅"), ("cantonese", "搵"), ("cantonese", "佢哋"), ("traditional", "軟木")} <= kinds


def test_cantonese_verbs_and_sentence_particles_become_mandarin():
    n = normalise("點解咁多廠都冇回覆我喎？我諗搵葡萄牙嘅軟木廠㗎")
    assert {("cantonese", "咁多", "这么多"), ("cantonese", "諗", "想"), ("cantonese", "喎", ""), ("cantonese", "㗎", "")} <= set(
        (c.kind, c.source, c.target) for c in n.changes)
    assert "㗎" not in n.text and "喎" not in n.text and "我想找葡萄牙的软木厂" in n.text


def test_mandarin_words_that_share_a_cantonese_character_stay():
    # no Cantonese marker: 係 is part of 關係 ("relationship"), 點 of 一點
    assert normalise("希望建立長期合作關係").text == "希望建立长期合作关系"
    assert all(c.kind != "cantonese" for c in normalise("希望建立長期合作關係，多一點了解").changes)
    # with a marker, 係 after 關 is still left alone
    assert "关系" in normalise("我哋想同佢建立合作關係").text


# -- accents ---------------------------------------------------------------------------------------

def test_plain_portuguese_gets_its_accents_back():
    assert normalise("fornecedores de cortica").text == "fornecedores de cortiça"
    assert normalise("calcado portugues").text == "calçado português"
    assert normalise("Ceramica e maquinas").text == "Cerâmica e máquinas"  # capital kept
    assert ("accents", "cortica", "cortiça") in changes("fornecedores de cortica")


def test_words_common_in_both_spellings_or_english_keep_theirs():
    for text in ("esta empresa", "e uma fabrica", "material for the serial production", "pais e mae"):
        assert not [c for c in normalise(text).changes if c.source in ("esta", "e", "material", "serial", "pais")], text


def test_accented_terms_still_match_the_glossary():
    # the matchers fold accents themselves; normalising only changes what is embedded
    assert "footwear" in analyse("calcado na China").sector_slugs


# -- pinyin ------------------------------------------------------------------------------------------

def test_pinyin_syllables():
    assert pinyin_key("Mujv") == "muju" and pinyin_key("lü se") == "lvse"
    assert is_pinyin("dianchi") and is_pinyin("mujv") and is_pinyin("zhejiang")
    assert not is_pinyin("chna") and not is_pinyin("moulds") and not is_pinyin("ma", min_syllables=2)


@pytest.mark.parametrize("typed, term", [
    ("ningbo mujv", "模具"), ("shenzhen dianchi", "电池"), ("guangdong fangzhi", "纺织"), ("ningbo muju", "模具"),
])
def test_pinyin_trade_words_become_chinese_terms(typed, term):
    n = normalise(typed)
    assert term in n.text and n.pinyin
    assert [c for c in n.changes if c.kind == "pinyin" and c.target == term]


def test_pinyin_record_names_and_places(names_vocab):
    assert ("pinyin", "ninghai mujucheng", "宁海模具城") in changes("ninghai mujucheng", names_vocab)
    assert ("pinyin", "zhongguo qingfangcheng", "中国轻纺城") in changes("zhongguo qingfangcheng", names_vocab)


def test_words_of_a_language_are_not_read_as_pinyin():
    # place names already known in Latin letters, and English/Portuguese words made of pinyin syllables
    for text in ("Zhejiang", "ningbo", "china", "panda dance", "change the tiles", "Portugal moda"):
        assert not [c for c in normalise(text).changes if c.kind == "pinyin"], text


def test_a_query_all_in_pinyin_is_chinese_and_one_pinyin_word_keeps_its_sentence_language():
    a = analyse("shenzhen dianchi")
    assert a.lang == "zh"  # Chinese typed without characters: its calibration and replies are Chinese
    assert "batteries" in a.sector_slugs
    # language guessers read pinyin sentences as Vietnamese, Tagalog or Swahili
    assert analyse("yiwu xiaoshangpin gongyingshang, fahuo dao putaoya").lang == "zh"
    assert analyse("procuramos fornecedores de mujv em ningbo").lang == "pt"


def test_a_record_is_found_by_the_pinyin_of_its_name_without_its_legal_form():
    from index._normalise import Vocabulary, name_heads, normalise as norm_with

    assert "科大讯飞" in name_heads("科大讯飞股份有限公司")
    vocab = Vocabulary([], [], names=["科大讯飞股份有限公司", "义乌国际商贸城（中国小商品城）"])
    n = norm_with("keda xunfei yuyin shibie", vocab)
    assert ("keda xunfei", "科大讯飞") in {(c.source, c.target) for c in n.changes}
    assert "义乌" in norm_with("yiwu gongyingshang", vocab).text


def test_a_sentence_typed_in_pinyin_is_read_whole_once_its_trade_words_are():
    n = normalise("women shi hefei de dianchi qiye, xiang zhao putaoya de kehu")
    found = {(c.source, c.target) for c in n.changes if c.kind == "pinyin"}
    assert {("dianchi", "电池"), ("women", "我们"), ("kehu", "客户"), ("zhao", "找")} <= found
    a = analyse("women shi hefei de dianchi qiye, xiang zhao putaoya de kehu")
    assert a.needs.split and "PT" in a.countries  # "找葡萄牙的客户": who is sought, and where
    assert "batteries" not in a.sector_slugs  # batteries is what the asker makes, not what it seeks


@pytest.mark.parametrize("text, typed, read", [
    ("zhongguo fanqiejiang gongchang", "fanqiejiang", "番茄酱"),  # a rarer word read whole, not 番茄 + 将
    ("putaoya jirou gongsi", "jirou", "肌肉/鸡肉"),  # two common nouns without tones: both kept
    ("zhongguo lizi dianchi gongchang", "lizi", "例子/粒子/离子"),
])
def test_a_pinyin_word_is_read_whole_and_keeps_the_nouns_it_may_mean(text, typed, read):
    """Tone-less pinyin cannot tell 肌肉 from 鸡肉: the most frequent reading alone read a chicken
    processor's request as muscles; each common noun the word may mean is searched for."""
    assert ("pinyin", typed, read) in changes(text)


def test_one_pinyin_term_in_another_language_leaves_the_sentence_alone():
    for text in ("looking for a mujv factory in ningbo", "procuro fabrica de mujv em portugal"):
        assert [c.source for c in normalise(text).changes if c.kind == "pinyin"] == ["mujv"], text


# -- typos (rapidfuzz against the service's own vocabulary) ----------------------------------------

@pytest.mark.parametrize("typo, fixed", [
    ("chna", "china"), ("moldess", "moldes"), ("pharamceutical", "pharmaceutical"), ("sapatilas", "sapatilhas"),
    ("fornecedroes", "fornecedores"), ("ceramcis", "ceramics"),
])
def test_typos_are_corrected_towards_the_vocabulary(typo, fixed):
    assert fold_eq(correct(typo, base_vocabulary()), fixed)
    assert [c for c in normalise(f"{typo} partners").changes if c.kind == "typo" and c.source == typo]


def fold_eq(a, b):
    from corpus import fold

    return a is not None and fold(a) == fold(b)


def test_real_words_are_never_corrected():
    # vocabulary terms, common words of pt/en/es/fr, rare real words, names, acronyms, short words
    for text in ("moulds cork wine", "fornecedores de vinho", "Goodyear welting", "IAPMEI", "PME", "the mold",
                 "Sapatos Ribeira em Felgueiras", "Proveedores de calzado", "fabricants de chaussures", "dev ops"):
        assert not [c for c in normalise(text).changes if c.kind == "typo"], text


def test_forms_and_cognates_of_known_words_are_not_typos():
    # plural and gender forms, accented words of any of the four languages, cognates two edits away
    for text in ("vinícolas chinesas", "vinicolas chinesas", "equipamentos fotovoltaicos", "setor metalomecânico",
                 "integradores de sistemas", "aeronáuticos", "que exportem", "distributers", "ônibus elétrico",
                 "promoção turística", "pièces aéronautiques", "industrias agroalimentares"):
        assert not [c for c in normalise(text).changes if c.kind == "typo"], text


def test_a_chinese_term_typed_by_its_sound_is_corrected():
    assert ("typo", "葡萄呀", "葡萄牙") in changes("葡萄呀的鞋子品牌")
    assert ("typo", "机沟", "机构") in changes("葡萄牙的金属焊接检测机沟")


def test_chinese_text_across_word_boundaries_is_left_alone():
    # "动力|电池" holds 力电池 (锂电池's sound), "中国|纺织" holds 国纺 (国防's), "宁波|是" sounds like 宁波市
    for text in ("动力电池企业", "中国纺织城", "宁波是中国的模具之都", "宁德时代新能源", "陶瓷企业", "的国际合作"):
        assert not normalise(text).changes, text


def test_a_capitalised_word_inside_a_sentence_is_corrected_only_by_one_edit():
    assert ("typo", "Portgual", "Portugal") in changes("moulds suppliers in Portgual")
    assert not [c for c in normalise("we met Ramalhão yesterday").changes if c.kind == "typo"]


def test_a_typo_in_a_record_name_is_corrected_with_the_generation_vocabulary(names_vocab):
    assert [c for c in normalise("Corticera Amorim", names_vocab).changes if c.target.lower() == "corticeira"]


# -- Spanish and French reach the glossary ---------------------------------------------------------

def test_records_own_sector_labels_join_the_vocabulary():
    """Records from other sources name their trades in their own words: a user typing one in pinyin
    ("hanfu") or misspelt ("porcelanatto") is read with the labels of the records loaded."""
    import numpy as np

    from corpus import Organisation
    from index._records import RecordColumns

    recs = [Organisation.model_validate({"id": "cn-hanfu", "kind": "cluster", "name": "曹县汉服产业集群", "country": "CN",
                                         "sectors": ["汉服", "演出服"], "description": "汉服生产基地。"}),
            Organisation.model_validate({"id": "pt-tiles", "kind": "company", "name": "Cerâmica Exemplo", "country": "PT",
                                         "sectors": ["porcelanato", "revestimentos"], "description": "Fábrica de pavimentos."})]
    vocab = vocabulary_of(RecordColumns.merge(None, [r.id for r in recs], np.full(2, -1), recs))
    assert ("pinyin", "hanfu", "汉服") in changes("hanfu wholesale", vocab)
    assert ("typo", "porcelanatto", "porcelanato") in changes("fabrica de porcelanatto", vocab)
    assert not [c for c in changes("hanfu wholesale") + changes("fabrica de porcelanatto") if c[0] in ("pinyin", "typo")]


def test_every_sector_has_spanish_and_french_labels():
    tax = default_taxonomy()
    for slug, sector in tax.sectors.items():
        assert sector.labels.get("es") and sector.labels.get("fr"), slug
        assert tax.link(sector.labels["es"]) == slug and tax.link(sector.labels["fr"]) == slug


@pytest.mark.parametrize("text, slug", [
    ("Proveedores de calzado en Portugal", "footwear"), ("Buscamos fabricantes de moldes en China", "moulds"),
    ("Nous cherchons des fabricants de liège au Portugal", "cork"), ("bodegas de vino en China", "wine"),
    ("entreprises de l'industrie pharmaceutique en Chine", "pharma"),
])
def test_spanish_and_french_questions_name_sectors(text, slug):
    a = analyse(text)
    assert slug in a.sector_slugs
    assert a.lang in ("pt", "zh", "en", "es", "fr")


# -- the stage in the analysis ----------------------------------------------------------------------

def test_analysis_reads_the_normalised_text_and_keyword_search_both():
    a = analyse("想找葡萄牙的紡織企業")
    assert a.sector_slugs == ["textiles"] and a.countries == ["PT"]
    assert "纺织" in a.focus  # what is embedded
    assert "紡織" in a.expansion or "紡織" in " ".join(a.expansion)  # the words as typed, for keyword search
    u = a.understood()
    assert {"kind": "traditional", "from": "紡織", "to": "纺织"} in u["normalised"]
    assert u["hints"]["script"] == "hant"


def test_the_vocabulary_is_built_once_per_set_of_columns(shipped_engine):
    cols = shipped_engine._columns
    assert vocabulary_of(cols) is vocabulary_of(cols)
    assert vocabulary_of(None) is base_vocabulary()


def test_a_message_all_in_pinyin_is_read_whole_even_with_one_word_left():
    # "putaoya" and "gongsi" are read first (a place, a common word); "niunai" (牛奶) is the trade
    assert normalise("putaoya niunai gongsi").text == "葡萄牙 牛奶 公司"
    assert normalise("putaoya tuliao gongsi").text == "葡萄牙 涂料 公司"
    # syllables typed apart that make one word are read as that word
    assert ("pinyin", "tao ci", "陶瓷") in changes("putaoya tao ci gongchang")
    assert normalise("ningbo mujv dance").text == "ningbo 模具 dance"  # a word of the sentence's language stays
