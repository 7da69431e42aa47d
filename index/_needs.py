"""Needs analysis: who is asking, and whom they are looking for.

"温州的鞋厂想找葡萄牙的鞋业设计合作伙伴" names two organisations: the asker (a Wenzhou shoe
factory) and the partner sought (Portuguese footwear design). Search must look for the second
one; the first tells which side of the alliance the asker is on and, through the value chain,
which sectors complement theirs ("we make cork, we look for customers" -> wine).

Rules in pt, zh and en: a seek verb ("procuramos", "想找", "looking for") splits the message;
what comes before it is the asker when it says who they are ("Somos ...", "我们是...", "We are
...") or names a place, sector or kind; "our/nossos/我们的 X" and "export X to" put X on the
asker's side. Pure functions over the shipped taxonomy, lexicon and value chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corpus import Lexicon, Link, Place, Taxonomy, ValueChain, default_lexicon, default_taxonomy, default_value_chain, fold

ALLIANCE = ("PT", "CN")

# Verbs and phrases that introduce the partner sought. Longest first within the alternation.
_SEEK_TERMS = [
    # en
    "looking for", "look for", "seeking", "searching for", "search for", "in search of", "want to find",
    "wants to find", "would like to find", "would like to meet", "would like to work with", "hope to find",
    "hoping to find", "want to meet", "want to work with", "wish to find", "need to find", "trying to find",
    "interested in finding", "interested in meeting", "seek", "seeks", "need", "needs", "wants", "want",
    # as non-native English has them: "I am search factory in China", "we is looking portugal company"
    "search", "searching", "looking", "find",
    # a profile's closing wish: "We would welcome contact with Chinese parts makers"
    "would welcome contact with", "would welcome", "welcome contact with", "keen to meet", "keen to work with", "open to partnerships with",
    "gostariamos de contactar", "gostariamos de colaborar com", "estabelecer parcerias com", "estabelecer parceria com",
    "cooperar com", "colaborar com",
    # pt (accent-folded)
    "procuramos", "procuro", "procura", "procuram", "procurando", "a procura de", "buscamos", "busco",
    "queremos encontrar", "quero encontrar", "queremos conhecer", "quero conhecer", "gostariamos de encontrar",
    "gostaria de encontrar", "gostariamos de conhecer", "precisamos de", "preciso de", "necessitamos de",
    "pretendemos encontrar", "interessados em", "interessado em", "interessada em",
    # selling abroad: "Somos produtores de cortiça e queremos exportar para a China"
    "want to export", "wants to export", "would like to export", "want to sell", "plan to export",
    "queremos exportar", "quero exportar", "pretendemos exportar", "gostariamos de exportar", "queremos vender",
    "quer", "querem", "queremos", "quero", "procura-se", "procuram-se", "pretende", "pretendem",
    # es and fr (accent-folded): the analysis reads them; replies stay in pt, zh or en
    "estamos buscando", "buscando", "buscan", "necesitamos", "nous cherchons", "cherchons", "recherchons",
    "je cherche", "nous recherchons", "a la recherche de", "souhaitons trouver", "voulons trouver",
]
_SEEK_ZH = ["期待与", "愿与", "寻求与", "想出口", "希望出口", "想卖到", "想找", "想寻找", "希望找到", "希望寻找", "希望找", "正在寻找", "在寻找", "寻找", "寻求", "想要找", "要找",
            "需要找", "需要", "想要", "想和", "希望和", "希望与", "想与", "找"]
_SEEK = re.compile(
    r"(?<![\w])(?:" + "|".join(sorted(map(re.escape, _SEEK_TERMS), key=len, reverse=True)) + r")(?![\w])"
    + "|" + "|".join(sorted(map(re.escape, _SEEK_ZH), key=len, reverse=True))
)
# Who-we-are openers; enough on their own to make the text before a seek verb the asker.
_ASKER = re.compile(
    r"(?<![\w])(?:we are|we're|i am|i'm|i run|we run|our company|my company|our firm|my firm|our factory|"
    r"we make|we produce|we manufacture|we export|we sell|as an?|somos|sou|a nossa empresa|a minha empresa|"
    r"nos somos|produzimos|fabricamos|exportamos|vendemos|represento|representamos|trabalho numa|trabalhamos|"
    r"nous sommes|notre entreprise|notre societe|je suis|nuestra empresa|soy)(?![\w])"
    r"|我们是|我是|我们公司|我司|我公司|本公司|我厂|我们厂|我方|作为|我们",
)
# Nouns that name an organisation as the subject ("Marca portuguesa de sapatilhas quer ...",
# "A Portuguese retail chain seeks ..."), where the sector is not in the taxonomy.
_ENTITY = re.compile(
    r"(?<![\w])(?:brand|chain|retailer|startup|start-up|association|producer|exporter|importer|group|\w*makers?|firm|"
    r"marca|cadeia|retalhista|associacao|produtor|exportador|importador|grupo|pme|sme)s?(?![\w])"
    r"|品牌|连锁|协会|商会|集团|初创|出口商|进口商|厂|企业|公司"
)
# Setting up production or an office abroad: an investment-promotion agency is a partner too.
_INVEST = re.compile(
    r"(?<![\w])(?:set up (?:a |an )?(?:factory|plant|production|office|subsidiary|operations)|establish (?:a )?(?:factory|plant|subsidiary)|"
    r"open a (?:factory|plant|office)|build a (?:factory|plant)|invest in|"
    r"instalar|abrir uma (?:fabrica|unidade|filial)|investir em|apoio a instalacao|implantar)(?![\w])"
    r"|设厂|建厂|投资建|落地|设立|开设工厂"
)
# "our moulds", "os nossos vinhos", "我们的软木": the sectors right after belong to the asker.
_OURS = re.compile(r"(?<![\w])(?:our|my|nossos?|nossas?|meus?|minhas?)(?![\w])|我们的|我司的|我公司的|本公司的|我们")
# "export X to", "exportar X para", "出口X到": X is what the asker makes.
_EXPORT = re.compile(
    r"(?<![\w])(?:export|exporting|exports|sell|selling|exportar|exporta|vender|escoar|distribuir)(?![\w])|出口|销往|卖到|销售"
)
_CLAUSE_END = re.compile(r"[.;!?。；！？,，]|(?<![\w])(?:to|in|into|para|em|na|no|nos|nas)(?![\w])|到|在")
_HELPED = re.compile(r"(?:帮助|帮|协助|服务|为|给|(?<![\w])(?:helping|help|helps|assist|assisting|for|ajudar|ajudam|apoiar|apoiam|para))\s*(?:os|as|a|o)?\s*$")
_WHERE_ZH = re.compile(r"(?:想|希望|要|打算)?在[^，。,；\s]{1,10}$")
# "有没有葡萄牙的软木公司？我想找他们合作", "Any cork firms? We want to meet them": the partner was
# described before the seek verb, which only points back at it.
_BACK_REF = re.compile(r"\s*(?:(?:them|eles|elas|los|las|les)(?![\w])|(?:他们|她们|它们|这些|那些|这家|那家))")
_RELATIVE = re.compile(r"(?<![\w])(?:that|who|which|que|quais)\s*$")
_SENTENCE = re.compile(r"[.;!?。；！？\n]")
# Seek words that also occur in a profile's own story ("our customers need", "想要", "找到"): in a
# long message they do not mark the sought part when a clearer one (looking for, procuramos,
# 寻找) says it elsewhere.
_WEAK_SEEK = {"need", "needs", "want", "wants", "seek", "seeks", "search", "searching", "looking", "find",
              "cooperar com", "colaborar com", "愿与", "quer", "querem", "queremos", "quero", "pretende",
              "pretendem", "procura", "需要", "想要", "找", "想和", "希望和", "希望与", "想与", "要找"}
LONG_MESSAGE = 400  # characters, a Chinese one counting two (as the encoder's cap): a pasted profile, not a question


def _width(text: str) -> int:
    return len(text) + len(_HAN_CHAR.findall(text))


_HAN_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _seek_match(folded: str) -> re.Match | None:
    """Where the sought partner is introduced. A short message: its first seek word. A long one
    (a pasted profile that ends "we are looking for ..."): the last sentence that says it with a
    clear seek phrase, wherever it is, and the first such phrase in that sentence; with none, the
    last sentence with a weak one ("our customers need ..." early on is the asker's story: a
    profile tells its story first and asks last)."""
    first = _SEEK.search(folded)
    if first is None:
        return None
    found = list(_SEEK.finditer(folded))
    marks = [m for m in found if m.group() not in _WEAK_SEEK]
    if _width(folded) < LONG_MESSAGE:
        # a short one: its first seek word, unless that is a weak one and a later sentence has a clear one
        later = [m for m in marks if _SENTENCE.search(folded, first.end(), m.start())]
        return later[0] if first.group() in _WEAK_SEEK and later else first
    marks = marks or found
    starts = [b.end() for b in _SENTENCE.finditer(folded, 0, marks[-1].start())]
    sentence = starts[-1] if starts else 0
    return next(m for m in marks if m.start() >= sentence)


@dataclass
class Side:
    """What one side of a need says: text, and the countries, places, sectors and kinds it names."""

    text: str = ""
    countries: list[str] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    sectors: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.countries or self.places or self.sectors or self.kinds)

    def country(self) -> str | None:
        """The one country this side is in, from its country or place names."""
        found = list(dict.fromkeys(self.countries + [p.country for p in self.places]))
        return found[0] if len(found) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "countries": self.countries, "places": [p.name for p in self.places],
            "sectors": self.sectors, "kinds": self.kinds,
        }


@dataclass
class Needs:
    text: str
    seeking: Side
    asker: Side = field(default_factory=Side)
    roles: list[str] = field(default_factory=list)
    complements: list[Link] = field(default_factory=list)  # asker sector -> partner sector links
    target_countries: list[str] = field(default_factory=list)
    country_implied: bool = False  # the target country is the other side of the asker's
    derived_sectors: list[str] = field(default_factory=list)  # partner sectors when none is named
    peers: list[str] = field(default_factory=list)  # the asker's trade, sought on the other side too
    partner_text: str = ""  # the words about the partner: what search embeds

    @property
    def split(self) -> bool:
        """True when the message said who is asking, apart from whom they seek."""
        return not self.asker.is_empty()

    def partner_sectors(self) -> list[str]:
        """Sectors to look in: those named for the partner, else the asker's complements."""
        return self.seeking.sectors or self.derived_sectors

    def complement_sectors(self) -> list[str]:
        own = set(self.asker.sectors)
        return list(dict.fromkeys(link.buyer if link.supplier in own else link.supplier for link in self.complements))

    def to_dict(self) -> dict[str, Any]:
        seeking = self.seeking.to_dict()
        seeking.update({"roles": self.roles, "countries": self.target_countries or seeking["countries"],
                        "country_implied": self.country_implied, "complements": self.complement_sectors(),
                        "also": self.peers})
        return {"asker": self.asker.to_dict() if self.split else None, "seeking": seeking}


