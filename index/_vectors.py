"""Vector stores behind one interface: FAISS in the generation folder (the default) or Milvus.

``FaissVectorStore`` scores exactly (``IndexFlatIP``) up to a size and uses HNSW32 over 8-bit
scalar-quantised vectors beyond it: at 100k clustered 384-d vectors HNSW answers in 0.2 ms at
recall@10 0.97 in 70 MB (the flat index: 158 MB, 19 ms; bench/vectors.py), and needs no
training pass like IVF.
Filters are pushed into the search as a bitmap of the allowed positions, so ``k`` results come
back after filtering. ``MilvusVectorStore`` (index/_milvus.py) is the same interface on a Milvus
server or the embedded milvus-lite.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import faiss
import numpy as np

from ._npy import load as load_npy

# One query at a time over at most a few hundred thousand vectors needs no thread pool, and
# idle OpenMP workers spinning after a search steal the cores the encoder needs next.
faiss.omp_set_num_threads(int(os.environ.get("CPC_FAISS_THREADS") or 1))


# -- the vector-store interface --------------------------------------------------------------
# Every ANN backend (FAISS in the generation folder, Milvus on a server or milvus-lite) sits
# behind this one small class, as the engine sees it. Vector ids are int64 (record sequence *
# SLOTS + language slot). Each vector carries filter columns (its record's id, country, region,
# city, kind and sectors, as the engine's folded keys), so a filter is applied inside the
# engine's own search: k results come back after filtering. ``record`` holds the record id as it
# is (ids are exact); the other columns hold folded keys (``_key`` in index/_engine.py).

FILTER_COLUMNS: tuple[str, ...] = ("record", "country", "region", "city", "kind", "sector")


class VectorStoreUnavailable(RuntimeError):
    """The configured vector store cannot be opened or does not answer (a Milvus server away, a
    milvus-lite file another process holds): a clear message instead of a client's traceback."""


LITE_ONE_PROCESS = ("a milvus-lite file is opened by one process only: to serve with several workers, or to run"
                    " `cpc` commands beside a server, run a Milvus server (e.g. `milvus-lite server --data-dir DIR"
                    " --port 19530`) and set CPC_VECTOR_URL=milvus://host:19530")


def is_lite_file(url: str | None) -> bool:
    """A milvus-lite file (one process), not a Milvus server."""
    return bool(url) and (url.startswith("milvus-lite://") or (url.endswith(".db") and "://" not in url))  # type: ignore[union-attr]


def lite_file_in_use(url: str | None, generation: Path | None) -> str | None:
    """The milvus-lite file a process opens: ``url``'s (CPC_VECTOR_URL), or the one the
    ``generation`` folder's index refers to; None for FAISS or a Milvus server."""
    if is_lite_file(url):
        return url
    try:
        saved = json.loads((Path(generation) / "dense-raw.json").read_text(encoding="utf-8")) if generation else {}
    except (OSError, ValueError):
        return None
    saved_url = saved.get("url") if isinstance(saved, dict) and saved.get("backend") == "milvus" else None
    return saved_url if is_lite_file(saved_url) else None


@dataclass(frozen=True)
class VectorFilter:
    """Which vectors a search may return. Every non-empty ``include`` column must hold one of its
    values (``sector`` is multi-valued: any of the vector's sectors); a vector holding any
    ``exclude`` value is dropped. Values are the engine's folded keys."""

    include: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def is_empty(self) -> bool:
        return not any(values for _, values in self.include) and not any(values for _, values in self.exclude)


Columns = Mapping[str, "str | Sequence[str] | None"]


