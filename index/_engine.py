"""The search core: a short orchestration of the stages over one index generation.

analyse (``_query``) → retrieve (``_retrieve``: dense + BM25 candidates) → fuse (``_fuse``: one
score each) → judge (``_judge``: which are matches) → explain (``_explain``: records and matched
terms of the hits shown). Building, updating, staging and loading generations is ``_generations``.
Pure Python objects, no HTTP: the API, the assistant and the evaluation all call
``SearchEngine.search``. Every language version of a record is a vector; a record scores
by its best version.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Callable, Sequence

import numpy as np

from corpus import Organisation, Place, TermMatcher, default_lexicon
from corpus import fold

from ._candidates import MODES, Candidates, Filters, Hit, Mode, SearchResult, Shown
from ._config import FLOOR_FILE, JUDGEMENT_FILE, SearchConfig, load_floor, load_judgement
from ._dictionary import english_to_chinese
from ._encoders import cap_text, encoder_executor
from ._explain import explain
from ._fuse import fusion
from ._generations import (
    BASE_SLOTS, FORMAT_VERSION, SLOTS, Generation, IndexMismatchError, IndexMissingError, SearchIndexError, passage_text,
)
from ._judge import apply_floor, asks_something, is_match, judge, scale_of
from ._normalise import vocabulary_of, warm as warm_normalise
from ._query import QueryAnalysis, analyse, analyse_record
from ._records import record_about, value_key
from ._retrieve import KeywordCandidates, keyword_candidates, retrieve, second_of_keywords, unfiltered_scores
from ._second import encode_query as encode_second_query
from ._vectors import VectorFilter

_key = value_key
_Shown = Shown

__all__ = [
    "BASE_SLOTS", "FLOOR_FILE", "JUDGEMENT_FILE", "load_judgement", "FORMAT_VERSION", "MODES", "SLOTS", "Candidates", "Filters", "Hit", "IndexMismatchError",
    "IndexMissingError", "Mode", "SearchConfig", "SearchEngine", "SearchIndexError", "SearchResult", "load_floor",
    "passage_text",
]


def _on_own_thread(encoder, fn: Callable, *args) -> Future | None:
    """``fn(*args)`` started on ``encoder``'s own thread, so it runs while this one works; None when
    the encoder has no thread of its own or this is it (then the caller runs it inline)."""
    executor = encoder_executor(encoder)
    if executor is None or threading.get_ident() == getattr(executor, "ident", None):
        return None
    return executor.submit(fn, *args)


class SearchEngine(Generation):
    """Searches the generation it holds (see ``Generation`` for building and loading it)."""

    def sectors_of(self, rec: Organisation) -> set[str]:
        """What the record is about for the floor (``_records.record_about``): read from the
        columns for an indexed record."""
        row = self._columns.row_of.get(rec.id) if self._columns is not None else None
        if row is not None:
            return set(self._columns.sectors("about", row))
        return set(record_about(rec))

    def named_in(self, folded: str, first: Sequence[str] = ()) -> str | None:
        """The record a folded message names: the first of ``first``, then in id order, one of
        whose names' ``name_key`` (4 characters or more) occurs in it; None if none does. Read
        from the columns (no record is parsed, nothing is worked out per message or per engine)."""
        cols = self._columns
        if cols is None:
            return None
        keys = cols.name_keys
        for rid in first:
            row = cols.row_of.get(rid)
            if row is not None and any(len(k) >= 4 and k in folded for k in keys[row]):
                return rid
        for i, k in enumerate(keys.flat):
            if len(k) >= 4 and k in folded:
                return cols.ids[int(np.searchsorted(keys.indptr, i, side="right")) - 1]
        return None

    def analyse(self, query: str) -> QueryAnalysis:
        """The query as understood, normalised against this generation's vocabulary (_normalise)."""
        return analyse(query, extra_places=self.record_places, vocabulary=vocabulary_of(self._columns))

    def record_places(self, text: str) -> list[Place]:
        """Regions and cities of the records named in ``text``, also those the shipped lexicon does
        not know: a newly ingested record's city is understood at once."""
        return [place for place, _, _ in self.record_place_mentions(text)]

    def warm(self, pause: Callable[[], object] | None = None) -> None:
        """Work out what the first searches of a newly loaded engine would otherwise work out
        inline (the record places' matcher, the filter values): whoever loads a generation calls
        this before swapping it in, so no search pays for it (``pause``: see ``load``)."""
        self.record_place_mentions("")
        warm_normalise(self._columns)  # the normalisation vocabulary and its tools
        english_to_chinese()  # the dictionary the analysis reads English words with
        for key in ("country", "region", "city", "kind", "sector"):
            if pause:
                pause()
            self.values(key)

    def record_place_mentions(self, text: str) -> list[tuple[Place, str, int]]:
        """As ``record_places``, with the term found and its offset (for exclusions: "without X")."""
        if self._places is None:
            lex = default_lexicon()
            pairs = []
            cols = self._columns
            columns: list[list] = [[], [], []]
            if cols is not None and len(cols):  # each distinct (country, region, city) once
                stacked = np.stack([np.asarray(cols.codes[f], np.int64) + 1 for f in ("country", "region", "city")], 1)
                sizes = stacked.max(0) + 1
                keys = (stacked[:, 0] * sizes[1] + stacked[:, 1]) * sizes[2] + stacked[:, 2]  # one int a triple:
                first = np.unique(keys, return_index=True)[1]  # unique(axis=0) held the GIL ~60 ms at 100k
                codes = stacked[np.sort(first)] - 1  # in row order, as each first occurs (the first spelling wins)
                columns = [[cols.tables[f][c] if c >= 0 else None for c in codes[:, i].tolist()]
                           for i, f in enumerate(("country", "region", "city"))]
            for country, region, city in zip(*columns):
                for level, value in (("region", region), ("city", city)):
                    if value and lex.place(value) is None and len(fold(value)) >= 3:
                        pairs.append((value, Place(value, country, level, region if level == "city" else None, {})))
            self._places = TermMatcher(pairs)
        return self._places.find(text)


    # -- search -------------------------------------------------------------------------
    def allowed_mask(self, filters: Filters | None) -> np.ndarray | None:
        """The rows ``filters`` allow, as a boolean mask over rows (None: no filter)."""
        if filters is None or filters.is_empty() or self._columns is None:
            return None
        cols = self._columns
        allowed = np.ones(len(cols), bool)
        for key, values in (("country", filters.countries), ("region", filters.regions), ("city", filters.cities),
                            ("kind", filters.kinds), ("sector", filters.sectors)):
            if values:
                allowed &= cols.mask(key, values)
        for key, values in (("country", filters.exclude_countries), ("region", filters.exclude_regions),
                            ("city", filters.exclude_cities)):
            if values:
                allowed &= ~cols.mask(key, values)
        for rid in filters.exclude_ids:
            row = cols.row_of.get(rid)
            if row is not None:
                allowed[row] = False
        return allowed

    def allowed_rows(self, filters: Filters | None) -> np.ndarray | None:
        mask = self.allowed_mask(filters)
        return None if mask is None else np.flatnonzero(mask)

    @staticmethod
    def vector_filter(filters: Filters | None) -> VectorFilter | None:
        """The hard filters as the vector store applies them inside its search (folded keys, ids as they are)."""
        if filters is None or filters.is_empty():
            return None
        keys = lambda values: tuple(_key(v) for v in values)  # noqa: E731
        return VectorFilter(
            include=(("country", keys(filters.countries)), ("region", keys(filters.regions)), ("city", keys(filters.cities)),
                     ("kind", keys(filters.kinds)), ("sector", keys(filters.sectors))),
            exclude=(("country", keys(filters.exclude_countries)), ("region", keys(filters.exclude_regions)),
                     ("city", keys(filters.exclude_cities)), ("record", tuple(filters.exclude_ids))),
        )

    def values(self, key: str) -> list[str]:
        """Distinct values present for a filterable field (country, region, city, kind, sector)."""
        return self._columns.values(key) if self._columns is not None else []

    def encode_query(self, text: str, lang: str, calibrate: bool) -> np.ndarray:
        """The query vector of ``text`` (capped: encoder time grows with the text, see SearchConfig)."""
        q = self.encoder.encode([cap_text(text, self.config.encode_chars_max)[0]], "query")[0]
        return self.calibration.apply_query(q, lang) if calibrate else q

    def encode_second(self, text: str) -> np.ndarray | None:
        """The second signal's query vector of ``text`` (index/_second.py), None when it is off."""
        if self.second is None or self._second is None:
            return None
        return encode_second_query(self.second, text, self.config.encode_chars_max)

    def _second_started(self, text: str) -> Future | None:
        """The second query vector, started on the second encoder's own thread so it is encoded
        while the first encoder works (two cores: its ~2 ms hide behind e5's ~20); None when it is
        off or its encoder has no thread of its own (then ``encode_second`` runs inline)."""
        if self.second is None or self._second is None:
            return None
        return _on_own_thread(self.second, self.encode_second, text)

    def keywords_for(self, a: QueryAnalysis, mask: np.ndarray | None, need: int, mode: str) -> KeywordCandidates:
        """What the search of ``a`` within ``mask`` (``allowed_mask``) finds by keywords
        (index/_retrieve.py): it needs no query vector, so it is read while the encoders work."""
        cfg = self.config
        return keyword_candidates(self, a, len(self._rows), mask, need, mode, cfg.min_candidates, cfg.bm25_floor)

    async def asearch(
        self,
        query: str,
        filters: Filters | None = None,
        limit: int = 10,
        offset: int = 0,
        mode: Mode = "hybrid",
        calibrate: bool | None = None,
    ) -> SearchResult:
        """``search`` for an event loop: only the encoder call leaves the loop, straight onto the
        encoder's own thread; the rest (~1 ms of ranking) runs in place, saving two thread hops."""
        t0 = time.perf_counter()
        calibrate = self.config.calibrate if calibrate is None else calibrate
        a = self.analyse(query)
        qv = sv = None
        encoded = found = None
        if mode in ("hybrid", "dense"):
            loop = asyncio.get_running_loop()
            t = time.perf_counter()
            started = self._second_started(a.focus) if mode == "hybrid" else None  # both encoders at once
            first = loop.run_in_executor(encoder_executor(self.encoder), self.encode_query, a.focus, a.lang, calibrate)
            found = self.keywords_for(a, self.allowed_mask(filters), offset + limit, mode)  # while they work
            if started is not None:
                sv = await asyncio.wrap_future(started)
                second_of_keywords(self, found, sv, len(self._rows))
            qv = await first
            encoded = time.perf_counter() - t
        result = self.search(query, filters, limit, offset, mode, calibrate, analysis=a, query_vector=qv,
                             second_vector=sv, keywords=found)
        if encoded is not None:  # the same timings a plain search reports
            result.timings["encode"] = encoded
        result.timings["total"] = time.perf_counter() - t0
        return result


    def search(
        self,
        query: str,
        filters: Filters | None = None,
        limit: int = 10,
        offset: int = 0,
        mode: Mode = "hybrid",
        calibrate: bool | None = None,
        analysis: QueryAnalysis | None = None,
        query_vector: np.ndarray | None = None,
        use_floor: bool = True,
        other_side: bool = True,
        fill: bool = True,
        second_vector: np.ndarray | None = None,
        keywords: KeywordCandidates | None = None,
    ) -> SearchResult:
        """``fill``: an answered question's list goes on past its matches with the next hits, labelled
        less close (index/_judge.py); the chat turns it off and offers those on "more" instead.
        ``second_vector``: the second signal's query vector (index/_second.py; encoded here if None).
        ``keywords``: what ``keywords_for`` read for this question, its filters' mask and page (else read here)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        t0 = time.perf_counter()
        cfg = self.config
        calibrate = cfg.calibrate if calibrate is None else calibrate
        a = analysis or self.analyse(query)
        mask = keywords.mask if keywords is not None else self.allowed_mask(filters)
        n_allowed = len(self._rows) if mask is None else int(mask.sum())
        timings: dict[str, float] = {"analyse": time.perf_counter() - t0}
        need = offset + limit
        if n_allowed == 0 or need <= 0:
            return SearchResult(a, 0, [], timings, encode_chars_max=cfg.encode_chars_max)
        n_rows = len(self._rows)
        qv, sv = query_vector, second_vector
        t = time.perf_counter()
        encoding = mode in ("hybrid", "dense") and qv is None
        # both encoders start at once; the keywords are read while they work (they need no vector)
        second_started = self._second_started(a.focus) if mode == "hybrid" and sv is None else None
        first_started = _on_own_thread(self.encoder, self.encode_query, a.focus, a.lang, calibrate) if encoding else None
        found = keywords or self.keywords_for(a, mask, need, mode)
        if mode == "hybrid" and sv is None:
            sv = second_started.result() if second_started is not None else self.encode_second(a.focus)
            second_of_keywords(self, found, sv, n_rows)
        if encoding:
            qv = first_started.result() if first_started is not None else self.encode_query(a.focus, a.lang, calibrate)
            timings["encode"] = time.perf_counter() - t  # from the encoders' start to both vectors in hand
        cands = retrieve(self, a, n_rows, mask, n_allowed, self.vector_filter(filters), need, mode, qv, calibrate,
                         cfg.min_candidates, cfg.bm25_floor, timings, sv, cfg.second_candidates, found)
        assert self._columns is not None
        hits = fusion(cfg.fusion)(cands, a, self._columns, cfg, mode)
        scales = None
        if mask is not None and mode == "hybrid" and use_floor and cfg.judgement == "calibrated" and asks_something(a):
            # a filtered search is judged on the query's scale over everything, not over what the
            # filters left: the one wine region of "只要宁夏的" stands nowhere against itself alone
            k = max(cfg.min_candidates, need * 2 * max(1, len(self.lang_slots)))
            dense_all, use_all = unfiltered_scores(self, len(self._rows), qv, sv, k, calibrate, cfg.second_candidates,
                                                   cands.use_every)
            scales = (scale_of(dense_all), scale_of(use_all))
        judged = judge(hits, a, cfg, mode, use_floor, mask is not None, other_side, fill, scales)
        total = cands.total if judged.total is None else judged.total
        page = explain(judged.hits[offset:need], self.records, self._bm25, a)
        explain(judged.nearest, self.records, None, a)
        timings["total"] = time.perf_counter() - t0
        less_close = sum(1 for hit in judged.hits if hit.less_close) if judged.total is not None else 0
        return SearchResult(a, total, page, timings, judged.nearest, cfg.encode_chars_max, less_close)

    # the floor, as it was reached before the stages had modules of their own (eval/_floor.py)
    apply_floor = staticmethod(apply_floor)
    is_match = staticmethod(is_match)

    def matches(self, org_id: str, limit: int = 10, lang: str | None = None) -> SearchResult:
        """Partners for one organisation, for staff preparing matchmaking: on the other side of the
        alliance, for what it seeks or does, through its sectors and their value chain."""
        rec = self.records.get(org_id)
        if rec is None:
            raise KeyError(org_id)
        a = analyse_record(rec, lang)
        return self.search(a.focus, Filters(exclude_ids=(org_id,)), limit=limit, analysis=a)
