"""Language detection, sector taxonomy and the place/kind lexicon."""

import pytest

from corpus import default_lexicon, default_taxonomy, detect_lang


@pytest.mark.parametrize(
    "text, lang",
    [
        ("我们想找葡萄牙的软木合作伙伴", "zh"),
        ("模具", "zh"),
        ("Procuramos fornecedores de moldes na China", "pt"),
        ("moldes China", "pt"),
        ("cortiça", "pt"),
        ("Looking for Chinese mould makers", "en"),
        ("footwear cluster", "en"),
        ("Buscamos proveedores de calzado en China para nuestra empresa", "es"),
        # French shares "de" with Portuguese and nothing else: its own function words decide
        ("Fournisseurs de soie en Chine pour une marque de foulards", "fr"),
        ("Nous cherchons un fabricant chinois de batteries", "fr"),
        ("fornecedores de seda na China para uma marca de lenços", "pt"),
    ],
)
def test_detect_lang(text, lang):
    assert detect_lang(text, default="en") == lang


def test_short_ambiguous_text_keeps_default():
    assert detect_lang("ok", default="zh") == "zh"
    assert detect_lang("2", default="pt") == "pt"
    assert detect_lang("", default="en") == "en"


def test_taxonomy_links_tags_in_every_language():
    tax = default_taxonomy()
    for tag in ("moulds", "Moldes", "模具", "tooling", "ferramentas especiais"):
        assert tax.link(tag) == "moulds", tag
    assert tax.link("underwater basket weaving") is None
    assert tax.normalise_tags(["Cortiça", "cork", "novel tag"]) == ["cork", "novel tag"]


def test_taxonomy_finds_sectors_in_queries():
    tax = default_taxonomy()
    assert [s for s, _ in tax.find("我们想找葡萄牙的软木合作伙伴")] == ["cork"]
    assert [s for s, _ in tax.find("fabricantes de moldes e calçado")] == ["moulds", "footwear"]
    assert tax.label("moulds", "zh") == "模具"


def test_lexicon_countries_kinds_places():
    lex = default_lexicon()
    assert lex.countries("empresas chinesas") == ["CN"]
    assert lex.countries("葡萄牙的") == ["PT"]
    assert lex.countries("Portuguese partners") == ["PT"]
    assert lex.kinds("集群") == ["cluster"] and lex.kinds("empresas") == ["company"]
    places = [p.name for p, _ in lex.find_places("só no Zhejiang, sem ser Ningbo")]
    assert places == ["Zhejiang", "Ningbo"]
    assert [p.name for p, _ in lex.find_places("除了宁波")] == ["Ningbo"]
    # "madeira" alone is wood, not the island
    assert lex.find_places("empresas de madeira") == []
