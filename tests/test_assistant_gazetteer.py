"""The trilingual gazetteer: built from pycountry, cpca and pypinyin, read as places records and filters use."""

import json

import pytest

from assistant._gazetteer import DATA, District, default_gazetteer


@pytest.fixture(scope="module")
def gaz():
    return default_gazetteer()


def test_generated_file_holds_every_portuguese_district_and_chinese_province():
    places = json.loads(DATA.read_text(encoding="utf-8"))["places"]
    districts = {p["name"] for p in places if p["country"] == "PT" and p["level"] == "district"}
    assert len(districts) == 18 and {"Porto", "Leiria", "Aveiro", "Braga"} <= districts
    provinces = {p["iso"] for p in places if p["country"] == "CN" and p["level"] == "region"}
    assert len(provinces) == 34 and {"CN-ZJ", "CN-GD", "CN-SN", "CN-SX", "CN-MO"} <= provinces
    assert len([p for p in places if p["country"] == "CN" and p["level"] == "city"]) > 300


@pytest.mark.parametrize("text, name, level", [
    ("só em Cantão", "Guangdong", "region"), ("only in Canton", "Guangdong", "region"), ("Xangai", "Shanghai", "region"),
    ("Pequim", "Beijing", "region"), ("只看北部", "Norte", "region"), ("只要北部的", "Norte", "region"),
    ("only in the North", "Norte", "region"), ("Porto地区", "Porto", "district"), ("distrito de Aveiro", "Aveiro", "district"),
    ("在莱里亚", "Leiria", "city"), ("马里尼亚格兰德", "Marinha Grande", "city"), ("只看宁波", "Ningbo", "city"),
    ("Wenzhou", "Wenzhou", "city"), ("只看柯桥的", "Keqiao", "district"), ("só em Jiading", "Jiading", "district"),
    ("陕西", "Shaanxi", "region"), ("山西", "Shanxi", "region"), ("澳门", "Macao", "region"),
])
def test_places_in_three_languages_and_scripts(gaz, text, name, level):
    (place, term, start), *_ = gaz.mentions(text)
    assert (place.name, place.level) == (name, level)


@pytest.mark.parametrize("text", ["centro de investigação em energia", "fabricantes de madeira", "寻找合作伙伴",
                                  "东方的未来", "we want to take it further", "quero tomar uma decisão"])
def test_everyday_words_are_not_places(gaz, text):
    assert gaz.mentions(text) == []


def test_districts_filter_by_their_municipalities_and_counties_by_their_city(gaz):
    porto = gaz.find("Porto") if isinstance(gaz.find("Porto"), District) else gaz.places["district:porto"]
    assert isinstance(porto, District) and {"Porto", "Maia", "Matosinhos"} <= set(porto.cities)
    keqiao = gaz.places["district:keqiao"]
    assert keqiao.cities == ("Keqiao", "Shaoxing") and keqiao.label("zh") == "柯桥区"


def test_lexicon_places_keep_their_filter_value_and_labels(gaz):
    (place, _, _), = gaz.mentions("Ningbo")
    assert place.name == "Ningbo" and place.label("zh") == "宁波"
