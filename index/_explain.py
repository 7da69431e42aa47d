"""Explain: what a shown hit needs beyond its score: its record, and the query words it holds.

Only the hits on the page (and the nearest, when nothing matched) are explained: reading a
record and matching its terms costs more than ranking it.
"""

from __future__ import annotations

from typing import Mapping

from corpus import Organisation

from ._candidates import Hit
from ._keywords import KeywordIndex
from ._query import QueryAnalysis


def explain(hits: list[Hit], records: Mapping[str, Organisation], bm25: KeywordIndex | None,
            a: QueryAnalysis, terms: bool = True) -> list[Hit]:
    """``hits`` with their records read and (``terms``) the query's keywords each one holds."""
    for hit in hits:
        hit.record = records[hit.record.id]
        if terms and bm25 is not None and hit.row >= 0:
            hit.terms = bm25.matched(a.tokens, hit.row)
    return hits
