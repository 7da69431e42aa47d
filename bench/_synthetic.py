"""Plausible *fictional* organisations for the scale benchmark, and vectors composed for them.

``SyntheticCorpus(seed)`` makes organisation ``i`` from ``seed`` and ``i`` alone, so a 2,000-record
corpus is the start of the 100,000-record one. Every record is a company, cluster or institution in
Portugal or China, placed in a region (and a city, where the lexicon knows some) of
``corpus/data/lexicon.json``, with sectors of the taxonomy and a description in pt, zh and en
composed from per-sector phrases: the taxonomy's labels and synonyms (what it makes) and the value
chain's links (what it supplies to whom, what it seeks). Names say "Fictícia" / "Fictional" / "虚构"
and carry a number, ids start with ``syn-``; there are no websites, sources, people or contacts.
Regions follow a Zipf law within each country, so some region holds about 1% of the records
(``region_counts`` finds it) for a filter of that selectivity.

Embedding 300,000 passages with the bundled model takes about a day on two cores. ``ComposedEncoder``
encodes each distinct fragment (a sentence frame, a product phrase, a sector label, a place) once
with the real model and makes each passage's vector the normalised, token-weighted sum of its
fragments' vectors, plus small deterministic noise so that records built from the same fragments
differ. It carries the real model's ``model_id`` and ``dim`` and encodes queries with the real
model, so ``cpc serve`` with that model loads the index and answers queries as usual.

How close a proxy it is (36 passages of 12 records, then 40 English ones, bundled model): cosine to
the real passage vector 0.88-0.90 on average; the top 5 of a query agree at 0.56 (noise 0.08) to
0.59 (no noise). Raw composed vectors are more alike than real ones (mean pairwise cosine 0.99 vs
0.86: shared frames and places dominate a sum), but the search runs on calibrated vectors (each
language's mean removed), where their spread matches the model's at noise 0.08 (pairwise cosine
std 0.111 vs 0.113); that is the default.

Every passage a build encodes goes through it, not only the language versions: the per-record
sector passage (index/_sectors.py ``sector_passage``: "name / 名称 / name. kind / 企业. places.
sector labels.") is cut the same way, each " / "-separated name resolved to its registered
fragments, so it costs no model call per record; the sector descriptions the sector mapper
encodes as passages are cut at their semicolons. Texts encoded as queries during a build (sector
labels, the calibration queries) go to the real model once per distinct text. It wraps any
encoder with ``encode(texts, kind)``, ``model_id`` and ``dim`` (a second encoder of the build is
wrapped by a ``ComposedEncoder`` of its own), and it refuses to go on when the distinct fragments
grow past ``max_fragments``: a new passage whose fragments are unique to each record would
otherwise send every record to the real model (~40 passages/s) and the build would not finish.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from corpus import Organisation, default_lexicon, default_taxonomy, default_value_chain
from index import estimate_tokens

LANGS = ("pt", "zh", "en")
KIND_WEIGHTS = (("company", 0.8), ("institution", 0.12), ("cluster", 0.08))
MARKER = {"pt": "Fictícia", "zh": "虚构", "en": "Fictional"}
LEGAL = {  # by kind: what the name ends with
    "company": {"pt": "Lda", "zh": "有限公司", "en": "Ltd"},
    "cluster": {"pt": "Cluster", "zh": "产业集群", "en": "Cluster"},
    "institution": {"pt": "Instituto", "zh": "研究院", "en": "Institute"},
}
# Invented syllables (Latin and a Chinese rendering of each) for name stems: "Zavel", "扎维".
SYLLABLES = (("za", "扎"), ("vel", "维"), ("mor", "莫"), ("tin", "廷"), ("dra", "德"), ("lo", "洛"), ("rix", "瑞"),
             ("bel", "贝"), ("nor", "诺"), ("qua", "夸"), ("tav", "塔"), ("sen", "森"), ("ul", "乌"), ("ka", "卡"))
IN_COUNTRY = {"PT": {"pt": "em Portugal", "zh": "葡萄牙", "en": "in Portugal"},
              "CN": {"pt": "na China", "zh": "中国", "en": "in China"}}
BANDS = ("10 a 49", "50 a 249", "250 a 999", "1000")  # employees; rendered per language below
CERTS = ("ISO 9001", "ISO 14001", "IATF 16949", "ISO 13485", "ISO 45001")

# Sentence frames per language; {a}, {b} are the slots. Each sentence is registered with its
# fragments (the frame without its slots, then each slot) for ComposedEncoder.
ACTIVITY = {
    "company": {
        "pt": ("Fabricamos {a} e {b}.", "Empresa especializada em {a} e {b}.", "Produzimos {a} para clientes de {b}."),
        "zh": ("我们生产{a}和{b}。", "专业从事{a}和{b}的企业。", "为{b}客户生产{a}。"),
        "en": ("We make {a} and {b}.", "A company specialised in {a} and {b}.", "We produce {a} for customers in {b}."),
    },
    "cluster": {
        "pt": ("Cluster que reúne empresas de {a} e {b}.", "Associação empresarial de {a}, com associados em {b}."),
        "zh": ("汇聚{a}和{b}企业的产业集群。", "{a}行业协会，会员涵盖{b}。"),
        "en": ("A cluster bringing together firms in {a} and {b}.", "A business association for {a}, with members in {b}."),
    },
    "institution": {
        "pt": ("Centro de investigação e ensaios em {a} e {b}.", "Instituto tecnológico que apoia a indústria de {a} em {b}."),
        "zh": ("从事{a}和{b}研究与检测的机构。", "服务{a}产业的技术研究院，专长于{b}。"),
        "en": ("A research and testing centre for {a} and {b}.", "A technology institute supporting the {a} industry in {b}."),
    },
}
OFFER = {"pt": ("Fornecemos {a} ao setor de {b}.", "Oferecemos {a} a empresas de {b}."),
         "zh": ("为{b}行业提供{a}。", "向{b}企业供应{a}。"),
         "en": ("We supply {a} to the {b} sector.", "We offer {a} to {b} companies."),}
SEEK = {"pt": ("Procuramos {a} {b}.", "Queremos encontrar {a} {b}."),
        "zh": ("寻找{b}的{a}。", "希望结识{b}的{a}。"),
        "en": ("We are looking for {a} {b}.", "We want to meet {a} {b}."),}
SIZE = {"pt": "Conta com {a} trabalhadores e certificação {b}.", "zh": "拥有{a}名员工，通过{b}认证。",
        "en": "It employs {a} people and holds {b} certification."}
PLACE = {"pt": "Sediada em {a}, {b}.", "zh": "总部位于{b}{a}。", "en": "Based in {a}, {b}."}
QUERY = {"pt": ("fornecedores de {a} {b}", "procuramos parceiros de {a} {b}", "{a}"),
         "zh": ("寻找{b}的{a}供应商", "{b}{a}合作伙伴", "{a}"),
         "en": ("{a} suppliers {b}", "partners for {a} {b}", "{a}"),}
BAND_TEXT = {"pt": {"1000": "mais de 1000"}, "zh": {"10 a 49": "10至49", "50 a 249": "50至249", "250 a 999": "250至999",
             "1000": "1000多"}, "en": {"10 a 49": "10 to 49", "50 a 249": "50 to 249", "250 a 999": "250 to 999",
                                       "1000": "over 1000"}}
_DIGITS = re.compile(r"\d+")
_SENTENCE_END = re.compile(r"(?<=[.。!?！？;；])\s*")
_CLAUSE = re.compile(r"[,，、()（）:：;；]+")
_ALTERNATIVES = re.compile(r"\s+/\s+")  # a sector passage's "name / 名称 / name", "empresa / 企业 / company"
_ENDS = ".。!?！？;； "


def fragment_key(sentence: str) -> str:
    """How a sentence is looked up among the registered ones: numbers (a name's) do not count."""
    return _DIGITS.sub("#", sentence.strip().rstrip(_ENDS).strip())


def sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s and s.strip(_ENDS)]