def _side(text: str, taxonomy: Taxonomy, lexicon: Lexicon, places: list[Place] | None = None) -> Side:
    return Side(
        text=text.strip(),
        countries=lexicon.countries(text),
        places=places if places is not None else [p for p, _ in lexicon.find_places(text)],
        sectors=[slug for slug, _ in taxonomy.find(text)],
        kinds=lexicon.kinds(text),
    )


_ABOUT_US = re.compile(
    r"\s*(?:(?:we|our|i|my|nossa|nosso|nossas|nossos|a empresa|the company|temos|somos|exportamos|produzimos)(?![\w])"
    r"|我们|我司|本公司|公司|我厂|本厂)"
)
_SENTENCE_END = re.compile(r"[.;!?](?=\s|$)|[。；！？\n]")
# Where the asker sells, buys or ships: "exporta para França, Itália", "we import from Brazil", "出口到德国"
_FLOW = re.compile(
    r"(?<![\w])(?:export\w*|import\w*|sell|sells|selling|sold|supply|supplies|supplied|ship|ships|shipped|shipping|"
    r"customers?|clients?|markets?|exporta\w*|importa\w*|vende\w*|vendemos|fornece\w*|clientes?|mercados?)(?![\w])"
    r"|出口|进口|销往|卖到|来自|客户|市场"
)


