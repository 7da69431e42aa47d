"""Needs analysis without an index: who asks, whom they seek, and what complements them."""

import pytest

from corpus import default_value_chain
from index import analyse, analyse_needs
from index._query import names_a_trade


@pytest.mark.parametrize(
    "text, asker, seeking, countries, implied",
    [
        # zh: a Wenzhou shoe factory seeking Portuguese footwear design
        ("温州的鞋厂想找葡萄牙的鞋业设计合作伙伴",
         {"places": ["Wenzhou"], "sectors": ["footwear"]}, {"sectors": ["footwear", "creative-industries"]}, ["PT"], False),
        ("我们是宁波的模具企业，想找葡萄牙汽车零部件产业的客户",
         {"places": ["Ningbo"], "sectors": ["moulds"]}, {"sectors": ["automotive"], "roles": ["customer"]}, ["PT"], False),
        ("葡萄牙的健康产业集群想在中国找生物医药产业园区合作",
         {"countries": ["PT"], "sectors": ["health"]}, {"sectors": ["pharma"]}, ["CN"], False),
        # pt
        ("Somos uma PME de moldes da Marinha Grande e procuramos clientes do setor automóvel na China",
         {"places": ["Marinha Grande"], "sectors": ["moulds"]}, {"sectors": ["automotive"], "roles": ["customer"]}, ["CN"], False),
        ("Marca portuguesa de sapatilhas quer subcontratar o fabrico a uma fábrica chinesa de calçado desportivo.",
         {"countries": ["PT"], "sectors": ["footwear"]}, {"sectors": ["footwear"], "roles": ["manufacturer"]}, ["CN"], False),
        ("Procuramos rolhas de cortiça para a nossa adega no Douro",
         {"sectors": ["wine"]}, {"sectors": ["cork"]}, [], False),
        # en
        ("We are a Portuguese olive oil producer looking for food importers in China",
         {"countries": ["PT"], "sectors": ["agrifood"]}, {"sectors": ["agrifood"], "roles": ["distributor"]}, ["CN"], False),
        ("A Shenzhen battery supplier seeking Portuguese e-mobility partners",
         {"places": ["Shenzhen"], "sectors": ["batteries"]}, {"sectors": ["mobility"]}, ["PT"], False),
        ("OK. Then Portuguese tourism partners for a Chinese travel agency",
         {"countries": ["CN"]}, {"sectors": ["tourism"]}, ["PT"], False),
        # the side a request helps is the asker's
        ("那葡萄牙有帮助中国企业去投资的机构吗？", {"countries": ["CN"]}, {"roles": ["investor"]}, ["PT"], False),
        ("Portuguese agencies helping Chinese firms invest", {"countries": ["CN"]}, {}, ["PT"], False),
        # the other side is implied by the asker's: nothing says where the partner should be
        ("We make cork stoppers in Portugal and need customers",
         {"countries": ["PT"], "sectors": ["cork"]}, {"roles": ["customer"]}, ["CN"], True),
        ("我们是深圳的电子企业，想找研发合作伙伴",
         {"places": ["Shenzhen"], "sectors": ["electronics"]}, {"roles": ["rnd"]}, ["PT"], True),
    ],
)
def test_asker_and_sought_partner_in_three_languages(text, asker, seeking, countries, implied):
    needs = analyse_needs(text)
    assert needs.split, needs.to_dict()
    a = needs.asker.to_dict()
    for key, values in asker.items():
        assert set(values) <= set(a[key]), (key, a)
    s = needs.to_dict()["seeking"]
    for key, values in seeking.items():
        assert set(values) <= set(s[key]), (key, s)
    assert needs.target_countries == countries and needs.country_implied is implied


@pytest.mark.parametrize(
    "text",
    ["fabricantes de moldes na China", "葡萄牙的陶瓷企业", "Portuguese firms that need moulds",
     "想在葡萄牙北部找服装加工厂合作", "partners for the automotive industry in China"],
)
def test_plain_searches_have_no_asker(text):
    needs = analyse_needs(text)
    assert not needs.split, needs.to_dict()
    assert needs.partner_text == text  # the whole query describes the partner