@dataclass(frozen=True)
class Product:
    """One thing a sector makes or supplies, in pt, zh and en."""

    texts: dict[str, str]


class SyntheticCorpus:
    """Deterministic fictional organisations; remembers each sentence's fragments (``fragments``)."""

    def __init__(self, seed: int = 14):
        self.seed = seed
        self.lexicon, self.taxonomy, self.chain = default_lexicon(), default_taxonomy(), default_value_chain()
        self.sectors = sorted(self.taxonomy.sectors)
        self.fragments: dict[str, tuple[str, ...]] = {}
        raw = json.loads((Path(self.lexicon_path())).read_text(encoding="utf-8"))
        cities: dict[str, list[dict]] = {}
        for c in raw["cities"]:
            cities.setdefault(c["region"], []).append(c)
        self.cities = cities
        self.regions: dict[str, list[dict]] = {}  # country -> regions, most cities first (the Zipf order)
        for order, r in enumerate(raw["regions"]):
            self.regions.setdefault(r["country"], []).append({**r, "order": order})
        for country, items in self.regions.items():
            items.sort(key=lambda r: (-len(cities.get(r["name"], [])), r["order"]))
        self.region_weights = {c: [1.0 / (rank + 1) for rank in range(len(rs))] for c, rs in self.regions.items()}
        self.products = {slug: self._products(slug) for slug in self.sectors}

    @staticmethod
    def lexicon_path() -> Path:
        from corpus import DATA_DIR

        return DATA_DIR / "lexicon.json"

    def _products(self, slug: str) -> list[Product]:
        """The sector's label, what it supplies along the value chain, and a few synonyms."""
        sector = self.taxonomy.sectors[slug]
        out = [Product({lang: sector.label(lang) for lang in LANGS})]
        out += [Product({lang: link.label(lang) for lang in LANGS}) for link in self.chain.buyers_of(slug)[:3]]
        for j in range(1, 3):
            texts = {}
            for lang in LANGS:
                words = [w for w in sector.synonyms.get(lang, ()) if not w.isascii() or len(w) > 3]
                texts[lang] = words[j % len(words)] if words else sector.label(lang)
            out.append(Product(texts))
        return out

    # -- records ------------------------------------------------------------------------
    def _sentence(self, frame: str, a: str, b: str) -> str:
        text = frame.format(a=a, b=b)
        key = fragment_key(text)
        if key not in self.fragments:
            bare = re.sub(r"\s+([.,。，])", r"\1", re.sub(r"\s+", " ", frame.replace("{a}", "").replace("{b}", ""))).strip()
            self.fragments[key] = tuple(f for f in (bare, a, b) if f.strip(_ENDS))
        return text

    def _name(self, lang: str, syllables: list[str], slug: str, kind: str, number: int) -> str:
        """"Fictícia Zavel Moldes 000421 Lda": its fragments are the marker, each invented syllable,
        the sector and the legal form (the number counts for nothing)."""
        label, legal, stem = self.taxonomy.label(slug, lang), LEGAL[kind][lang], "".join(syllables)
        if lang == "zh":
            name = f"{MARKER[lang]}{stem}{label}{number:06d}{legal}"
        else:
            name = f"{MARKER[lang]} {stem.capitalize()} {label} {number:06d} {legal}"
        self.fragments.setdefault(fragment_key(name), (MARKER[lang], *syllables, label, legal))
        return name

    def organisation(self, i: int) -> Organisation:
        rng = random.Random(f"{self.seed}-{i}")
        country = "PT" if rng.random() < 0.5 else "CN"
        kind = rng.choices([k for k, _ in KIND_WEIGHTS], [w for _, w in KIND_WEIGHTS])[0]
        region = rng.choices(self.regions[country], self.region_weights[country])[0]
        city = rng.choice(self.cities[region["name"]]) if self.cities.get(region["name"]) else None
        primary = rng.choice(self.sectors)
        linked = [link.buyer for link in self.chain.buyers_of(primary)] + [link.supplier for link in self.chain.suppliers_of(primary)]
        sectors = [primary]
        if linked and rng.random() < 0.6:
            sectors.append(rng.choice(linked))
        elif rng.random() < 0.3:
            sectors.append(rng.choice(self.sectors))
        sectors = list(dict.fromkeys(sectors))
        lang = ("pt" if country == "PT" else "zh") if rng.random() < 0.88 else "en"
        syllables = [rng.choice(SYLLABLES) for _ in range(2)]
        latin, han = [s[0] for s in syllables], [s[1] for s in syllables]
        products = self.products[primary]
        a, b = rng.sample(range(len(products)), 2)
        activity = rng.randrange(len(ACTIVITY[kind]["pt"]))
        buyers = self.chain.buyers_of(primary)
        offer_link = rng.choice(buyers) if buyers else None
        offer_frame = rng.randrange(2)
        role = rng.choice(sorted(self.chain.role_labels))
        seek_frame = rng.randrange(2)
        other = "CN" if country == "PT" else "PT"
        band, cert = rng.choice(BANDS), rng.choice(CERTS)
        texts: dict[str, dict[str, str]] = {}
        for lg in LANGS:
            second = products[b].texts[lg] if activity != 2 else self.taxonomy.label(sectors[-1], lg)
            parts = [self._sentence(ACTIVITY[kind][lg][activity], products[a].texts[lg], second)]
            if offer_link is not None:
                offer = self._sentence(OFFER[lg][offer_frame], offer_link.label(lg), self.taxonomy.label(offer_link.buyer, lg))
            else:
                offer = self._sentence(OFFER[lg][offer_frame], products[b].texts[lg], self.taxonomy.label(primary, lg))
            seek = self._sentence(SEEK[lg][seek_frame], self.chain.role_label(role, lg), IN_COUNTRY[other][lg])
            parts.append(self._sentence(SIZE[lg], BAND_TEXT.get(lg, {}).get(band, band), cert))
            where = self.place_label(city, lg) if city else self.place_label(region, lg)
            parts.append(self._sentence(PLACE[lg], where, self.lexicon.country_label(country, lg)))
            if lg != lang:  # a translation carries all of it; the original has offers and seeks apart
                parts += [offer, seek]
            texts[lg] = {"name": self._name(lg, han if lg == "zh" else latin, primary, kind, i), "description": " ".join(parts),
                         "offer": offer, "seek": seek}
        data = {
            "id": f"syn-{i:06d}-{''.join(latin)}",
            "kind": kind,
            "name": texts[lang]["name"],
            "country": country,
            "region": region["name"],
            "city": city["name"] if city else None,
            "sectors": sectors,
            "lang": lang,
            "description": texts[lang]["description"],
            "offers": texts[lang]["offer"],
            "seeks": texts[lang]["seek"],
            "i18n": {lg: {"name": t["name"], "description": t["description"]} for lg, t in texts.items() if lg != lang},
            "updated": "2026-01-01",
        }
        return Organisation.model_validate(data)  # the real schema: a generator bug fails here

    @staticmethod
    def place_label(place: dict, lang: str) -> str:
        return place.get("labels", {}).get(lang) or place["name"]

    def organisations(self, n: int, start: int = 0) -> Iterator[Organisation]:
        for i in range(start, start + n):
            yield self.organisation(i)

    def write_jsonl(self, path: Path, n: int, start: int = 0, progress=None) -> int:
        """Write ``n`` records as JSON lines (temp file, then rename), telling ``progress`` each one;
        the count written."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for rec in self.organisations(n, start):
                fh.write(rec.model_dump_json(exclude_none=True) + "\n")
                if progress:
                    progress(rec)
        tmp.replace(path)
        return n

    # -- queries ------------------------------------------------------------------------
    def queries(self, n: int, seed: int | None = None) -> list[tuple[str, str]]:
        """``n`` (lang, text) partner queries, pt, zh and en in turn: a product or sector, often a country."""
        rng = random.Random(f"queries-{self.seed if seed is None else seed}")
        out = []
        for j in range(n):
            lang = LANGS[j % 3]
            product = rng.choice(self.products[rng.choice(self.sectors)]).texts[lang]
            frame = rng.choice(QUERY[lang])
            out.append((lang, frame.format(a=product, b=IN_COUNTRY[rng.choice(("PT", "CN"))][lang]).strip()))
        return out


def region_counts(records: Sequence[Organisation] | Iterator[Organisation]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec.region or ""] = counts.get(rec.region or "", 0) + 1
    return counts


def region_near(counts: dict[str, int], share: float = 0.01) -> tuple[str, int]:
    """The region whose share of the records is closest to ``share``, and its count."""
    total = sum(counts.values())
    region = min((r for r in counts if r), key=lambda r: (abs(counts[r] - share * total), r))
    return region, counts[region]


class FragmentBudgetExceeded(RuntimeError):
    """The build asked for more distinct fragments than ``max_fragments``: some passage is not
    composed from shared fragments (its text is named in the message)."""


class ComposedEncoder:
    """Passages composed from their fragments' real vectors; queries encoded by the real model.

    A passage is cut into sentences; a sentence the corpus registered is its fragments, any other
    (the engine's own "name. kind (city, region, country). sectors." head, the sector passage) is
    cut at commas, brackets and " / " into clauses, and a clause the corpus registered (a name) is
    its fragments. Each distinct fragment is encoded once by ``real``, each distinct query text too."""

    def __init__(self, real, corpus: SyntheticCorpus, noise: float = 0.08, batch: int = 64,
                 max_fragments: int = 20_000):
        self.real = real
        self.model_id, self.dim = real.model_id, real.dim
        self.corpus = corpus
        self.noise = noise
        self.batch = batch
        self.max_fragments = max_fragments
        self.vectors: dict[str, np.ndarray] = {}  # fragment -> its real vector times its token count
        self.query_vectors: dict[str, np.ndarray] = {}  # a query text of the build -> its real vector
        self.passages = 0
        self.unregistered = 0  # sentences split into clauses (not from the generator)
        self.queries_encoded = 0  # distinct query texts sent to the real model

    @property
    def executor(self):
        return getattr(self.real, "executor", None)

    def __getattr__(self, name: str):
        """Anything else the build asks of an encoder is the real one's (not its fast build path:
        that is chosen by the encoder's class, which this is not)."""
        if name.startswith("_") or name == "real":
            raise AttributeError(name)
        return getattr(self.real, name)

    def _clauses(self, sentence: str) -> list[str]:
        out: list[str] = []
        for clause in _CLAUSE.split(sentence):
            for piece in _ALTERNATIVES.split(clause):
                piece = piece.strip(_ENDS)
                if piece:
                    out += self.corpus.fragments.get(fragment_key(piece)) or [piece]
        return out

    def _fragments(self, text: str) -> list[str]:
        out: list[str] = []
        for sentence in sentences(text):
            known = self.corpus.fragments.get(fragment_key(sentence))
            if known is not None:
                out += known
            else:
                self.unregistered += 1
                out += self._clauses(sentence)
        return out or [text]

    def _encode_missing(self, fragments: list[str], texts: Sequence[str]) -> None:
        missing = list(dict.fromkeys(f for f in fragments if f not in self.vectors))
        if len(self.vectors) + len(missing) > self.max_fragments:
            raise FragmentBudgetExceeded(
                f"{len(self.vectors) + len(missing)} distinct fragments (max {self.max_fragments}): a passage is not"
                f" composed from shared fragments, e.g. {missing[-1]!r} of {texts[-1][:200]!r}; register its"
                " sentences in bench/_synthetic.py or cut it in ComposedEncoder._clauses")
        for start in range(0, len(missing), self.batch):
            chunk = missing[start:start + self.batch]
            for f, v in zip(chunk, self.real.encode(chunk, "passage")):
                self.vectors[f] = estimate_tokens(f) * np.asarray(v, np.float32)  # weighted by its tokens

    def _queries(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.query_vectors))
        for start in range(0, len(missing), self.batch):
            chunk = missing[start:start + self.batch]
            for t, v in zip(chunk, self.real.encode(chunk, "query")):
                self.query_vectors[t] = np.asarray(v, np.float32)
        self.queries_encoded += len(missing)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self.query_vectors[t] for t in texts])

    def encode(self, texts: Sequence[str], kind: str) -> np.ndarray:
        texts = list(texts)
        if kind == "query":
            return self._queries(texts)
        parts = [self._fragments(t) for t in texts]
        self._encode_missing([f for p in parts for f in p], texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, (text, frags) in enumerate(zip(texts, parts)):
            v = np.sum([self.vectors[f] for f in frags], axis=0)
            v = v / max(float(np.linalg.norm(v)), 1e-12)
            rng = np.random.default_rng(zlib.crc32(text.encode("utf-8")))
            v = v + rng.standard_normal(self.dim).astype(np.float32) * (self.noise / np.sqrt(self.dim))
            out[row] = v / max(float(np.linalg.norm(v)), 1e-12)
        self.passages += len(texts)
        return out
