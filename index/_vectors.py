"""FAISS vector index with int64 ids: exact inner product up to a size, IVF beyond.

Both kinds support add, remove and search restricted to a set of ids (filters applied
inside the search, so ``k`` results come back after filtering).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import faiss
import numpy as np

# One query at a time over at most a few hundred thousand vectors needs no thread pool, and
# idle OpenMP workers spinning after a search steal the cores the encoder needs next.
faiss.omp_set_num_threads(int(os.environ.get("CPC_FAISS_THREADS") or 1))


# -- the vector-store interface --------------------------------------------------------------
# Every ANN backend (FAISS in the generation folder, Milvus on a server or milvus-lite) sits
# behind this one small class, as the engine sees it. Vector ids are int64 (record sequence *
# SLOTS + language slot). Each vector carries filter columns (its record's id, country, region,
# city, kind and sectors, as the engine's folded keys), so a filter is applied inside the
# engine's own search: k results come back after filtering.

FILTER_COLUMNS: tuple[str, ...] = ("record", "country", "region", "city", "kind", "sector")


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

    kind: str  # "flat", "hnsw-sq8", "ivf", "milvus": what answers searches now
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

    def save(self, folder: Path, name: str) -> None:
        """Write what a generation folder needs to open this store again (``open_vector_store``)."""


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: str, nprobe: int = 16):
        self.index = index
        self.kind = kind  # "flat" | "ivf"
        self.nprobe = nprobe

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, exact_max: int = 50_000, nprobe: int = 16) -> "VectorIndex":
        dim = vectors.shape[1]
        if len(vectors) <= exact_max:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            kind = "flat"
        else:
            # ~4·sqrt(n) lists, but never fewer than 39 training points a list (FAISS's minimum)
            nlist = max(1, min(int(4 * math.sqrt(len(vectors))), len(vectors) // 39))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(np.ascontiguousarray(vectors, dtype=np.float32))
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
            kind = "ivf"
        out = cls(index, kind, nprobe)
        out.add(vectors, ids)
        return out

    @property
    def dim(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query; only ids in ``allowed`` when given."""
        k = min(k, len(self))
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self.kind == "ivf":
                # a filter can leave the nearest lists empty: probe them all so k results come back
                nlist = faiss.extract_index_ivf(self.index).nlist
                params = faiss.SearchParametersIVF(sel=sel, nprobe=nlist)
            else:
                params = faiss.SearchParameters(sel=sel)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        scores, ids = self.index.search(q, k, params=params) if params is not None else self.index.search(q, k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors for ``ids`` (to score candidates that came from keyword search)."""
        return self.index.reconstruct_batch(np.asarray(ids, np.int64))

    def save(self, path: Path) -> None:
        # Serialised in memory and written by Python: a full disk is then an OSError (ENOSPC) like any
        # other file's, not a RuntimeError from inside FAISS.
        data = faiss.serialize_index(self.index)
        with open(path, "wb") as fh:
            fh.write(memoryview(data))

    @classmethod
    def load(cls, path: Path, nprobe: int = 16) -> "VectorIndex":
        index = faiss.read_index(str(path))
        kind = "ivf" if isinstance(faiss.downcast_index(index), faiss.IndexIVF) else "flat"
        return cls(index, kind, nprobe)
