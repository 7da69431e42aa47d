"""Per-language mean removal for multilingual embeddings.

E5-style models put each language in its own region of the space, so a Chinese query
prefers Chinese documents. Subtracting the mean vector of the text's language (documents:
the corpus mean per language; queries: the mean of a sample of queries per language) and
re-normalising removes most of that bias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from corpus import jsonl_lines

from ._npy import load_npz

QUERY_SAMPLES = Path(__file__).parent / "data" / "query_samples.jsonl"
_ANY = "*"  # the mean over all languages: used for a language with no mean of its own


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


PRIOR = 2.0  # pseudo-count pulling a small language's mean toward the overall mean


def language_means(vectors: np.ndarray, langs: list[str]) -> dict[str, np.ndarray]:
    """Mean vector per language, shrunk toward the overall mean by ``PRIOR`` pseudo-counts.

    Without the shrinkage a language with one document would subtract that document from
    itself and leave nothing; with dozens of documents the effect is a few percent.
    """
    if not len(vectors):
        return {}
    overall = vectors.mean(axis=0)
    langs_arr = np.array(langs)
    out = {_ANY: overall}
    for lang in sorted(set(langs)):
        group = vectors[langs_arr == lang]
        out[lang] = (group.sum(axis=0) + PRIOR * overall) / (len(group) + PRIOR)
    return {k: v.astype(np.float32) for k, v in out.items()}


def load_query_samples(path: Path | str = QUERY_SAMPLES) -> list[tuple[str, str]]:
    rows = []
    for line in jsonl_lines(Path(path).read_text(encoding="utf-8")):
        if line.strip():
            obj = json.loads(line)
            rows.append((obj["lang"], obj["text"]))
    return rows


@dataclass
class Calibration:
    doc_means: dict[str, np.ndarray] = field(default_factory=dict)
    query_means: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        doc_vectors: np.ndarray,
        doc_langs: list[str],
        encode_queries: Callable[[list[str]], np.ndarray],
        query_samples: Iterable[tuple[str, str]] | None = None,
    ) -> "Calibration":
        samples = list(query_samples if query_samples is not None else load_query_samples())
        q_vecs = encode_queries([text for _, text in samples]) if samples else np.zeros((0, doc_vectors.shape[1]), np.float32)
        return cls(language_means(doc_vectors, doc_langs), language_means(q_vecs, [lang for lang, _ in samples]))

    def _mean(self, means: dict[str, np.ndarray], lang: str) -> np.ndarray | None:
        return means.get(lang, means.get(_ANY))

    def apply_docs(self, vectors: np.ndarray, langs: list[str]) -> np.ndarray:
        out = vectors.copy()
        for i, lang in enumerate(langs):
            mu = self._mean(self.doc_means, lang)
            if mu is not None:
                out[i] -= mu
        return _normalise(out).astype(np.float32)

    def apply_query(self, vector: np.ndarray, lang: str) -> np.ndarray:
        mu = self._mean(self.query_means, lang)
        return _normalise(vector - mu).astype(np.float32) if mu is not None else vector

    # -- persistence (inside an index generation) ---------------------------------------
    def save(self, path: Path) -> None:
        arrays = {f"doc:{k}": v for k, v in self.doc_means.items()}
        arrays.update({f"query:{k}": v for k, v in self.query_means.items()})
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        data = load_npz(path)
        doc = {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith("doc:")}
        query = {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith("query:")}
        return cls(doc, query)