def test_value_chain_points_a_seller_at_its_buyers():
    needs = analyse_needs("Somos produtores de cortiça e queremos exportar para a China")
    assert needs.asker.sectors == ["cork"] and "customer" in needs.roles
    assert {"wine", "construction"} <= set(needs.partner_sectors())
    assert "cork" not in needs.partner_sectors()  # a customer, not a competitor
    # a buyer looking for suppliers is pointed the other way
    needs = analyse_needs("We are a Portuguese footwear maker looking for suppliers in China")
    assert "textiles" in needs.partner_sectors() and "retail" not in needs.partner_sectors()


def test_value_chain_data_names_known_sectors_in_three_languages():
    from corpus import default_taxonomy

    chain, tax = default_value_chain(), default_taxonomy()
    assert len(chain.links) >= 60
    for link in chain.links:
        assert link.supplier in tax and link.buyer in tax and link.supplier != link.buyer
        assert all(link.what.get(lang) for lang in ("pt", "zh", "en")), link
    assert chain.link("cork", "wine") is chain.link("wine", "cork") is not None
    assert chain.roles("procuramos distribuidores e importadores") == ["distributor"]
    assert chain.roles("寻找供应商") == ["supplier"]


def test_what_is_embedded_is_the_partner_not_the_asker():
    a = analyse("温州的鞋厂想找葡萄牙的鞋业设计合作伙伴")
    assert "温州" not in a.focus and "葡萄牙" in a.focus
    assert a.countries == ["PT"] and a.sector_slugs == ["footwear", "creative-industries"]
    # nothing said of the partner's trade: the complementary sectors are named for the encoder
    a = analyse("Somos produtores de cortiça e queremos exportar para a China", lang="pt")
    assert "Vinho" in a.focus or "vinho" in a.focus.lower()
    assert a.understood()["asker"]["sectors"] == ["cork"]


def test_places_come_from_an_extra_source():
    from corpus import Place

    yiwu = Place("Linpu Zhen", "CN", "city", "Zhejiang", {})
    needs = analyse_needs("suppliers in Linpu Zhen", extra_places=lambda t: [yiwu] if "linpu" in t.lower() else [])
    assert needs.seeking.places == [yiwu] and needs.target_countries == ["CN"]


# -- long messages: the sought part wherever it is -----------------------------------------------
PROFILE_PT = (
    "A Adega Vale Escuro é uma empresa familiar do Douro, fundada em 1962, que produz vinhos tintos, brancos e do Porto "
    "a partir de 40 hectares de vinha própria. Os nossos clientes querem vinhos com história e a equipa de enologia, com "
    "seis pessoas, procura sempre novas castas e técnicas de vinificação sustentáveis. Exportamos para o Brasil, a Alemanha "
    "e os Estados Unidos e participamos todos os anos na ProWein e na Vinexpo. Temos certificação de produção integrada e "
    "uma loja de enoturismo que recebe 8.000 visitantes por ano. Queremos crescer na Ásia nos próximos três anos. "
    "Procuramos importadores e distribuidores de vinho na China, de preferência em Xangai ou Cantão.")
PROFILE_ZH = (
    "我们是浙江温州的一家皮鞋制造企业，成立于1995年，拥有员工三百多人，年产男女皮鞋约二百万双，产品主要出口欧洲、中东和南美市场。"
    "公司设有自己的研发中心和检测实验室，需要不断提升设计能力，也一直想要开拓新的高端市场。近年来我们投资了自动化裁断和缝制生产线，"
    "并通过了ISO9001质量管理体系认证。我们的客户对交货期和小批量订单要求越来越高，我们也在积极参加米兰和杜塞尔多夫的国际鞋展。"
    "为了进一步提升产品的设计和品质，我们正在寻找葡萄牙的鞋业设计机构和皮革技术中心，希望开展联合研发和设计合作。")


