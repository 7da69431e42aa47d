"""Standing queries: which of a few new records each of many kept searches would return as matches.

Alerts keep searches and ask, after every ingest, which new records each would now return as a
match. Running ``SearchEngine.search`` once per kept search spends most of its time building hit
objects one at a time; here the same stages are computed in numpy for a whole need at once, the
query vectors of all needs scored against every record in one matrix product:

- retrieve: every record the filters allow (the complete ranking, as a search whose list is long
  enough to hold every record: its dense score is its best vector's, its keyword score BM25
  divided by max(best allowed score, the hybrid floor));
- fuse: ``_fuse.weighted_sum``'s score and its sector, country, kind and place signals;
- judge: ``_judge.judge_calibrated`` without the "less close" fill (matches only): the same
  features, the fitted model applied to all rows in one go.

A record is announced when it is one of these matches. ``matches_among`` is checked against
``SearchEngine.search(..., limit=<every record>, fill=False)`` in tests/test_index_standing.py.
A configuration this does not cover (another mode of judgement or fusion) falls back to that search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._candidates import Filters
from ._judge import MIN_SHOWN, QUERY_HITS, JudgementModel, feature_rows, query_features, scale_of
from ._query import QueryAnalysis
from ._records import value_key
from ._second import encode_queries

@dataclass
class Need:
    """One kept search: what the judgement reads of its analysis (``from_analysis``; kept as JSON
    with a subscription, so an ingest does not analyse every query again), its query vector
    (calibrated as the engine's store is) and its hard filters."""

    query: str
    vector: np.ndarray
    filters: Filters
    sectors: list[str]  # sought sector slugs, as the query lists them
    complements: list[str]
    countries: list[str]
    kinds: list[str]
    places: list[str]  # folded names of the places asked for
    keywords: list[str]  # the keyword tokens searched: the text's, their synonyms', the places' labels
    split: bool = False  # the need said who asks (no other side follows)
    analysis: QueryAnalysis | None = None  # for the fallback search, when at hand
    focus: str = ""  # the text embedded (the sought partner's description); "" for a need kept before it was
    second: np.ndarray | None = None  # the second signal's query vector (index/_second.py), encoded when None

    @classmethod
    def from_analysis(cls, query: str, a: QueryAnalysis, vector: np.ndarray, filters: Filters) -> "Need":
        return cls(query, vector, filters, **cls.judged(a), analysis=a)

    @staticmethod
    def judged(a: QueryAnalysis) -> dict:
        """What the judgement reads of an analysis, JSON-able."""
        from ._retrieve import place_tokens

        return {"sectors": list(a.sector_slugs), "complements": list(a.complements), "countries": list(a.countries),
                "kinds": list(a.kinds), "places": [value_key(p.name) for p in a.places],
                "keywords": list(a.tokens) + list(a.expansion) + place_tokens(a), "split": bool(a.needs.split),
                "focus": a.focus}


class _Rows:
    """What the judgement reads of every row of one generation, gathered once per call."""

    def __init__(self, engine) -> None:
        cols = engine._columns
        self.n = len(cols)
        self.cols = cols
        codes = cols.codes
        self.country = np.asarray(codes["country"])
        self.country_table = cols.tables["country"]
        self.kind = np.asarray(codes["kind"])
        self.kind_table = cols.tables["kind"]
        self.region = np.asarray(codes["region"])
        self.city = np.asarray(codes["city"])
        n_sectors = len(cols.tables["sector"])
        self.sector_code = cols._sector_code

        def incidence(name: str) -> np.ndarray:
            indptr, values = cols.lists[name]
            indptr, values = np.asarray(indptr), np.asarray(values)
            out = np.zeros((self.n, max(n_sectors, 1)), bool)
            owner = np.repeat(np.arange(self.n), np.diff(indptr))
            ok = values >= 0
            out[owner[ok], values[ok]] = True
            return out

        tags, about = incidence("tags"), incidence("about")
        self.about = about
        self.tagged = np.where(np.asarray(cols.taxonomy_tagged, bool)[:, None], tags, about)
        # every vector of every row, rows in order: a row's dense score is its best vector's
        store = engine.cal if engine.config.calibrate else engine.raw
        ptr = np.asarray(engine._vid_ptr, np.int64)
        flat = np.asarray(engine._vid_flat, np.int64)
        self.vectors = np.asarray(store.fetch(flat.tolist()), np.float32) if len(flat) else np.zeros((0, 1), np.float32)
        has = np.diff(ptr) > 0
        self.has_vector = has
        self.starts = ptr[:-1][has]

    def dense(self, queries: np.ndarray) -> np.ndarray:
        """needs x rows: each row's best vector's similarity (-inf for a row without vectors)."""
        out = np.full((len(queries), self.n), -np.inf, np.float32)
        if len(self.vectors) and len(queries):
            sims = queries @ self.vectors.T
            out[:, self.has_vector] = np.maximum.reduceat(sims, self.starts, axis=1)
        return out

    def second(self, engine, needs: Sequence["Need"]) -> np.ndarray | None:
        """needs x rows: each row's second-signal score (index/_second.py), None when it is off; the
        needs' second vectors encoded here, in one call, when they were not kept."""
        held = engine._second
        if engine.second is None or held is None or len(held) != self.n:
            return None
        todo = [n for n in needs if n.second is None]
        if todo:
            texts = [n.focus or (n.analysis.focus if n.analysis else n.query) for n in todo]
            for n, v in zip(todo, encode_queries(engine.second, texts, engine.config.encode_chars_max)):
                n.second = v
        return held.all_rows_many(np.stack([n.second for n in needs]))

    def codes_of(self, slugs: Sequence[str]) -> list[int]:
        return [c for c in (self.sector_code.get(s) for s in slugs) if c is not None]


def supported(engine) -> bool:
    """Whether ``matches_among`` computes this engine's judgement (else: one search per need)."""
    cfg = engine.config
    return (cfg.judgement == "calibrated" and cfg.model is not None and cfg.fusion == "weighted"
            and engine._columns is not None)


def matches_among(engine, needs: Sequence[Need], rows: Sequence[int], batch: int = 256) -> list[list[int]]:
    """For each need, the rows among ``rows`` its search returns as matches (hybrid mode, the
    calibrated judgement, no fill), each list in the order the search ranks them."""
    rows = np.asarray(sorted(set(int(r) for r in rows)), np.int64)
    if not len(needs) or not len(rows):
        return [[] for _ in needs]
    if not supported(engine):
        return [_by_search(engine, need, rows) for need in needs]
    data = _Rows(engine)
    masks: dict[str, np.ndarray | None] = {}
    out: list[list[int]] = []
    for lo in range(0, len(needs), batch):
        chunk = needs[lo: lo + batch]
        dense = data.dense(np.stack([np.asarray(n.vector, np.float32) for n in chunk]))
        second = data.second(engine, chunk)
        for i, (need, d) in enumerate(zip(chunk, dense)):
            key = repr(need.filters)
            if key not in masks:
                masks[key] = engine.allowed_mask(need.filters)
            out.append(_judge_one(engine, data, need, d, masks[key], rows, None if second is None else second[i]))
    return out


def _by_search(engine, need: Need, rows: np.ndarray) -> list[int]:
    """The reference: the search itself, its list long enough to hold every record."""
    wanted = set(rows.tolist())
    result = engine.search(need.query, None if need.filters.is_empty() else need.filters, limit=max(len(engine._rows), 1),
                           analysis=need.analysis or engine.analyse(need.query), query_vector=need.vector, fill=False)
    return [h.row for h in result.hits if h.row in wanted and not h.less_close]


def _judge_one(engine, data: _Rows, need: Need, dense: np.ndarray, mask: np.ndarray | None,
               new_rows: np.ndarray, second: np.ndarray | None = None) -> list[int]:
    cfg = engine.config
    model: JudgementModel = cfg.model
    allowed = np.flatnonzero(data.has_vector if mask is None else (mask & data.has_vector))
    if not len(allowed):
        return []
    filtered = mask is not None
    browse = filtered and not (need.sectors or need.complements or need.countries or need.places)
    # -- keyword scores, as _retrieve.keyword_scores computes them (hybrid: divided by max(best, floor))
    tokens = need.keywords
    kw_all = np.zeros(data.n, np.float64)
    if tokens and engine._bm25 is not None:
        bm = engine._bm25.scores(tokens)
        if mask is not None:
            bm[~mask] = 0.0
        best = float(bm.max()) if len(bm) and (mask is None or mask.any()) else 0.0
        top = max(best, cfg.bm25_floor)
        pos = bm > 0
        kw_all[pos] = bm[pos].astype(np.float64) / top
    # -- the ranking: rows in id order, so a stable sort of -score breaks ties by id as the search does
    d = dense[allowed].astype(np.float64)
    kw = kw_all[allowed]
    sought = list(need.sectors)
    complements = [s for s in need.complements if s not in set(sought)]
    tagged = data.tagged[allowed]
    n_sought = np.zeros(len(allowed), np.int64)
    for s in sought:  # a sought slug counted as often as the query lists it, as the fusion counts it
        code = data.sector_code.get(s)
        if code is not None:
            n_sought += tagged[:, code]
    comp_codes = data.codes_of(complements)
    has_comp = tagged[:, comp_codes].any(1) if comp_codes else np.zeros(len(allowed), bool)
    wanted_codes = data.codes_of(sought + complements)
    on_topic = data.about[allowed][:, wanted_codes].any(1) if wanted_codes else np.zeros(len(allowed), bool)
    use = second[allowed].astype(np.float64) if second is not None else np.zeros(len(allowed))
    score = cfg.w_dense * d + cfg.w_bm25 * kw + cfg.w_use * use
    n_q_sectors = len(set(sought))
    if n_q_sectors:
        score = np.where(n_sought > 0, score + cfg.boost_sector * n_sought / n_q_sectors,
                         np.where(has_comp, score + cfg.boost_complement, score))
    else:
        score = np.where(has_comp, score + cfg.boost_complement, score)
    country_codes = data.country[allowed]
    wanted_country = need.countries[0] if len(need.countries) == 1 else None
    if wanted_country:
        hit_country = _code_is(country_codes, data.country_table, lambda v: v == wanted_country)
        score = np.where(hit_country, score + cfg.boost_country, score)
    kinds = set(need.kinds)
    kind_sig = _code_is(data.kind[allowed], data.kind_table, lambda v: v in kinds) if kinds else np.zeros(len(allowed), bool)
    score = np.where(kind_sig, score + cfg.boost_kind, score)
    place_names = set(need.places)
    if place_names:
        keys = data.cols.keys
        place_sig = (_code_is(data.region[allowed], keys["region"], lambda v: v in place_names, none="")
                     | _code_is(data.city[allowed], keys["city"], lambda v: v in place_names, none=""))
    else:
        place_sig = np.zeros(len(allowed), bool)
    score = np.where(place_sig, score + cfg.boost_place, score)
    order = np.argsort(-score, kind="stable")
    ranked = allowed[order]
    new_pos = np.flatnonzero(np.isin(ranked, new_rows))
    if browse:  # a browse within hard filters: every hit is shown, the filters say what is wanted
        return ranked[new_pos].tolist()
    d, kw, score, use = d[order], kw[order], score[order], use[order]
    on_topic, is_tagged = on_topic[order], ((n_sought > 0) | has_comp)[order]
    place_sig, kind_sig = place_sig[order], kind_sig[order]
    countries = set(need.countries)
    in_country = _code_is(country_codes[order], data.country_table, lambda v: v in countries) if countries \
        else np.zeros(len(ranked), bool)
    topic = float(bool(need.sectors or need.complements))

    def feats(idx: np.ndarray, ignore_country: bool, scale: tuple[float, float]) -> np.ndarray:
        """``_judge.features`` of the hits at positions ``idx`` (best first), as one matrix."""
        asked = bool(countries) and not ignore_country
        return feature_rows(d[idx], kw[idx], score[idx], on_topic[idx], is_tagged[idx], asked & in_country[idx],
                            asked & ~in_country[idx], place_sig[idx], kind_sig[idx], topic, scale, use[idx], use_scale)

    scale, use_scale = scale_of(d), scale_of(use)  # _judge.pool_scale over every hit
    everything = np.arange(len(ranked))
    sided = in_country if countries else np.ones(len(ranked), bool)
    sided_idx = np.flatnonzero(sided)
    if not len(sided_idx):
        return []
    top = feats(sided_idx[:QUERY_HITS], False, scale)
    answerable = float(model.answerable(query_features(top, scale[1])))
    if answerable < model.threshold:
        return []  # not answered: at most "less close" hits, never a match
    p = model.hit(feats(everything, False, scale))
    kept = (p >= model.hit_threshold) & sided
    on_its_own = bool(kept.any())
    kept[sided_idx[:MIN_SHOWN]] = True  # the best on the side asked for is shown (``MIN_SHOWN``)
    match = kept.copy()
    if on_its_own and countries and not need.split:
        other = model.hit(feats(everything, True, scale))
        match |= ~kept & ~in_country & (other >= model.hit_threshold)
    # a match list in the search's order: the side asked for first, then the other side's
    first, then = new_pos[kept[new_pos]], new_pos[(match & ~kept)[new_pos]]
    return ranked[np.concatenate([first, then])].tolist()


def _code_is(codes: np.ndarray, table: Sequence[str], test, none=None) -> np.ndarray:
    """Rows whose coded value passes ``test`` (the test run once per distinct value, not per row)."""
    values = [test(v) for v in table]
    lookup = np.asarray(values + [bool(test(none)) if none is not None else False], bool)
    return lookup[np.where(codes >= 0, codes, len(values))]
