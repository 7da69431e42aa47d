"""Fuse: one score per candidate from its dense and keyword scores and what it shares with the query.

A fusion is named and swappable (``SearchConfig.fusion``, one of ``FUSIONS``): each turns the
retrieved ``Candidates`` into ``Hit``s, best first, and records on each hit the sectors,
complements and boosts that applied (the judgement and the reasons read them).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

from ._candidates import Candidates, Hit, Shown
from ._query import QueryAnalysis
from ._records import RecordColumns, value_key


class FusionConfig(Protocol):
    w_dense: float
    w_bm25: float
    w_use: float
    boost_sector: float
    boost_country: float
    boost_kind: float
    boost_place: float
    boost_complement: float


def query_sectors(a: QueryAnalysis) -> tuple[list[str], list[str]]:
    """(sectors sought, sectors that complement the asker's and are not sought)."""
    sought = a.sector_slugs
    return sought, [s for s in a.complements if s not in set(sought)]


def weighted_sum(cands: Candidates, a: QueryAnalysis, cols: RecordColumns, cfg: FusionConfig, mode: str) -> list[Hit]:
    """w_dense · dense + w_bm25 · keyword + w_use · the second signal (index/_second.py) + small boosts for a sought sector (or a complement),
    the one country asked for, the kind and the place asked for. The default fusion."""
    rows = cands.rows
    wanted_country = a.countries[0] if len(a.countries) == 1 else None
    place_names = {value_key(p.name) for p in a.places}
    q_slugs, q_complements = query_sectors(a)
    q_sectors = set(q_slugs)
    wanted = q_slugs + q_complements
    cand = np.asarray(rows, np.int64)  # what the loop reads of each candidate, gathered at once
    countries, kinds = cols.column("country", cand), cols.column("kind", cand)
    regions, cities = cols.column("region", cand, keys=True), cols.column("city", cand, keys=True)
    tagged_holds = cols.holding(cand, wanted, "tagged")  # boosts and reasons go by the record's own tags
    about_holds = cols.holding(cand, wanted, "about")  # its tags are among these
    hits: list[Hit] = []
    dense_of = cands.dense
    keywords = np.asarray(cands.keyword)[cand].tolist()  # the same floats float(keyword[row]) read, at once
    ids = cols.ids
    n_slugs = len(q_slugs)
    hybrid = mode not in ("bm25", "dense")
    use_of = cands.use
    w_dense, w_bm25, w_use = cfg.w_dense, cfg.w_bm25, cfg.w_use
    for i, row in enumerate(rows):
        country, kind = countries[i], kinds[i]
        d, kw, u = dense_of.get(row, 0.0), keywords[i], use_of.get(row, 0.0)
        held = tagged_holds[i]
        sectors = [s for s, h in zip(q_slugs, held) if h] if n_slugs else []
        complements = [s for s, h in zip(q_complements, held[n_slugs:]) if h] if q_complements else []
        on_topic = True in about_holds[i]
        signals = []
        if hybrid:
            score = w_dense * d + w_bm25 * kw + w_use * u
            if sectors:
                score += cfg.boost_sector * len(sectors) / len(q_sectors)
            elif complements:
                score += cfg.boost_complement
            if wanted_country and country == wanted_country:
                score += cfg.boost_country
                signals.append("country")
            if kind in a.kinds:
                score += cfg.boost_kind
                signals.append("kind")
            if place_names and ({regions[i], cities[i]} & place_names):
                score += cfg.boost_place
                signals.append("place")
        else:
            score = kw if mode == "bm25" else d
        shown = Shown(ids[row], country)  # the record itself is read only if it is shown
        hits.append(Hit(shown, float(score), float(d), kw, sectors, [], signals, complements, on_topic, row,  # type: ignore[arg-type]
                        use=float(u)))
    hits.sort(key=lambda hit: (-hit.score, hit.record.id))
    return hits


Fusion = Callable[[Candidates, QueryAnalysis, RecordColumns, Any, str], list[Hit]]
FUSIONS: dict[str, Fusion] = {"weighted": weighted_sum}


def fusion(name: str) -> Fusion:
    try:
        return FUSIONS[name]
    except KeyError:
        raise ValueError(f"unknown fusion '{name}': choose from {', '.join(FUSIONS)}") from None