def test_a_long_profile_is_searched_for_its_last_clear_seek_sentence():
    pt = analyse_needs(PROFILE_PT)
    assert pt.partner_text.strip().startswith("importadores e distribuidores de vinho na China")
    assert pt.target_countries == ["CN"] and "distributor" in pt.roles and "wine" in pt.asker.sectors
    zh = analyse_needs(PROFILE_ZH)  # "需要" and "想要" earlier on are the asker's story
    assert zh.partner_text.startswith("葡萄牙的鞋业设计机构")
    assert zh.target_countries == ["PT"] and "footwear" in zh.seeking.sectors and "Wenzhou" in [p.name for p in zh.asker.places]


def test_a_short_message_still_splits_at_its_first_seek_word():
    n = analyse_needs("Procuramos fornecedores de moldes que procuram novos clientes")
    assert n.partner_text.startswith("Procuramos fornecedores de moldes") or "fornecedores de moldes" in n.partner_text
    assert "moulds" in n.seeking.sectors


def test_a_seek_verb_that_points_back_keeps_the_partner_described_before_it():
    n = analyse_needs("有没有葡萄牙的软木公司？我想找他们合作")
    assert not n.split and "cork" in n.seeking.sectors and n.target_countries == ["PT"]


@pytest.mark.parametrize("text, sought, asker", [
    ("alguém conhece fábrica de moldes na China? quero revender aqui no Brasil", ["CN"], ["BR"]),
    ("有没有葡萄牙的软木厂？想搵大批货出口非洲", ["PT"], []),
    ("any cork firms in Portugal? we want to resell them in Brazil", ["PT"], ["BR"]),
])
def test_a_question_before_the_seek_sentence_is_the_partner_sought(text, sought, asker):
    """A question asks for the partner and never says who asks; the sentence after it is the
    asker's own plan, and where that plan is, is the asker's place, not the partner's."""
    needs = analyse_needs(text)
    assert needs.target_countries == sought and needs.asker.countries == asker
    assert analyse(text).focus.rstrip().endswith(("?", "？"))


@pytest.mark.parametrize("text, trade", [
    ("Somos uma fábrica de calçado em Felgueiras e procuramos fornecedores chineses de atacadores", "atacadores"),
    ("We are a Portuguese wine producer looking for makers of wooden gift boxes in China", "wooden gift boxes"),
])
def test_a_partner_described_by_its_trade_is_embedded_without_the_askers_complements(text, trade):
    """The complementary sectors' names are added to what is embedded only when the words about
    the partner say nothing of its trade ("clientes na China"); added to a trade the taxonomy does
    not know, they outweigh it (shoelaces read as textiles and fashion)."""
    a = analyse(text)
    assert a.needs.split and a.complements  # the asker's trade still points at its complements (boosts)
    assert trade in a.focus and "(" not in a.focus, a.focus
    assert not names_a_trade("clientes na China") and not names_a_trade("中国的合作伙伴")
    assert names_a_trade(trade)


@pytest.mark.parametrize("text, country", [
    ("I am search factory in China for make socks, big quantity", "CN"),  # non-native English
    ("we is looking portugal company making the door for hotel project", "PT"),
    ("busco fabricante chino de calcetines al por mayor", "CN"),  # Spanish
    ("fabricant chinois de perruques", "CN"),  # French
    ("Somos una conservera gallega y buscamos proveedores portugueses de latas", "PT"),
])
def test_the_country_sought_is_read_in_non_native_english_spanish_and_french(text, country):
    """A bare "search"/"looking" is a seek verb ("I am search factory in China" is not an asker in
    China), and the lexicon names the alliance's countries in Spanish and French too."""
    needs = analyse_needs(text)
    assert needs.target_countries == [country], needs.to_dict()
    assert country not in needs.asker.countries


