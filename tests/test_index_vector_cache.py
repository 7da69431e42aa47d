"""Vectors of fixed texts (calibration samples, example messages) computed once per model: in the
process, on disk, and never reused for another model or other weights under the same id."""

import numpy as np

from index import _vector_cache
from index._vector_cache import PROBE, fixed_vectors


class Counting:
    """The real encoder under a chosen model id, counting the texts it is asked to encode."""

    def __init__(self, encoder, model_id=None, shift=0.0):
        self.inner, self.texts, self.shift = encoder, [], shift
        if model_id is not None:
            self.model_id = model_id

    def encode(self, texts, kind="query"):
        self.texts += list(texts)
        vectors = np.asarray(self.inner.encode(texts, kind), np.float32)
        return vectors + self.shift  # other weights under the same id: other vectors


TEXTS = ["fornecedores de cortiça", "模具制造商", "battery materials"]


def fresh_process(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_vector_cache, "_SETS", type(_vector_cache._SETS)())
    monkeypatch.setattr(_vector_cache, "_FINGERPRINTS", {})


def test_vectors_are_the_encoders_and_kept_on_disk_for_the_next_process(encoder, tmp_path, monkeypatch):
    fresh_process(monkeypatch, tmp_path)
    first = Counting(encoder, "test-model")
    vectors = fixed_vectors(first, TEXTS)
    assert first.texts == [PROBE, *TEXTS] and len(list(tmp_path.rglob("*.npy"))) == 1
    assert np.allclose(vectors, encoder.encode(TEXTS, "query"), atol=1e-5)
    assert fixed_vectors(first, TEXTS) is vectors and first.texts == [PROBE, *TEXTS]
    fresh_process(monkeypatch, tmp_path)  # a new process: the disk cache answers after one probe
    second = Counting(encoder, "test-model")
    assert np.array_equal(fixed_vectors(second, TEXTS), vectors) and second.texts == [PROBE]
    passages = fixed_vectors(second, TEXTS, "passage")  # another kind is another set
    assert second.texts == [PROBE, *TEXTS] and not np.array_equal(passages, vectors)


def test_another_model_or_other_weights_never_reuse_vectors(encoder, tmp_path, monkeypatch):
    fresh_process(monkeypatch, tmp_path)
    fixed_vectors(Counting(encoder, "test-model"), TEXTS)
    other_id = Counting(encoder, "other-model")
    fixed_vectors(other_id, TEXTS)
    assert other_id.texts == [PROBE, *TEXTS]
    fresh_process(monkeypatch, tmp_path)
    changed = Counting(encoder, "test-model", shift=0.01)
    got = fixed_vectors(changed, TEXTS)
    assert changed.texts == [PROBE, *TEXTS] and np.allclose(got, np.asarray(encoder.encode(TEXTS, "query")) + 0.01, atol=1e-5)


def test_without_a_model_id_only_the_process_keeps_them(encoder, tmp_path, monkeypatch):
    fresh_process(monkeypatch, tmp_path)
    anonymous = Counting(encoder)
    vectors = fixed_vectors(anonymous, TEXTS)
    assert fixed_vectors(anonymous, TEXTS) is vectors and anonymous.texts == TEXTS
    assert not list(tmp_path.rglob("*.npy"))


def test_an_unreadable_cache_file_is_encoded_again(encoder, tmp_path, monkeypatch):
    fresh_process(monkeypatch, tmp_path)
    vectors = fixed_vectors(Counting(encoder, "test-model"), TEXTS)
    (cached,) = tmp_path.rglob("*.npy")
    cached.write_bytes(b"half a file")
    fresh_process(monkeypatch, tmp_path)
    again = Counting(encoder, "test-model")
    assert np.array_equal(fixed_vectors(again, TEXTS), vectors) and again.texts == [PROBE, *TEXTS]
