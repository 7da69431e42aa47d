"""Derived sectors: the taxonomy sectors a record is in, read from its own labels and texts.

Records from other sources carry sector labels in their own words ("Indústria de moldes;
plásticos", "高端装备制造、新材料", an extra field ``sector_labels``); the schema keeps a label it
does not know as written, so the gates and reasons, which speak taxonomy slugs, missed them.
At build and ingest each record is mapped, with a confidence:

1. glossary: a label that is a taxonomy term (1.0) or names one inside it (0.9);
2. embeddings: a label the glossary does not resolve is compared with every sector's
   description (its labels and synonyms in pt, zh and en); the closest sector is taken when it
   is close and clearly closer than the next (confidence from the similarity);
3. the record's texts: sectors its name and description name (0.6), and when nothing above
   found a sector, the sector descriptions closest to its own passage vectors (at most 0.5).

The source labels stay on the record; derived sectors live beside it in the index generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from corpus import Organisation, Taxonomy, default_taxonomy

# Label similarity (query "label" against sector descriptions as passages): accepted from
# LABEL_MIN with a lead of LABEL_MARGIN over the next sector; confidence rises to 0.85 at LABEL_HIGH.
LABEL_MIN, LABEL_HIGH, LABEL_MARGIN = 0.80, 0.88, 0.01
TEXT_MARGIN = 0.015  # record passages against sector descriptions: sectors this close to the best
GLOSSARY_EXACT, GLOSSARY_INSIDE, NAMED_IN_TEXT, TEXT_MAX = 1.0, 0.9, 0.6, 0.5
USABLE = {"label-embedding": 0.75, "text-embedding": 0.3}  # below these, shown to staff but not used
_ITEMS = re.compile(r"[;,|/、，；·]+")  # between labels of a list
_JOINED = re.compile(r"\s+[-–—]\s+|\s+(?:e|and|&|和|及|与)\s+")  # between the conjuncts of one label
_SPLIT = re.compile(f"{_ITEMS.pattern}|{_JOINED.pattern}")
_STRIP = " .()（）"


@dataclass(frozen=True)
class Derived:
    sector: str
    confidence: float
    source: str  # "label", "label-embedding", "text", "text-embedding"

    @property
    def usable(self) -> bool:
        """Whether the gates and reasons may use it (an embedding guess only when confident)."""
        return self.confidence >= USABLE.get(self.source, 0.0)

    def to_list(self) -> list:
        return [self.sector, round(self.confidence, 3), self.source]


def source_labels(rec: Organisation, taxonomy: Taxonomy | None = None) -> list[str]:
    """The record's sector labels as its source wrote them: its tags the taxonomy does not know,
    and an extra field ``sector_labels`` (a list, or one text split on ; , 、 and the like)."""
    taxonomy = taxonomy or default_taxonomy()
    extra = (rec.model_extra or {}).get("sector_labels") or []
    if isinstance(extra, str):
        extra = [extra]
    labels = [s for s in rec.sectors if s not in taxonomy]
    labels += [x for x in extra if isinstance(x, str)]
    out: list[str] = []
    for label in labels:
        for part in [label, *_ITEMS.split(label), *_SPLIT.split(label)]:
            part = part.strip(_STRIP)
            if part and part not in out and len(part) <= 100:
                out.append(part)
    return out


def conjunct_of(labels: Sequence[str]) -> dict[str, str]:
    """Each conjunct of a label ("serviços" in "ambiente e serviços") -> that label. A conjunct is
    read alone only when the glossary finds nothing in its label: alone, a generic word of a label
    the glossary placed ("serviços", "outros", "industry") is closest to some unrelated sector by
    embeddings (Mota-Engil's "ambiente e serviços" had made it a legal-services firm)."""
    out: dict[str, str] = {}
    for label in labels:
        for item in _ITEMS.split(label):
            parts = _JOINED.split(item)
            if len(parts) > 1:
                for part in parts:
                    out.setdefault(part.strip(_STRIP), item.strip(_STRIP))
    return out


def sector_description(slug: str, taxonomy: Taxonomy) -> str:
    """What a sector is, for the encoder: its labels and synonyms in pt, zh and en."""
    sector = taxonomy.sectors[slug]
    words = [sector.labels.get(c, "") for c in ("en", "pt", "zh")]
    for code in ("en", "pt", "zh"):
        words += list(sector.synonyms.get(code, ()))[:6]
    return "; ".join(dict.fromkeys(w for w in words if w))


class SectorMapper:
    """Maps records to taxonomy sectors. ``encode(texts, kind)``: the index's encoder (None: the
    glossary and the texts only)."""

    def __init__(self, encode=None, taxonomy: Taxonomy | None = None):
        self.taxonomy = taxonomy or default_taxonomy()
        self.slugs = list(self.taxonomy.sectors)
        self._encode = encode
        self._as_passages: np.ndarray | None = None  # sector descriptions, for labels (queries)
        self._as_queries: np.ndarray | None = None  # the same, for record passages

    def _sectors(self, kind: str) -> np.ndarray:
        texts = [sector_description(s, self.taxonomy) for s in self.slugs]
        if kind == "passage":
            if self._as_passages is None:
                self._as_passages = np.asarray(self._encode(texts, "passage"), np.float32)
            return self._as_passages
        if self._as_queries is None:
            self._as_queries = np.asarray(self._encode(texts, "query"), np.float32)
        return self._as_queries

    def _glossary(self, labels: Sequence[str]) -> tuple[dict[str, Derived], list[str]]:
        """Sectors the glossary finds in the labels, and the labels it leaves unresolved."""
        tax = self.taxonomy
        found: dict[str, Derived] = {}
        unresolved: list[str] = []
        for label in labels:
            exact = tax.link(label)
            if exact:
                _keep(found, Derived(exact, GLOSSARY_EXACT, "label"))
                continue
            inside = [slug for slug, _ in tax.find(label)]
            for slug in inside:
                _keep(found, Derived(slug, GLOSSARY_INSIDE, "label"))
            if not inside:
                unresolved.append(label)
        placed = set(labels) - set(unresolved)
        whole = conjunct_of(labels)
        return found, [label for label in unresolved if whole.get(label) not in placed]

    def _by_embedding(self, found: dict[str, Derived], vectors: np.ndarray) -> None:
        """Each unresolved label's closest sector, when close and clearly closer than the next."""
        if not len(vectors):
            return
        sims = np.asarray(vectors, np.float32) @ self._sectors("passage").T
        for row in sims:
            order = np.argsort(-row)
            best, second = float(row[order[0]]), float(row[order[1]])
            if best >= LABEL_MIN and best - second >= LABEL_MARGIN:
                conf = 0.5 + 0.35 * min(1.0, (best - LABEL_MIN) / (LABEL_HIGH - LABEL_MIN))
                _keep(found, Derived(self.slugs[int(order[0])], conf, "label-embedding"))

    def map_labels(self, labels: Sequence[str]) -> dict[str, Derived]:
        """Sectors of the labels alone: glossary first, embeddings for the labels it leaves."""
        found, unresolved = self._glossary(labels)
        if unresolved and self._encode is not None:
            self._by_embedding(found, self._encode(unresolved, "query"))
        return found

    def map_records(self, records: Sequence[Organisation],
                    passages: dict[str, np.ndarray] | None = None) -> dict[str, list[Derived]]:
        """``map_record`` for many records, their unresolved labels encoded in batches."""
        glossed = [self._glossary(source_labels(rec, self.taxonomy)) for rec in records]
        pending = [label for _, unresolved in glossed for label in unresolved]
        vectors = np.zeros((0, 1), np.float32)
        if pending and self._encode is not None:
            vectors = np.vstack([np.asarray(self._encode(pending[i:i + 64], "query"), np.float32)
                                 for i in range(0, len(pending), 64)])
        out: dict[str, list[Derived]] = {}
        at = 0
        for rec, (found, unresolved) in zip(records, glossed):
            if unresolved and len(vectors) > 1:
                self._by_embedding(found, vectors[at:at + len(unresolved)])
            at += len(unresolved)
            out[rec.id] = self._finish(rec, found, (passages or {}).get(rec.id))
        return out

    def map_record(self, rec: Organisation, passages: np.ndarray | None = None) -> list[Derived]:
        """The record's derived sectors, most confident first. ``passages``: its raw passage
        vectors (one a language version), for the last resort."""
        return self._finish(rec, self.map_labels(source_labels(rec, self.taxonomy)), passages)

    def _finish(self, rec: Organisation, found: dict[str, Derived], passages: np.ndarray | None) -> list[Derived]:
        tax = self.taxonomy
        for slug in rec.sectors:
            if slug in tax:
                _keep(found, Derived(slug, GLOSSARY_EXACT, "label"))
        for name, desc in rec.versions().values():
            for slug, _ in tax.find(f"{name}. {desc} {rec.offers or ''}"):
                _keep(found, Derived(slug, NAMED_IN_TEXT, "text"))
        if not found and passages is not None and len(passages) and self._encode is not None:
            sims = (np.asarray(passages, np.float32) @ self._sectors("query").T).max(axis=0)
            best = float(sims.max())
            for i in np.flatnonzero(sims >= best - TEXT_MARGIN)[:3].tolist():
                conf = TEXT_MAX * (1.0 - (best - float(sims[i])) / TEXT_MARGIN / 2)
                _keep(found, Derived(self.slugs[i], conf, "text-embedding"))
        return sorted(found.values(), key=lambda d: (-d.confidence, d.sector))


def _keep(found: dict[str, Derived], d: Derived) -> None:
    old = found.get(d.sector)
    if old is None or d.confidence > old.confidence:
        found[d.sector] = d


KEYWORD_LANGS = ("pt", "zh", "en")  # the alliance's languages: what askers and records are written in


def sector_words(slugs: Sequence[str], taxonomy: Taxonomy | None = None, synonyms: bool = True) -> str:
    """The words of ``slugs`` in pt, zh and en (labels, and synonyms when ``synonyms``): added to a
    record's keyword text, so "hydrogen" finds a record that only says "hidrogénio" once its
    labels put it in that sector. Derived sectors bridge languages; the record's text is unchanged."""
    taxonomy = taxonomy or default_taxonomy()
    words: list[str] = []
    for slug in slugs:
        sector = taxonomy.sectors.get(slug)
        if sector is None:
            continue
        for code in KEYWORD_LANGS:
            words.append(sector.labels.get(code, ""))
            if synonyms:
                words += list(sector.synonyms.get(code, ()))
    return " ".join(dict.fromkeys(w for w in words if w))


# A record's sector passage is a vector of its own, not a language version: its id is this base +
# the record's sequence, apart from the language versions' (sequence * 16 + slot), so it takes none
# of the 16 language slots (index._retrieve reads both).
SECTOR_VID_BASE = 1 << 48


def sector_passage(rec: Organisation, slugs: Sequence[str], taxonomy: Taxonomy | None = None) -> str:
    """A second passage for the encoder: the record's names, kind and place, its source labels and
    its derived sectors' labels in pt, zh and en. The description is in one language only (the
    source's); this passage puts what the record does in all three, so a question in another
    language reaches it (it scores by its best passage). Empty when no sector was derived."""
    from corpus import default_lexicon

    taxonomy = taxonomy or default_taxonomy()
    labels = [taxonomy.sectors[s].labels.get(code, "") for code in KEYWORD_LANGS for s in slugs if s in taxonomy]
    labels = [w for w in dict.fromkeys(labels) if w]
    if not labels:
        return ""
    lex = default_lexicon()
    names = list(dict.fromkeys([rec.name, *(t.name for t in rec.i18n.values() if t.name)]))
    where: list[str] = []
    for value in (rec.city, rec.region):
        if value:
            place = lex.place(value) or next((p for p, _ in lex.find_places(value)), None)
            where += [place.label(c) for c in KEYWORD_LANGS] if place else [value]
    if rec.country:
        where += [lex.country_label(rec.country, c) for c in KEYWORD_LANGS]
    kinds = [lex.kind_label(rec.kind, c) for c in KEYWORD_LANGS] if rec.kind else []
    own = [label for label in source_labels(rec, taxonomy)]
    parts = [" / ".join(names), " / ".join(dict.fromkeys(kinds)), ", ".join(dict.fromkeys(where)),
             "; ".join(own), "; ".join(labels)]
    return ". ".join(p for p in parts if p) + "."
