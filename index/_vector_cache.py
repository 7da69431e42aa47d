"""Vectors of fixed texts, computed once per model: the calibration query samples every index build
encodes, and the example messages the assistant reads by meaning.

Why: those texts do not change between builds or starts, and encoding them is most of the work of
building a small index (450 calibration queries, ~85% of a 6-record build) and of starting an
assistant. Their vectors depend only on the model and the texts, so they are kept for the process
and on disk (``$XDG_CACHE_HOME/cpc/vectors``), keyed by the model id, a fingerprint of what the model
actually returns (one probe text's vector: other weights under the same id never reuse old
vectors), the kind (query/passage) and the texts. An encoder without a ``model_id`` is cached for
the process only. The disk cache is best effort: a file that cannot be read or written is ignored.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ._npy import load as load_npy

PROBE = "query vector cache probe: fornecedores de cortiça 软木供应商"
_KEEP = 64  # text sets kept in the process (an edited FAQ is a new set)
_SETS: OrderedDict[tuple, np.ndarray] = OrderedDict()
_FINGERPRINTS: dict[tuple[int, str], str] = {}
_LOCK = threading.RLock()


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cpc" / "vectors"


def _fingerprint(encoder, model_id: str) -> str:
    """What this encoder returns for a fixed text, rounded (so thread counts that change the last
    bits still agree), as a short digest."""
    key = (id(encoder), model_id)
    found = _FINGERPRINTS.get(key)
    if found is None:
        probe = np.asarray(encoder.encode([PROBE], "query"), dtype=np.float32)[0]
        found = _FINGERPRINTS[key] = hashlib.sha256(np.round(probe, 3).tobytes()).hexdigest()[:16]
    return found


def fixed_vectors(encoder, texts: Sequence[str], kind: str = "query",
                  encode: Callable[[list[str]], np.ndarray] | None = None) -> np.ndarray:
    """The vectors of ``texts`` (one row each), computed by ``encode`` (default: the encoder's own
    ``encode(texts, kind)``) the first time this model sees them, else from the process or the disk.
    The same texts give the same array object within a process."""
    texts = list(texts)
    digest = hashlib.sha256("\x00".join([kind, *texts]).encode("utf-8")).hexdigest()
    model_id = getattr(encoder, "model_id", None)
    with _LOCK:
        if isinstance(model_id, str):
            key: tuple = ("model", model_id, _fingerprint(encoder, model_id), digest)
            path: Path | None = cache_folder() / (hashlib.sha256("\n".join(key).encode()).hexdigest()[:32] + ".npy")
        else:
            key, path = ("object", id(encoder), digest), None
        found = _SETS.get(key)
        if found is not None:
            _SETS.move_to_end(key)
            return found
        vectors = None
        if path is not None:
            try:
                vectors = load_npy(path)
                if vectors.ndim != 2 or vectors.shape[0] != len(texts):
                    vectors = None
            except (OSError, ValueError, EOFError):
                vectors = None
        if vectors is None:
            vectors = np.asarray(encode(texts) if encode is not None else encoder.encode(texts, kind), dtype=np.float32)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
                    np.save(tmp, vectors)
                    os.replace(tmp, path)
                except OSError:
                    pass
        _SETS[key] = vectors
        while len(_SETS) > _KEEP:
            _SETS.popitem(last=False)
        return vectors