def _home_countries(text: str, lexicon: Lexicon) -> list[str]:
    """The countries ``text`` names for the asker itself: a country named only where the asker
    exports, imports, sells or has customers ("exporta para França, Itália e Estados Unidos",
    "most from Portugal and Brazil", "产品出口德国") is a trade partner's, not the asker's own."""
    home: list[str] = []
    for code, _term, start in lexicon.country_mentions(text):
        before = fold(text[max(0, start - 60): start])
        clause = re.split(r"[.;!?。；！？\n]", before)[-1]
        if not _FLOW.search(clause) and code not in home:
            home.append(code)
    return home


def _is_asker(text: str, taxonomy: Taxonomy, lexicon: Lexicon, chain: ValueChain) -> bool:
    """Whether the words before a seek verb describe the asker: "Somos ...", "我们是...", or a noun
    phrase naming what they do ("温州的鞋厂", "A Shenzhen battery supplier"). A place alone is not
    enough: "想在葡萄牙北部找..." says where to look, not who asks."""
    folded = fold(text)
    if _ASKER.search(folded) or _ENTITY.search(folded):
        return True
    return bool(taxonomy.find(text) or lexicon.kinds(text) or chain.roles(text))


_FOR_US = re.compile(
    r"(?<![\w])(?:for|para)\s+(our|my|[ao]s?\s+(?:nossa|nosso|minha|meu)s?|nossas?|nossos?)(?![\w])"
    r"|(?<![\w])(?:for\s+(an?)|para\s+(uma?))(?![\w])"  # "para a China" is a destination, "para uma agência" a beneficiary
    r"|(?:为|给)(?:我们|我司|我方|本公司)"
)