def test_countries_the_asker_trades_with_are_not_where_it_is():
    """A profile names where it exports, imports and sells: those are trade partners' countries.
    Read as the asker's own, three of them left it with no country, and one ("importa da China")
    put a Brazilian shop in China, so the partner was looked for in Portugal."""
    n = analyse_needs("Somos uma rede de lojas de ferragens em Curitiba que importa ferramentas da China, "
                      "e procuramos fabricantes de fechaduras")
    assert "CN" not in n.asker.countries and n.target_countries != ["PT"], n.to_dict()
    n = analyse_needs("We are a Portuguese cork producer exporting to France, Italy and the United States, "
                      "looking for wine distributors")
    assert n.asker.countries == ["PT"] and n.target_countries == ["CN"] and n.country_implied
    n = analyse_needs("我们是宁波的模具企业，产品出口德国和美国，想找汽车零部件客户")
    assert n.asker.countries == [] and n.target_countries == ["PT"]


@pytest.mark.parametrize("text, partner, asker_word", [
    ("Our company produces canned sardines in Matosinhos since 1920. We are looking for importers and distributors "
     "in China. Our products are sold in 25 countries and we recently opened a line for organic tuna.",
     "importers and distributors in China.", "tuna"),
    ("我们是一家位于深圳的锂电池企业。我们正在寻找葡萄牙的储能项目开发商作为客户。公司拥有完整的电芯生产线，产品出口东南亚。",
     "葡萄牙的储能项目开发商作为客户。", "电芯"),
])
def test_sentences_about_the_asker_after_the_seek_sentence_are_not_the_partner(text, partner, asker_word):
    n = analyse_needs(text)
    assert n.partner_text.strip() == partner, n.partner_text
    assert asker_word in n.asker.text
    # what follows the seek sentence and is not about the asker still describes the partner
    assert "Ningbo" in analyse_needs("Procuramos fábricas de moldes na China. De preferência em Ningbo.").partner_text


def test_a_profile_without_a_clear_seek_phrase_is_read_for_its_closing_wish():
    """Held-out profiles say what they want loosely ("We would welcome contact with ...", "期待与 ...
    合作") or with weak words only; the story comes first, the wish last."""
    text = ("We are a mould maker based in Marinha Grande, Portugal, founded in 1985. We design and build injection "
            "moulds for automotive and packaging customers, with 80 employees and a tool shop of 40 CNC machines. Our "
            "customers need short lead times and our moulds go to Germany, France and Spain. We would welcome contact "
            "with Chinese automotive parts manufacturers.")
    n = analyse_needs(text)
    assert n.target_countries == ["CN"] and "Chinese automotive parts manufacturers" in n.partner_text
    assert "moulds" in n.asker.sectors and "Marinha Grande" in [p.name for p in n.asker.places]
    weak = ("Somos uma empresa de Águeda que fabrica bicicletas elétricas desde 1990, com 150 pessoas e uma linha de "
            "montagem própria. Os nossos clientes precisam de entregas rápidas e o mercado quer cada vez mais "
            "modelos leves. Exportamos para Espanha, França e Alemanha e temos uma rede de 300 lojas parceiras, além de "
            "uma loja online e uma equipa de assistência técnica em Lisboa e no Porto. "
            "Agora queremos fornecedores chineses de baterias de lítio e motores elétricos.")
    n = analyse_needs(weak)
    assert n.partner_text.strip().startswith("fornecedores chineses de baterias") and n.target_countries == ["CN"]
    zh = analyse_needs("宁波某模具有限公司成立于2003年，位于宁海模具城，拥有员工二百余人，主要生产汽车内饰件和家电外壳注塑模具，"
                       "年产模具六百余套，产品出口德国、墨西哥和美国。公司拥有五轴加工中心和模流分析团队，通过了IATF16949认证。"
                       "公司期待与葡萄牙的汽车零部件企业建立长期合作关系。")
    assert zh.target_countries == ["PT"] and zh.partner_text.startswith("葡萄牙的汽车零部件企业")
