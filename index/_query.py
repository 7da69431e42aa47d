"""Query understanding: language, and the sectors, countries, kinds and places a query names.

What it finds becomes soft boosts in the ranking and extra keyword terms (a sector named
in Chinese also searches its Portuguese and English synonyms); explicit filters stay hard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corpus import Lexicon, Place, Taxonomy, default_lexicon, default_taxonomy, detect_lang

from ._keywords import tokenize


@dataclass
class QueryAnalysis:
    text: str
    lang: str
    sectors: list[tuple[str, str]] = field(default_factory=list)  # (slug, term as written)
    countries: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # keyword tokens of the text itself
    expansion: list[str] = field(default_factory=list)  # tokens of synonyms in other languages

    @property
    def sector_slugs(self) -> list[str]:
        return [slug for slug, _ in self.sectors]


def analyse(
    text: str,
    lang: str | None = None,
    taxonomy: Taxonomy | None = None,
    lexicon: Lexicon | None = None,
    default_lang: str = "en",
) -> QueryAnalysis:
    taxonomy = taxonomy or default_taxonomy()
    lexicon = lexicon or default_lexicon()
    lang = lang or detect_lang(text, default=default_lang) or default_lang
    sectors = taxonomy.find(text)
    places = [p for p, _ in lexicon.find_places(text)]
    tokens = tokenize(text)
    expansion: list[str] = []
    for slug, _ in sectors:
        sector = taxonomy.sectors[slug]
        for code in ("pt", "zh", "en"):
            label = sector.labels.get(code)
            if label:
                expansion += tokenize(label)
    own = set(tokens)
    expansion = [t for t in dict.fromkeys(expansion) if t not in own]
    return QueryAnalysis(
        text=text,
        lang=lang,
        sectors=sectors,
        countries=lexicon.countries(text),
        kinds=lexicon.kinds(text),
        places=places,
        tokens=tokens,
        expansion=expansion,
    )