def _beneficiary(text: str) -> tuple[str, str]:
    """("rolhas de cortiça", "para a nossa adega no Douro"): the partner part and the clause that
    says whom the partner is for. Only a clause after the partner description is cut, never the
    "for" of "looking for"."""
    folded = fold(text)
    seek = _SEEK.search(folded)
    m = _FOR_US.search(folded, seek.end() if seek else 0)
    if not m or m.start() < 3 or (seek and m.start() - seek.end() < 3):
        return text, ""
    if (m.group(2) or m.group(3)) and not default_lexicon().countries(folded[m.end():]):
        return text, ""  # "for a joint venture": about the partnership; "for a Chinese agency": about the asker
    same = len(folded) == len(text)
    head, tail = (text[: m.start()], text[m.start():]) if same else (folded[: m.start()], folded[m.start():])
    return head.strip(" ,，"), tail.strip()


def _asker_sectors_in(folded: str, taxonomy: Taxonomy) -> set[str]:
    """Sectors the text attributes to the asker: "our X", "export X (to ...)"."""
    out: set[str] = set()
    for pattern, reach in ((_OURS, 30), (_EXPORT, 40)):
        for m in pattern.finditer(folded):
            tail = folded[m.end(): m.end() + reach]
            stop = _CLAUSE_END.search(tail, 1 if pattern is _EXPORT else 0)
            span = tail[: stop.start()] if stop and pattern is _EXPORT else _SENTENCE.split(tail)[0]
            out.update(slug for slug, _ in taxonomy.find(span))
    return out