@runtime_checkable
class VectorStore(Protocol):
    """Upsert, delete, search with filters, fetch, count; saved with (or referenced from) an
    index generation."""

    kind: str  # "flat", "hnsw-sq8", "milvus": what answers searches now
    dim: int

    def count(self, filter: VectorFilter | None = None) -> int: ...

    def __len__(self) -> int: ...

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, columns: Sequence[Columns]) -> None:
        """Add or replace vectors by id; ``columns[i]`` are the filter columns of ``ids[i]``."""

    def delete(self, ids: np.ndarray) -> int:
        """Remove vectors by id; the number removed."""

    def search(self, query: np.ndarray, k: int, filter: VectorFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) by inner product for one query vector, best first, after filtering."""

    def fetch(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``ids``, in that order (KeyError for an unknown id)."""

    def fetch_known(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(held, vectors): which of ``ids`` the store holds, and their vectors (zeros for the
        rest). A Milvus collection changes in place under every worker's generation: an id a
        worker still serves may be deleted by another, and is skipped until it catches up."""

    def save(self, folder: Path, name: str) -> None:
        """Write what a generation folder needs to open this store again (``open_vector_store``)."""



# A store saved as ``name`` is a few flat files ``name.*`` in the generation folder (which is
# fsynced file by file); ``name.json`` says which backend and what it needs to open again.


def _as_values(value: "str | Sequence[str] | None") -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if v]


def check_batch(dim: int, ids: np.ndarray, vectors: np.ndarray, columns: Sequence[Columns]) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors as the stores keep them; a clear ValueError for a malformed batch."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"vectors must be (n, {dim}), got {vectors.shape}")
    if not (len(ids) == len(vectors) == len(columns)):
        raise ValueError(f"{len(ids)} ids, {len(vectors)} vectors and {len(columns)} column rows do not line up")
    if len(ids) and ids.min() < 0:
        raise ValueError("vector ids must be non-negative")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("an id appears twice in one upsert")
    for row in columns:
        unknown = set(row) - set(FILTER_COLUMNS)
        if unknown:
            raise ValueError(f"unknown filter column(s) {sorted(unknown)}; known: {', '.join(FILTER_COLUMNS)}")
    return ids, vectors


def check_filter(filter: VectorFilter | None) -> None:
    if filter is None:
        return
    for col, _ in filter.include + filter.exclude:
        if col not in FILTER_COLUMNS:
            raise ValueError(f"unknown filter column '{col}'; known: {', '.join(FILTER_COLUMNS)}")


class FaissVectorStore:
    """Exact inner product up to ``exact_max`` vectors, HNSW32 over SQ8 codes beyond.

    FAISS addresses vectors by position and HNSW cannot remove one, so the store keeps, per
    position, the external id (-1 once deleted: a tombstone) and the filter columns as
    dictionary codes (int32 per position; ``sector`` as (position, code) pairs). A replaced
    vector is a tombstone plus an append; the index is rebuilt without tombstones once they
    pass ``compact_share`` of it. A search builds the bitmap of allowed positions from the codes
    (a few vectorised numpy passes) and picks its strategy from how many pass: few enough are
    scored exactly (recall 1), more go through HNSW with ``efSearch`` grown as the share shrinks.

    Vectors written into an HNSW store after it was built go to a small exact *delta* (float32,
    the positions after the HNSW index's), scored exactly beside the HNSW search and merged; the
    HNSW index itself stays as it was saved, memory-mapped, and the next generation links its
    file instead of writing it again. Adding 60 vectors to a 300k-vector HNSW once meant copying
    both stores into memory (400 MB) and writing them out again. The delta joins the HNSW index
    when it passes ``delta_share`` of it (at least ``delta_min`` vectors), in a rebuild.
    """

    def __init__(self, dim: int, exact_max: int = 50_000, *, hnsw_m: int = 32, ef_construction: int = 80,
                 ef_search: int = 128, ef_max: int = 1024, exact_filtered_max: int = 20_000,
                 compact_share: float = 0.25, delta_share: float = 0.05, delta_min: int = 4096):
        self.dim = dim
        self.exact_max = exact_max
        self.hnsw_m, self.ef_construction = hnsw_m, ef_construction
        self.ef_search, self.ef_max, self.exact_filtered_max = ef_search, ef_max, exact_filtered_max
        self.compact_share = compact_share
        self.delta_share, self.delta_min = delta_share, delta_min
        self.index: faiss.Index = faiss.IndexFlatIP(dim)
        self.kind = "flat"
        self._ids = np.zeros(0, np.int64)  # position -> external id, -1 for a tombstone
        self._codes = {c: np.zeros(0, np.int32) for c in FILTER_COLUMNS if c != "sector"}  # -1: no value
        self._sector_pos = np.zeros(0, np.int32)
        self._sector_code = np.zeros(0, np.int32)
        self._vocab: dict[str, list[str]] = {c: [] for c in FILTER_COLUMNS}
        self._code_of: dict[str, dict[str, int]] | None = None  # built on first use (100k record ids)
        self._dead = 0
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (ids sorted, their positions), cached
        self._mapped = False  # loaded memory-mapped: copied into memory before the first write
        self._source: Path | None = None  # the file the index was read from, while it is unchanged
        self._delta = np.zeros((0, dim), np.float32)  # HNSW kind: vectors of positions index.ntotal..
        self._sector_lists: dict[int, list[str]] | None = None  # position -> sectors, only while rebuilding

    # -- sizes ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids) - self._dead

    def count(self, filter: VectorFilter | None = None) -> int:
        if filter is None or filter.is_empty():
            return len(self)
        return int(self._mask(filter).sum())

    # -- writes ---------------------------------------------------------------------------
    def upsert(self, ids: np.ndarray, vectors: np.ndarray, columns: Sequence[Columns]) -> None:
        ids, vectors = check_batch(self.dim, ids, vectors, columns)
        if not len(ids):
            return
        self._writable()
        self._tombstone(ids)
        if self.kind == "flat" and len(self) + len(ids) > self.exact_max:
            self._rebuild(extra=(ids, vectors, columns))  # grown past exact: HNSW from here on
        else:
            self._append(ids, vectors, columns, delta=self.kind == "hnsw-sq8")
        self._maybe_compact()

    def delete(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(ids):
            return 0
        self._writable()
        removed = self._tombstone(np.unique(ids))
        self._maybe_compact()
        return removed

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Position of each id, -1 where absent."""
        if self._sorted is None:
            order = np.argsort(self._ids, kind="stable")
            self._sorted = (self._ids[order], order)
        keys, order = self._sorted
        if not len(keys):
            return np.full(len(ids), -1, np.int64)
        at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[at] == ids, order[at], -1)

    def _tombstone(self, ids: np.ndarray) -> int:
        pos = self._positions(ids)
        pos = pos[pos >= 0]
        if len(pos):
            self._ids[pos] = -1
            self._dead += len(pos)
            self._sorted = None
        return len(pos)

    def _code(self, col: str, value: str) -> int:
        codes = self._codes_of()[col]
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(self._vocab[col])
            self._vocab[col].append(value)
        return code

    def _codes_of(self) -> dict[str, dict[str, int]]:
        if self._code_of is None:
            self._code_of = {c: {v: i for i, v in enumerate(vocab)} for c, vocab in self._vocab.items()}
        return self._code_of

    def _append(self, ids: np.ndarray, vectors: np.ndarray, columns: Sequence[Columns], delta: bool = False) -> None:
        """Vectors at the next positions: into the index, or (``delta``) into the exact delta after it."""
        start = len(self._ids)
        if delta:
            self._delta = np.vstack([self._delta, vectors]).astype(np.float32, copy=False)
        else:
            assert not len(self._delta), "the index's positions come before the delta's"
            if self.kind == "hnsw-sq8" and not self.index.is_trained:
                self._train(vectors)
            self.index.add(vectors)
            self._source = None
        self._ids = np.concatenate([self._ids, ids])
        for col in self._codes:
            new = np.array([self._code(col, vals[0]) if (vals := _as_values(row.get(col))) else -1 for row in columns], np.int32)
            self._codes[col] = np.concatenate([self._codes[col], new])
        pos, code = [], []
        for i, row in enumerate(columns):
            for v in dict.fromkeys(_as_values(row.get("sector"))):
                pos.append(start + i)
                code.append(self._code("sector", v))
        self._sector_pos = np.concatenate([self._sector_pos, np.array(pos, np.int32)])
        self._sector_code = np.concatenate([self._sector_code, np.array(code, np.int32)])
        self._sorted = None
        self._sector_lists = None

    def _new_index(self, n: int) -> None:
        if n > self.exact_max:
            index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_8bit, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            self.index, self.kind = index, "hnsw-sq8"
        else:
            self.index, self.kind = faiss.IndexFlatIP(self.dim), "flat"
        self._source = None
        self._delta = np.zeros((0, self.dim), np.float32)

    def _train(self, vectors: np.ndarray) -> None:
        """The SQ8 range of each dimension, from the vectors the HNSW index starts with (at least
        ``exact_max`` in the engine). A value outside it is clipped, so a small sample is mirrored
        (embedding components are spread about zero) and widened by a margin."""
        sq = faiss.downcast_index(self.index.storage).sq
        sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        if len(vectors) < 10_000:
            vectors = np.vstack([vectors, -vectors])
            sq.rangestat_arg = 0.2
        else:
            sq.rangestat_arg = 0.02
        self.index.train(vectors)

    def _maybe_compact(self) -> None:
        too_dead = self._dead and self._dead > self.compact_share * len(self._ids)
        if too_dead or len(self._delta) > max(self.delta_min, self.delta_share * self.index.ntotal):
            self._rebuild()

    def _rebuild(self, extra: tuple[np.ndarray, np.ndarray, Sequence[Columns]] | None = None) -> None:
        """A new index of the live vectors (and ``extra``), without tombstones, of the kind its size calls for."""
        live = np.flatnonzero(self._ids >= 0)
        vectors = self._vectors_at(live)
        columns = [self._row_columns(p) for p in live.tolist()]
        ids = self._ids[live]
        if extra is not None:
            ids = np.concatenate([ids, extra[0]])
            vectors = np.vstack([vectors, extra[1]])
            columns = list(columns) + list(extra[2])
        self._new_index(len(ids))
        self._ids = np.zeros(0, np.int64)
        self._codes = {c: np.zeros(0, np.int32) for c in self._codes}
        self._sector_pos, self._sector_code = np.zeros(0, np.int32), np.zeros(0, np.int32)
        self._vocab = {c: [] for c in FILTER_COLUMNS}
        self._code_of, self._dead = None, 0
        if len(ids):
            self._append(ids, np.ascontiguousarray(vectors, np.float32), columns)

    def _row_columns(self, position: int) -> dict[str, "str | list[str] | None"]:
        row: dict[str, "str | list[str] | None"] = {}
        for col, codes in self._codes.items():
            code = int(codes[position])
            row[col] = self._vocab[col][code] if code >= 0 else None
        if self._sector_lists is None:
            lists: dict[int, list[str]] = {}
            for p, c in zip(self._sector_pos.tolist(), self._sector_code.tolist()):
                lists.setdefault(p, []).append(self._vocab["sector"][c])
            self._sector_lists = lists
        row["sector"] = self._sector_lists.get(position, [])
        return row

    def _writable(self) -> None:
        """A memory-mapped store is read-only: copy it into memory before the first change (an
        HNSW index excepted: it is never changed in place, writes go to the delta)."""
        self._sector_lists = None
        if not self._mapped:
            return
        if self.kind != "hnsw-sq8":
            # an exact index is added to in place: read it again from its file, owning its vectors
            # (serializing the mapped index first held a second copy)
            try:
                self.index = faiss.read_index(str(self._source))
            except (RuntimeError, TypeError):  # no source file (pruned meanwhile, or never one)
                self.index = faiss.deserialize_index(faiss.serialize_index(self.index))
        self._ids = np.array(self._ids)
        self._codes = {c: np.array(v) for c, v in self._codes.items()}
        self._sector_pos, self._sector_code = np.array(self._sector_pos), np.array(self._sector_code)
        self._delta = np.array(self._delta)
        self._mapped = False

    # -- reads ----------------------------------------------------------------------------
    def _mask(self, filter: VectorFilter) -> np.ndarray:
        check_filter(filter)
        mask = self._ids >= 0
        for col, values in filter.include:
            if values:
                mask &= self._column_mask(col, values)
        for col, values in filter.exclude:
            if values:
                mask &= ~self._column_mask(col, values)
        return mask

    def _column_mask(self, col: str, values: Sequence[str]) -> np.ndarray:
        known = self._codes_of()[col]
        wanted = [known[v] for v in values if v in known]
        lut = np.zeros(len(self._vocab[col]) + 1, bool)  # shifted by one: code -1 (no value) is never wanted
        lut[np.array(wanted, np.int64) + 1] = True
        if col != "sector":
            return lut[self._codes[col] + 1]
        mask = np.zeros(len(self._ids), bool)
        mask[self._sector_pos[lut[self._sector_code + 1]]] = True
        return mask

    def search(self, query: np.ndarray, k: int, filter: VectorFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, -1))
        if q.shape[1] != self.dim:
            raise ValueError(f"query must have {self.dim} dimensions, got {q.shape[1]}")
        filtered = filter is not None and not filter.is_empty()
        mask = self._mask(filter) if filtered else (self._ids >= 0 if self._dead else None)  # type: ignore[arg-type]
        allowed = len(self) if mask is None else int(mask.sum())
        k = min(k, allowed)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        n_main = self.index.ntotal
        if not len(self._delta):
            scores, pos = self._search_index(q, k, mask, allowed, len(self))
            return scores, np.asarray(self._ids[pos])
        # the HNSW index's positions, and the delta's scored exactly; the best k of both
        main_mask = None if mask is None else mask[:n_main]
        main_alive = n_main - int((np.asarray(self._ids[:n_main]) < 0).sum()) if self._dead else n_main
        main_allowed = main_alive if main_mask is None else int(main_mask.sum())
        if main_mask is None and self._dead:
            main_mask = np.asarray(self._ids[:n_main]) >= 0
        parts = [self._search_index(q, min(k, main_allowed), main_mask, main_allowed, main_alive)] if main_allowed else []
        delta_pos = np.arange(n_main, len(self._ids)) if mask is None else n_main + np.flatnonzero(mask[n_main:])
        if len(delta_pos):
            parts.append(self._exact(q[0], min(k, len(delta_pos)), delta_pos))
        scores = np.concatenate([p[0] for p in parts])
        pos = np.concatenate([p[1] for p in parts])
        best = np.argsort(-scores, kind="stable")[:k]
        return scores[best].astype(np.float32), np.asarray(self._ids[pos[best]])

    def _search_index(self, q: np.ndarray, k: int, mask: np.ndarray | None, allowed: int,
                      alive: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, positions) among the index's own positions ``mask`` allows (None: all;
        ``allowed`` of the ``alive`` ones pass)."""
        share = allowed / max(alive, 1)
        # HNSW meets ~1/share rejected vectors for each allowed one, so efSearch grows as 1/share;
        # where that would pass ef_max (a filter leaving under ef_search/ef_max of the vectors, 12.5%
        # by default) or few vectors pass, scoring the allowed ones exactly is as fast and finds them all
        if self.kind == "hnsw-sq8" and allowed > self.exact_filtered_max and self.ef_search / share <= self.ef_max:
            ef = int(max(k, self.ef_search / share))
            bits = None if mask is None else np.packbits(mask, bitorder="little")  # alive while FAISS reads it
            sel = None if bits is None else faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            scores, pos = self.index.search(q, k, params=faiss.SearchParametersHNSW(sel=sel, efSearch=ef))
            if int((pos[0] >= 0).sum()) >= k:
                return self._found(scores, pos)
        if mask is None or (self.kind == "flat" and share > 0.1):  # most vectors: FAISS scores them in place
            bits = None if mask is None else np.packbits(mask, bitorder="little")
            params = None if bits is None else faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits)))
            flat = self.index if self.kind == "flat" else faiss.downcast_index(self.index.storage)
            return self._found(*(flat.search(q, k, params=params) if params is not None else flat.search(q, k)))
        return self._exact(q[0], k, np.flatnonzero(mask))

    def _exact(self, q: np.ndarray, k: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions) of the best ``k`` of ``positions`` (ascending), scored exactly: read
        straight from the index's own storage (FAISS's bitmap scan walks every position: 7 ms at
        300k for a 1% filter, this ~1 ms), or from the delta."""
        n_main = self.index.ntotal
        in_main = positions[positions < n_main]
        sims = np.zeros(len(positions), np.float32)
        if len(in_main):
            if self.kind == "flat":
                sims[: len(in_main)] = self._stored()[in_main] @ q
            else:  # 8-bit codes: x = vmin + (code + 0.5) / 255 * vdiff per dimension, as FAISS decodes them
                vmin, vdiff = self._sq_range()
                sims[: len(in_main)] = (self._stored()[in_main].astype(np.float32) @ (q * vdiff / 255)
                                        + float(q @ (vmin + 0.5 * vdiff / 255)))
        if len(in_main) < len(positions):  # ascending: the delta's positions come last
            sims[len(in_main):] = np.asarray(self._delta)[positions[len(in_main):] - n_main] @ q
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.argsort(-sims[top], kind="stable")]
        return sims[top].astype(np.float32), positions[top]

    def _stored(self) -> np.ndarray:
        """The index's vectors (flat) or codes (SQ8) as an (n, ·) numpy view, not a copy."""
        flat = self.index if self.kind == "flat" else faiss.downcast_index(self.index.storage)
        n = flat.ntotal
        if self.kind == "flat":
            return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
        return faiss.rev_swig_ptr(flat.codes.data(), n * flat.code_size).reshape(n, flat.code_size)

    def _sq_range(self) -> tuple[np.ndarray, np.ndarray]:
        trained = faiss.vector_to_array(faiss.downcast_index(self.index.storage).sq.trained)
        return trained[: self.dim], trained[self.dim :]

    @staticmethod
    def _found(scores: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = pos[0] >= 0
        return scores[0][keep], pos[0][keep]

    def _vectors_at(self, positions: np.ndarray) -> np.ndarray:
        """The stored vectors at ``positions`` (the index's decoded, the delta's as written)."""
        positions = np.asarray(positions, np.int64)
        out = np.zeros((len(positions), self.dim), np.float32)
        n_main = self.index.ntotal
        in_main = positions < n_main
        if in_main.any():
            out[in_main] = self.index.reconstruct_batch(positions[in_main])
        if not in_main.all():
            out[~in_main] = np.asarray(self._delta)[positions[~in_main] - n_main]
        return out

    def fetch(self, ids: Sequence[int]) -> np.ndarray:
        ids = np.asarray(ids, np.int64).reshape(-1)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        pos = self._positions(ids)
        if (pos < 0).any():
            raise KeyError(f"unknown vector id {int(ids[pos < 0][0])}")
        return self._vectors_at(pos)

    def fetch_known(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64).reshape(-1)
        out = np.zeros((len(ids), self.dim), np.float32)
        pos = self._positions(ids) if len(ids) else np.zeros(0, np.int64)
        held = pos >= 0
        if held.any():
            out[held] = self._vectors_at(pos[held])
        return held, out

    # -- persistence ----------------------------------------------------------------------
    def save(self, folder: Path, name: str) -> None:
        """``name.faiss`` (the index), ``name.<column>.npy`` and ``name.json`` (kind, knobs,
        vocabularies). Written by Python so a full disk is an OSError like any other file's."""
        folder = Path(folder)
        if not self._link(folder / f"{name}.faiss"):
            data = faiss.serialize_index(self.index)
            with open(folder / f"{name}.faiss", "wb") as fh:
                fh.write(memoryview(data))
        np.save(folder / f"{name}.delta.npy", self._delta)
        np.save(folder / f"{name}.ids.npy", self._ids)
        for col, codes in self._codes.items():
            np.save(folder / f"{name}.{col}.npy", codes)
        np.save(folder / f"{name}.sector-pos.npy", self._sector_pos)
        np.save(folder / f"{name}.sector.npy", self._sector_code)
        meta = {"backend": "faiss", "kind": self.kind, "dim": self.dim, "dead": self._dead,
                "knobs": {"exact_max": self.exact_max, "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction,
                          "ef_search": self.ef_search, "ef_max": self.ef_max,
                          "exact_filtered_max": self.exact_filtered_max, "compact_share": self.compact_share,
                          "delta_share": self.delta_share, "delta_min": self.delta_min},
                "vocab": self._vocab}
        (folder / f"{name}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    def _link(self, target: Path) -> bool:
        """Save the index as a hard link to the file it was read from, when it is unchanged since
        (saved files are never written again, so generations can share one)."""
        if self._source is None:
            return False
        try:
            os.link(self._source, target)
            return True
        except OSError:  # another filesystem, or the source is gone: written out instead
            return False

    @classmethod
    def open(cls, folder: Path, name: str, meta: dict, mmap: bool = True, **knobs) -> "FaissVectorStore":
        """Memory-mapped where FAISS allows (the vector codes and the columns), so a large index
        starts in seconds and its pages are shared by every process serving the same generation."""
        store = cls(meta["dim"], **{**meta.get("knobs", {}), **knobs})
        flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        store.index = faiss.read_index(str(folder / f"{name}.faiss"), flags)
        store.kind = meta["kind"]
        mode = "r" if mmap else None
        store._ids = load_npy(folder / f"{name}.ids.npy", mmap_mode=mode)
        store._codes = {c: load_npy(folder / f"{name}.{c}.npy", mmap_mode=mode) for c in store._codes}
        store._sector_pos = load_npy(folder / f"{name}.sector-pos.npy", mmap_mode=mode)
        store._sector_code = load_npy(folder / f"{name}.sector.npy", mmap_mode=mode)
        delta = folder / f"{name}.delta.npy"
        store._delta = load_npy(delta, mmap_mode=mode) if delta.exists() else np.zeros((0, store.dim), np.float32)
        store._vocab = {c: list(meta["vocab"].get(c, [])) for c in FILTER_COLUMNS}
        store._dead = int(meta.get("dead", 0))
        store._mapped = mmap
        store._source = folder / f"{name}.faiss"
        if store.index.ntotal + len(store._delta) != len(store._ids):
            raise ValueError(f"{folder}: {name}.faiss and its delta hold {store.index.ntotal} + {len(store._delta)} vectors"
                             f" but {name}.ids.npy {len(store._ids)}")
        return store


# -- factories --------------------------------------------------------------------------------
def is_milvus_url(url: str | None) -> bool:
    return bool(url) and (url.startswith(("milvus://", "milvus-lite://", "http://", "https://"))  # type: ignore[union-attr]
                          or url.endswith(".db"))  # type: ignore[union-attr]


def new_vector_store(dim: int, url: str | None = None, exact_max: int = 50_000, label: str = "dense", **knobs) -> VectorStore:
    """An empty store: FAISS (kept in the generation folder) unless ``url`` names a Milvus server
    (``milvus://host:19530``) or a milvus-lite file (``/path/x.db``, ``milvus-lite:///abs/x.db``),
    where each call makes a new collection ``cpc_<label>_<random>``."""
    if not url:
        return FaissVectorStore(dim, exact_max, **knobs)
    if not is_milvus_url(url):
        raise ValueError(f"vector store URL '{url}' is neither milvus://host:port nor a milvus-lite .db path")
    from ._milvus import MilvusVectorStore

    return MilvusVectorStore.create(url, dim, f"cpc_{label}_{uuid.uuid4().hex[:12]}".replace("-", "_"))


def open_vector_store(folder: Path, name: str, url: str | None = None, mmap: bool = True) -> VectorStore:
    """The store saved as ``name`` in a generation folder. For Milvus, ``url`` (when given) replaces
    the saved server address: the collection is found by its saved name."""
    where = Path(folder) / f"{name}.json"
    try:
        meta = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no vector store '{name}' in {folder}") from None
    if meta.get("backend") == "faiss":
        return FaissVectorStore.open(Path(folder), name, meta, mmap=mmap)
    if meta.get("backend") == "milvus":
        from ._milvus import MilvusVectorStore

        return MilvusVectorStore.connect(url or meta["url"], meta["collection"], meta["dim"])
    raise ValueError(f"{where}: unknown vector store backend {meta.get('backend')!r}")
