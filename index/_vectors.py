"""FAISS vector index with int64 ids: exact inner product up to a size, IVF beyond.

Both kinds support add, remove and search restricted to a set of ids (filters applied
inside the search, so ``k`` results come back after filtering).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

# One query at a time over at most a few hundred thousand vectors needs no thread pool, and
# idle OpenMP workers spinning after a search steal the cores the encoder needs next.
faiss.omp_set_num_threads(int(os.environ.get("CPC_FAISS_THREADS") or 1))


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
