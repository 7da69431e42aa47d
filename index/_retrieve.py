"""Retrieve: the candidates of one query, from the dense store and from BM25.

Dense: the vector store's nearest language versions, each record scored by its best version.
Keywords: BM25 over the record texts (with the places the question names in pt, zh and en), normalised by the best score (or a floor, in hybrid mode,
so a query whose best keyword match is weak does not make it look strong). In hybrid mode the
best keyword rows the dense search missed are scored exactly and added. Nothing is ranked here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ._candidates import Candidates
from ._keywords import KeywordIndex, tokenize
from ._query import QueryAnalysis
from ._second import SecondVectors
from ._sectors import SECTOR_VID_BASE
from ._vectors import VectorFilter, VectorStore

SLOTS = 16  # vector id = record sequence * SLOTS + language slot; corpus.MAX_LANGUAGES is the same limit


class Retrievable(Protocol):
    """What retrieval reads of an index generation (``SearchEngine`` is one)."""

    raw: VectorStore | None
    cal: VectorStore | None
    lang_slots: dict[str, int]
    _bm25: KeywordIndex | None
    _row_of_seq: np.ndarray
    _second: SecondVectors | None

    def _vids_of_row(self, row: int) -> list[int]: ...


def dense_candidates(index: Retrievable, qv: np.ndarray, k: int, vfilter: VectorFilter | None,
                     calibrate: bool) -> dict[int, float]:
    """Row -> best dense score of the ``k`` nearest vectors (rows unknown to the index skipped)."""
    store = index.cal if calibrate else index.raw
    assert store is not None
    scores, vids = store.search(qv, k, vfilter)
    vids = np.asarray(vids, np.int64)
    seqs = np.where(vids >= SECTOR_VID_BASE, vids - SECTOR_VID_BASE, vids // SLOTS)  # a sector passage, or a language version
    known = (seqs >= 0) & (seqs < len(index._row_of_seq))
    found = np.full(len(seqs), -1, np.int64)
    found[known] = index._row_of_seq[seqs[known]]
    dense: dict[int, float] = {}
    for s, row in zip(scores.tolist(), found.tolist()):
        if row >= 0 and s > dense.get(row, -9.0):
            dense[row] = s
    return dense


def exact_dense(index: Retrievable, qv: np.ndarray, rows: list[int], calibrate: bool) -> dict[int, float]:
    """Dense scores of ``rows`` the nearest-neighbour search did not return, in one batch."""
    store = index.cal if calibrate else index.raw
    assert store is not None
    owners = [(row, vid) for row in rows for vid in index._vids_of_row(row)]
    # one batch for all candidates; a vector deleted under this generation (Milvus changes in
    # place: another worker's delete) is skipped until this worker loads the newer generation
    held, vectors = store.fetch_known([vid for _, vid in owners])
    sims = vectors @ qv
    out: dict[int, float] = {}
    for (row, _), s, h in zip(owners, sims.tolist(), held.tolist()):
        if h and s > out.get(row, -9.0):
            out[row] = s
    return out


PLACE_LANGS = ("pt", "zh", "en")


def place_tokens(a: QueryAnalysis) -> list[str]:
    """Keyword tokens of the places the question names, in pt, zh and en (the gazetteer's labels):
    "Fujian" also finds a record that writes 福建, "Cantão" one that writes Guangdong."""
    words: list[str] = []
    for place in a.places:
        words += [place.name, *(place.labels.get(code, "") for code in PLACE_LANGS)]
    own = set(a.tokens) | set(a.expansion)
    return [t for t in dict.fromkeys(tokenize(" ".join(w for w in words if w))) if t not in own]


def keyword_scores(bm25: KeywordIndex | None, tokens: list[str], n_rows: int, mask: np.ndarray | None,
                   floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(row -> BM25 score / max(best allowed score, ``floor``), rows with a score in row order)."""
    keyword = np.zeros(n_rows, np.float64)
    if not tokens or bm25 is None:
        return keyword, np.zeros(0, np.int64)
    bm = bm25.scores(tokens)
    if mask is not None:
        bm[~mask] = 0.0
    best = float(bm.max()) if len(bm) and (mask is None or mask.any()) else 0.0
    top = max(best, floor)
    kw_rows = np.flatnonzero(bm > 0)
    keyword[kw_rows] = bm[kw_rows].astype(np.float64) / top
    return keyword, kw_rows


def best_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` rows of highest ``scores`` (unordered; -inf rows, filtered out, left out)."""
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.zeros(0, np.int64)
    return top[np.isfinite(scores[top])]


def unfiltered_scores(index: Retrievable, n_rows: int, qv: np.ndarray, sv: np.ndarray | None, k: int, calibrate: bool,
                      second_candidates: int, every: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(dense, second-signal) scores of what a search without filters would retrieve by meaning:
    the ``k`` nearest (and, when every record is scored by the second signal, its
    ``second_candidates`` best too). What a filtered search reads the query's scale from
    (index/_judge.py); the keyword candidates are left out, they rarely reach the best dense scores
    and scoring every record's keywords again cost a 100k search ~10 ms."""
    dense = dense_candidates(index, qv, k, None, calibrate)
    second = index._second
    use = np.zeros(0, np.float64)
    if sv is not None and second is not None and len(second) == n_rows:
        rows = list(dense)
        if second.exact:
            every = second.all_rows(sv) if every is None else every  # the search scored them all already
            top = best_rows(every, second_candidates)
            use = np.concatenate([every[rows], every[np.setdiff1d(top, rows)]]).astype(np.float64)
        else:
            use = second.rows(sv, rows).astype(np.float64)
    return np.fromiter(dense.values(), np.float64, len(dense)), use


@dataclass
class KeywordCandidates:
    """What retrieval finds without the query vector: read while the encoders work (two cores:
    the keywords' ~1.5 ms at 100k and the second signal's rows of their best hide behind e5)."""

    mask: np.ndarray | None  # the rows the filters allow (None: all), as read for this search
    keyword: np.ndarray  # row -> BM25 score over the best allowed one (0 for none)
    rows: np.ndarray  # the rows with a keyword score, in row order
    best: list[int]  # hybrid mode: the best keyword rows, best first (ties in row order)
    use: dict[int, float] = field(default_factory=dict)  # second-signal scores of ``best`` read already
    timings: dict[str, float] = field(default_factory=dict)  # "keyword", "second": what reading them took


def keyword_candidates(index: Retrievable, a: QueryAnalysis, n_rows: int, mask: np.ndarray | None, need: int,
                       mode: str, min_candidates: int, bm25_floor: float) -> KeywordCandidates:
    """The keyword scores of ``mode`` ("hybrid", "bm25"; "dense" reads none) and, in hybrid mode,
    the best keyword rows that join the candidates."""
    keyword = np.zeros(n_rows, np.float64)
    kw_rows = np.zeros(0, np.int64)
    timings: dict[str, float] = {}
    q_tokens = a.tokens + a.expansion + place_tokens(a)
    if mode in ("hybrid", "bm25") and q_tokens and index._bm25 is not None:
        t = time.perf_counter()
        keyword, kw_rows = keyword_scores(index._bm25, q_tokens, n_rows, mask, bm25_floor if mode == "hybrid" else 1e-9)
        timings["keyword"] = time.perf_counter() - t
    best: list[int] = []
    if mode == "hybrid":
        n_best = max(min_candidates, need)
        if len(kw_rows) > n_best:  # the best, ties in row order (a stable sort's)
            cut = -np.partition(-keyword[kw_rows], n_best - 1)[n_best - 1]
            pool = kw_rows[keyword[kw_rows] >= cut]
        else:
            pool = kw_rows
        best = pool[np.argsort(-keyword[pool], kind="stable")][:n_best].tolist()
    return KeywordCandidates(mask, keyword, kw_rows, best, timings=timings)


def second_of_keywords(index: Retrievable, found: KeywordCandidates, sv: np.ndarray | None, n_rows: int) -> None:
    """Reads the second signal's scores of the best keyword rows into ``found.use`` when only
    candidates are scored (a large generation): they are candidates whatever the dense search finds."""
    second = index._second
    if sv is None or second is None or second.exact or len(second) != n_rows or not found.best:
        return
    t = time.perf_counter()
    found.use = dict(zip(found.best, second.rows(sv, found.best).tolist()))
    found.timings["second"] = time.perf_counter() - t


def retrieve(index: Retrievable, a: QueryAnalysis, n_rows: int, mask: np.ndarray | None, n_allowed: int,
             vfilter: VectorFilter | None, need: int, mode: str, qv: np.ndarray | None, calibrate: bool,
             min_candidates: int, bm25_floor: float, timings: dict[str, float],
             sv: np.ndarray | None = None, second_candidates: int = 0,
             keywords: KeywordCandidates | None = None) -> Candidates:
    """The candidates of ``mode``: "dense", "bm25" or both ("hybrid"). ``qv``: the query vector
    (None in bm25 mode); ``need``: offset + limit of the page asked for. ``sv``: the second
    signal's query vector (hybrid mode; index/_second.py): every candidate gets its score, and
    the ``second_candidates`` records it ranks highest join them. ``keywords``: the keyword
    candidates when they were read already (``keyword_candidates``, under the same ``mask``)."""
    dense: dict[int, float] = {}
    if mode in ("hybrid", "dense"):
        assert qv is not None
        k = max(min_candidates, need * 2 * max(1, len(index.lang_slots)))
        dense = dense_candidates(index, qv, k, vfilter, calibrate)

    found = keywords or keyword_candidates(index, a, n_rows, mask, need, mode, min_candidates, bm25_floor)
    timings.update(found.timings)
    keyword, kw_rows = found.keyword, found.rows
    if mode == "bm25":
        # ranked by keyword score alone: the page is picked in numpy (ties by id, the row order)
        order = np.lexsort((kw_rows, -keyword[kw_rows]))[:need]
        return Candidates(kw_rows[order].tolist(), dense, keyword, len(kw_rows))
    rows = list(dense)
    if mode == "hybrid":
        missing = [r for r in found.best if r not in dense]
        use: dict[int, float] = {}
        use_every: np.ndarray | None = None
        second = index._second
        if sv is not None and second is not None and len(second) == n_rows:
            t = time.perf_counter()
            if second.exact:  # every record scored: its best join the candidates
                use_every = every = second.all_rows(sv)
                if mask is not None:
                    every = np.where(mask, every, -np.inf)
                top = best_rows(every, second_candidates)
                held = set(dense) | set(missing)
                missing += [r for r in sorted(top.tolist(), key=lambda r: (-every[r], r)) if r not in held]
                use = {r: float(every[r]) for r in rows + missing}
            else:  # too many to score all: the candidates only (the keywords' may have been read already)
                cand = rows + missing
                known = found.use
                todo = [r for r in cand if r not in known]
                read = dict(zip(todo, second.rows(sv, todo).tolist())) if todo else {}
                use = {r: known[r] if r in known else read[r] for r in cand}
            timings["second"] = timings.get("second", 0.0) + time.perf_counter() - t
        if missing and qv is not None:
            dense.update(exact_dense(index, qv, missing, calibrate))
        rows += missing
        return Candidates(rows, dense, keyword, n_allowed, use, use_every)
    return Candidates(rows, dense, keyword, n_allowed)
