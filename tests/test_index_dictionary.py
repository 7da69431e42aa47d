"""English words of a question as Chinese keywords (index/_dictionary.py, CC-CEDICT)."""

import pytest

from corpus import Organisation
from index import SearchEngine
from index._dictionary import chinese_keywords, english_to_chinese
from index._query import _not_translated, analyse


def test_the_table_reads_a_word_by_its_first_senses_and_leaves_single_characters_out():
    table = english_to_chinese()
    assert "袜子" in table["socks"] and "雨伞" in table["umbrella"] and "领带" in table["necktie"]
    assert all(len(word) >= 2 for words in table.values() for word in words)  # 塞 ("to stop up", "cork") is not read
    assert all(len(words) <= 3 for words in table.values())


def test_stopwords_and_words_of_place_and_role_are_not_translated():
    assert chinese_keywords("socks", _not_translated) == list(english_to_chinese()["socks"])
    assert chinese_keywords("a sock", _not_translated) == list(english_to_chinese()["sock"])
    for word in ("the", "for", "china", "portugal", "supplier", "suppliers", "partner"):
        assert chinese_keywords(word, _not_translated) == [], word


def test_a_two_word_phrase_is_read_before_its_words():
    table = english_to_chinese()
    found = chinese_keywords("ice cream", _not_translated)
    assert found == [*table["ice cream"], *table["ice"], *table["cream"]] and found[0] == "冰淇淋"


def test_an_english_question_searches_the_chinese_words_too():
    expansion = analyse("umbrella factory in china", lang="en").expansion
    assert "雨伞" in expansion
    assert "雨伞" not in analyse("找雨伞工厂", lang="zh").expansion  # a Chinese question needs no translation


def test_a_question_in_another_language_translates_only_its_english_words():
    assert "袜子" in analyse("fornecedor de socks na China", lang="pt").expansion
    # "moldes" is Portuguese: read as English "molds" it would bring mildew (霉烂) along
    expansion = analyse("moldes para injeção na China", lang="pt").expansion
    assert not any(word in expansion for word in ("霉烂", "模子"))


def _org(**kw):
    base = {"kind": "company", "country": "CN", "lang": "zh"}
    return Organisation.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def chinese_only(encoder):
    return SearchEngine.build([
        _org(id="cn-sock-maker", name="示例针织有限公司", sectors=["针织"], description="一家生产袜子的工厂，产品有棉袜和运动袜，供应超市。"),
        _org(id="cn-umbrella-maker", name="示例日用品有限公司", sectors=["日用品"], description="一家生产雨伞和遮阳伞的企业。"),
        _org(id="cn-tea-house", name="示例茶叶贸易公司", sectors=["茶叶贸易"], description="一家经营乌龙茶的贸易公司。"),
        _org(id="cn-textile-mill", name="示例纺织有限公司", sectors=["纺织"], description="一家生产棉布和化纤面料的纺织厂。"),
    ], encoder)


@pytest.mark.parametrize("question, wanted, word", [
    ("chinese factory that makes socks", "cn-sock-maker", "袜子"),
    ("we want buy umbrella from china factory", "cn-umbrella-maker", "雨伞"),
])
def test_a_record_written_only_in_chinese_is_found_by_its_product_in_english(chinese_only, question, wanted, word):
    assert word in analyse(question, lang="en").expansion
    hits = chinese_only.search(question, limit=4, use_floor=False).hits
    assert hits[0].record.id == wanted, [h.record.id for h in hits]
    # no word of the question is in the records: the keyword match is the dictionary's word
    keyword = {h.record.id: h.keyword for h in hits}
    assert keyword[wanted] > 0 and keyword["cn-tea-house"] == 0