def analyse_needs(
    text: str,
    taxonomy: Taxonomy | None = None,
    lexicon: Lexicon | None = None,
    chain: ValueChain | None = None,
    extra_places: Any = None,
) -> Needs:
    """Split ``text`` into asker and sought partner. ``extra_places`` finds places the shipped
    lexicon does not know (the engine passes the region and city values of its records)."""
    taxonomy = taxonomy or default_taxonomy()
    lexicon = lexicon or default_lexicon()
    chain = chain or default_value_chain()
    folded = fold(text)
    same = len(folded) == len(text)

    def places_in(part: str) -> list[Place]:
        found = [p for p, _ in lexicon.find_places(part)]
        if extra_places is not None:
            known = {p.name for p in found}
            found += [p for p in extra_places(part) if p.name not in known]
        return found

    asker_text, seek_text = "", text
    m = _seek_match(folded)
    long_message = _width(folded) >= LONG_MESSAGE
    if m and m.start() > 0:
        before = text[: m.start()] if same else folded[: m.start()]
        # the last sentence before the seek verb says who asks ("Somos X. Procuramos Y.")
        candidate = before
        where = _WHERE_ZH.search(candidate)
        if where:  # "…想在中国找": where to look belongs to the partner
            candidate, seek_prefix = candidate[: where.start()], candidate[where.start():]
        else:
            seek_prefix = ""
        if _RELATIVE.search(fold(candidate)):  # "Portuguese firms that need moulds": one noun phrase
            candidate = ""
        back = bool(_BACK_REF.match(folded[m.end():]))
        if back:
            candidate = ""
        if candidate.rstrip().endswith((":", "：")) and not _ASKER.search(fold(candidate)):
            candidate = ""  # "Confeção de vestuário em Guangdong: procuramos fábricas": a heading, not the asker
        mark = max(candidate.rfind("?"), candidate.rfind("？")) + 1
        question, subject = candidate[:mark], candidate[mark:]
        if mark and not long_message and len(subject.split()) <= 2 and not _ASKER.search(fold(question)):
            # "alguém conhece fábrica de perucas na China? quero revender aqui no Brasil": a question
            # asks for the partner, it does not say who asks; what follows (with its subject, "we
            # want ...") is the asker's own plan
            asker_text = subject + (text[m.start():] if same else folded[m.start():])
            seek_text, candidate = question, ""
        if candidate and _is_asker(candidate, taxonomy, lexicon, chain):
            asker_text = candidate
            seek_text = seek_prefix + (text[m.end():] if same else folded[m.end():])
        elif long_message and not back:  # a long text before the seek phrase is context, never the partner sought
            seek_text = seek_prefix + (text[m.end():] if same else folded[m.end():])
    elif not m:
        a = _ASKER.match(folded.strip())
        if a:  # "Somos produtores de cortiça, queremos exportar para a China": asker up to the first clause
            cut = re.search(r"[,，;；.。]", folded)
            if cut:
                asker_text, seek_text = text[: cut.start()], text[cut.end():]

    if m and seek_text:
        # a profile that goes on after its seek sentence about itself ("Our products are sold in ...",
        # "公司拥有..."): the rest is the asker's story, not the partner's
        end = _SENTENCE_END.search(seek_text)
        rest = seek_text[end.end():] if end else ""
        if rest.strip() and _ABOUT_US.match(fold(rest)):
            asker_text = f"{asker_text} {rest}".strip()
            seek_text = seek_text[: end.end()]
    # "para a nossa adega no Douro", "for a Chinese travel agency": a clause about the asker
    cut, beneficiary = _beneficiary(seek_text)
    if beneficiary:
        asker_text = f"{asker_text} {beneficiary}".strip()
    seeking = _side(cut, taxonomy, lexicon, places_in(cut))
    asker = _side(asker_text, taxonomy, lexicon, places_in(asker_text)) if asker_text else Side()
    if asker.countries:
        asker.countries = _home_countries(asker_text, lexicon)
    ours = _asker_sectors_in(fold(cut), taxonomy)
    if ours:  # "export our moulds": moulds is the asker's, not the partner's
        asker.sectors = list(dict.fromkeys(asker.sectors + [s for s in seeking.sectors if s in ours]))
        seeking.sectors = [s for s in seeking.sectors if s not in ours]
        if not asker.text:
            asker.text = cut
    seek_text = cut
    partner_text = cut
    roles = chain.roles(seek_text)
    exporting = bool(m and asker_text and _EXPORT.search(folded[m.start():m.end()]))
    if exporting and "customer" not in roles and "distributor" not in roles:
        roles.append("customer")
    if ours and _EXPORT.search(fold(seek_text)) and "customer" not in roles and "distributor" not in roles:
        roles.append("customer")

    if len(seeking.countries) > 1:
        # "葡萄牙有帮助中国企业去投资的机构吗", "agencies helping Chinese firms invest": the helped side is the asker's
        helped = {code for code, term, start in lexicon.country_mentions(seek_text) if _HELPED.search(fold(seek_text)[max(0, start - 8):start])}
        if helped and helped != set(seeking.countries):
            seeking.countries = [c for c in seeking.countries if c not in helped]
            asker.countries = list(dict.fromkeys(asker.countries + sorted(helped)))
    target = [c for c in seeking.countries]
    implied = False
    if not target:
        target = list(dict.fromkeys(p.country for p in seeking.places))
    if not target:
        home = asker.country()
        if home in ALLIANCE:
            target, implied = [c for c in ALLIANCE if c != home], True

    complements = _complements(asker.sectors, seeking.sectors, roles, chain)
    needs = Needs(text, seeking, asker, roles, complements, target, implied)
    needs.partner_text = partner_text
    if asker.sectors and target and not set(roles) & {"customer", "supplier"}:
        # peers: the asker's own trade on the side asked for (the floor keeps the asker's side out)
        needs.peers = [s for s in asker.sectors if s not in seeking.sectors]
    if _INVEST.search(folded) or "investor" in roles or "investor" in chain.roles(asker_text):
        needs.peers = list(dict.fromkeys(needs.peers + ["investment-promotion"]))
    if not seeking.sectors and asker.sectors:
        # partners in the asker's own sector too, unless they buy from or sell to it only
        own = [] if set(roles) & {"customer", "supplier"} else asker.sectors
        needs.derived_sectors = list(dict.fromkeys(own + needs.complement_sectors()))
    return needs


def _complements(own: list[str], sought: list[str], roles: list[str], chain: ValueChain) -> list[Link]:
    """Value-chain links from the asker's sectors: to the sectors named for the partner when there
    are any (they explain the match), else to the buyers and/or suppliers the roles point at."""
    links: list[Link] = []
    for sector in own:
        if sought:
            links += [link for s in sought if s != sector and (link := chain.link(sector, s)) is not None]
            continue
        sells = bool({"customer", "distributor"} & set(roles))
        buys = bool({"supplier", "manufacturer"} & set(roles))
        if sells or not buys:
            links += chain.buyers_of(sector)
        if buys or not sells:
            links += chain.suppliers_of(sector)
    seen: set[tuple[str, str]] = set()
    out = []
    for link in links:
        if (link.supplier, link.buyer) not in seen:
            seen.add((link.supplier, link.buyer))
            out.append(link)
    return out
