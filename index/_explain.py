"""Explain: what a shown hit needs beyond its score: its record, the query words it holds, and
the complements that hold.

Only the hits on the page (and the nearest, when nothing matched) are explained: reading a
record and matching its terms costs more than ranking it.

A complement is a value-chain link from the asker's sector to one of the record's ("we make
wine" → retail). It is kept as a reason only when what flows along the link fits the record as
well: its main sector is the link's other end (a winery for cork stoppers), or its own texts name
what flows or the asker's trade (a shop that sells wine). A textile city tagged "retail" does not
buy wine: "complements your wine: wine" would be nonsense, so that complement is dropped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

from corpus import Link, Organisation, TermMatcher, default_taxonomy, default_value_chain

from ._candidates import Hit
from ._keywords import KeywordIndex
from ._query import QueryAnalysis


def explain(hits: list[Hit], records: Mapping[str, Organisation], bm25: KeywordIndex | None,
            a: QueryAnalysis, terms: bool = True) -> list[Hit]:
    """``hits`` with their records read, (``terms``) the query's keywords each one holds, and
    only the complements that hold (``complement_holds``)."""
    own = list(a.needs.asker.sectors) if a.needs is not None else []
    for hit in hits:
        hit.record = records[hit.record.id]
        if terms and bm25 is not None and hit.row >= 0:
            hit.terms = bm25.matched(a.tokens, hit.row)
        if hit.complements:
            hit.complements = [s for s in hit.complements if complement_holds(hit.record, own, s)]
    return hits


def main_sector(rec: Organisation) -> str | None:
    """The record's first taxonomy sector: its first tag, or the first sector its labels name."""
    tax = default_taxonomy()
    for tag in rec.sectors:
        slug = tag if tag in tax else tax.link(tag) or next((s for s, _ in tax.find(tag)), None)
        if slug:
            return slug
    return None


@lru_cache(maxsize=1024)
def _flow_terms(supplier: str, buyer: str, own: str) -> TermMatcher:
    """Words for what flows along a link, in pt, zh and en, and for the asker's trade."""
    chain, tax = default_value_chain(), default_taxonomy()
    link = chain.link(supplier, buyer)
    words = list(link.what.values()) if link is not None else []
    if own in tax:
        words += tax.sectors[own].terms()
    return TermMatcher(((w, True) for w in words if w and len(w) >= 2), plurals=True)


def complement_holds(rec: Organisation, own: list[str], sector: str) -> bool:
    """Whether ``sector`` (held by ``rec``) complements one of the asker's sectors ``own`` in a way
    that fits ``rec``: its main sector is ``sector``, or its texts name what flows. A sector without
    a link (the asker's own trade, investment promotion) is not a value-chain complement: kept."""
    chain = default_value_chain()
    links: list[tuple[Link, str]] = [(link, o) for o in own if (link := chain.link(o, sector)) is not None]
    if not links:
        return True
    if main_sector(rec) == sector:
        return True
    text = " ".join(f"{n} {d}" for n, d in rec.versions().values()) + f" {rec.offers or ''}"
    return any(_flow_terms(link.supplier, link.buyer, o).find(text) for link, o in links)
