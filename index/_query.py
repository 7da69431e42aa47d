"""Query understanding: language, whom the query seeks, and the sectors, countries, kinds and
places that describe that partner.

Normalisation (``_normalise``) comes first: Traditional characters, written Cantonese, pinyin,
missing accents and typos are brought to the vocabulary's words, so every later step (needs,
sectors, places, the embedding) reads the normalised text; keyword search gets the words as
typed too. Needs analysis (``_needs``) then splits "we are X, we look for Y" first: what the query says about
the partner becomes soft boosts and extra keyword terms (a sector named in Chinese also
searches its Portuguese and English synonyms); what it says about the asker only points at
complementary sectors and the other side of the alliance. Explicit filters stay hard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Callable

from corpus import DATA_DIR, Lexicon, Organisation, Place, Taxonomy, default_lexicon, default_taxonomy, default_value_chain, detect_lang

from ._dictionary import chinese_keywords
from ._keywords import tokenize
from ._needs import ALLIANCE, Needs, Side, _complements, analyse_needs
from ._normalise import Normalised, Vocabulary, is_common_in, language_of, normalise


@dataclass
class QueryAnalysis:
    text: str
    lang: str
    sectors: list[tuple[str, str]] = field(default_factory=list)  # (slug, term as written) sought
    countries: list[str] = field(default_factory=list)  # where the partner should be (named or implied)
    kinds: list[str] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # keyword tokens of the text about the partner
    expansion: list[str] = field(default_factory=list)  # tokens of synonyms in other languages
    complements: list[str] = field(default_factory=list)  # sectors that fit the asker's, by the value chain
    needs: Needs = field(default_factory=lambda: Needs("", Side()))
    focus: str = ""  # the text that describes the partner: what is embedded
    normalised: Normalised | None = None  # what normalisation changed (None: the text was analysed as given)

    @property
    def sector_slugs(self) -> list[str]:
        return [slug for slug, _ in self.sectors]

    def understood(self) -> dict[str, Any]:
        """What the service understood, for the API and ``cpc search --explain``."""
        out = self.needs.to_dict()
        norm = self.normalised
        out["normalised"] = norm.to_list() if norm else []
        out["hints"] = norm.hints() if norm else {}
        return out


@lru_cache(maxsize=1)
def _generic_tokens() -> frozenset[str]:
    """Keyword tokens that say where a partner is, what kind of organisation or what role it has
    (countries, kinds, places, supplier/customer/...), not what it makes or does."""
    lex = json.loads((DATA_DIR / "lexicon.json").read_text(encoding="utf-8"))
    chain = json.loads((DATA_DIR / "value_chain.json").read_text(encoding="utf-8"))
    terms: list[str] = []
    for group in (lex["countries"], lex["kinds"], chain["roles"]):
        for item in group.values():
            terms += [*item["terms"], *item["labels"].values()]
    for item in lex["regions"] + lex["cities"]:
        terms += [item["name"], *item["terms"], *item["labels"].values()]
    # words that name a partnership, not a trade
    terms += ["partner", "partnership", "cooperation", "collaboration", "business", "new", "parceiro", "parceria",
              "cooperação", "colaboração", "negócio", "novo", "合作伙伴", "伙伴", "合作", "机会", "新", "业务"]
    return frozenset(t for term in terms for t in tokenize(term))


def _not_translated(word: str) -> bool:
    """A word whose Chinese is not searched for: one the keyword search drops (a stopword), or one
    that says where a partner is or what role it has (``_generic_tokens``)."""
    tokens = tokenize(word)
    return not tokens or tokens[0] in _generic_tokens()


def _english_not_native(lang: str, word: str) -> bool:
    """In a question in ``lang`` (pt, es, fr, ...), whether ``word`` is English and not a word of
    ``lang``: "socks" in "fornecedor de socks" is; "moldes" (mould, read as mildew) is not."""
    return is_common_in(word, "en") and not is_common_in(word, lang)


def names_a_trade(partner_text: str) -> bool:
    """Whether the words about the partner say what it does, beyond where it is and its role:
    "fornecedores chineses de cadeiras giratórias" does, "clientes na China" does not. Only the
    second is searched by the asker's complementary sectors' names: added to the first, the
    names outweigh the trade asked for (a wig maker's request read as fashion and textiles)."""
    generic = _generic_tokens()
    return any(t not in generic and not t.isdigit() for t in tokenize(partner_text))


def analyse(
    text: str,
    lang: str | None = None,
    taxonomy: Taxonomy | None = None,
    lexicon: Lexicon | None = None,
    default_lang: str = "en",
    extra_places: Callable[[str], list[Place]] | None = None,
    vocabulary: Vocabulary | None = None,
    normalise_text: bool = True,
) -> QueryAnalysis:
    """``text`` as understood; ``vocabulary`` is the index's (``_normalise.vocabulary_of``), the
    glossary's alone when None; ``normalise_text=False`` analyses the text as given (a record's own)."""
    taxonomy = taxonomy or default_taxonomy()
    lexicon = lexicon or default_lexicon()
    original = text
    norm = normalise(text, vocabulary) if normalise_text else None
    if norm is not None:
        text = norm.text
        lang = lang or language_of(norm, default=default_lang) or default_lang
    else:
        lang = lang or detect_lang(text, default=default_lang) or default_lang
    needs = analyse_needs(text, taxonomy, lexicon, extra_places=extra_places)
    seeking = needs.seeking
    terms = dict(taxonomy.find(seeking.text)) if needs.split else dict(taxonomy.find(text))
    sectors = [(slug, terms.get(slug, slug)) for slug in seeking.sectors]
    complements = [s for s in needs.partner_sectors() if s not in seeking.sectors]
    also = [s for s in needs.peers if s not in seeking.sectors and s not in complements]
    focus = needs.partner_text or text
    if needs.split:
        if complements and not names_a_trade(focus):  # "clientes na China" says nothing of what the partner does: name it
            focus = f"{focus} ({', '.join(taxonomy.label(s, lang) for s in complements[:4])})".strip()
    tokens = tokenize(focus)
    expansion: list[str] = []
    for slug in seeking.sectors + complements[:4]:
        sector = taxonomy.sectors[slug]
        for code in ("pt", "zh", "en"):
            label = sector.labels.get(code)
            if label:
                expansion += tokenize(label)
    if norm is not None:  # keyword search also sees the words as typed (records may spell them so)
        for change in norm.changes:
            if change.target and change.target in focus:  # a dropped particle (㗎) is not searched for
                expansion += tokenize(change.source)
    if lang != "zh":  # English words of the question also sought among records written in Chinese
        english = None if lang == "en" else partial(_english_not_native, lang)
        for word in chinese_keywords(focus, _not_translated, english):
            expansion += tokenize(word)
    own = set(tokens)
    expansion = [t for t in dict.fromkeys(expansion) if t not in own]
    return QueryAnalysis(
        text=original,
        lang=lang,
        sectors=sectors,
        countries=needs.target_countries,
        kinds=seeking.kinds,
        places=seeking.places,
        tokens=tokens,
        expansion=expansion,
        complements=complements + also,
        needs=needs,
        focus=focus,
        normalised=norm,
    )


def analyse_record(rec: Organisation, lang: str | None = None) -> QueryAnalysis:
    """An organisation as the asker: partners on the other side of the alliance for what it seeks
    (``seeks``, else what it does), in the sectors it names, that complement its own, or its own."""
    text = rec.seeks or rec.description
    a = analyse(text, lang=lang or rec.lang, normalise_text=False)
    needs = a.needs
    needs.asker = Side(text=rec.name, countries=[rec.country], sectors=list(rec.sectors), kinds=[rec.kind])
    needs.target_countries = [c for c in ALLIANCE if c != rec.country] if rec.country in ALLIANCE else []
    needs.country_implied = True
    needs.complements = _complements(rec.sectors, [], [], default_value_chain())  # buyers and suppliers alike
    needs.peers = [s for s in rec.sectors if s not in needs.seeking.sectors]
    a.countries = needs.target_countries
    a.complements = [s for s in dict.fromkeys(needs.complement_sectors() + needs.peers) if s not in a.sector_slugs]
    a.focus = text
    return a
