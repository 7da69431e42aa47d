"""Keyword search: BM25 over every language version of a record.

Chinese is cut with jieba; Latin text is accent-folded and lightly stemmed so "moldes",
"Molde" and "molds" meet.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Sequence

import numpy as np

from corpus import fold

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_jieba_lock = threading.Lock()
_jieba = None

STOPWORDS = set(
    """a o as os um uma uns umas de da do das dos e em no na nos nas para por com sem que se ao aos
    à às pelo pela pelos pelas ou mas como mais muito sua seu suas seus este esta estes estas
    isso isto é são foi ser ter tem há nao não eu nós nos queremos quero procuro procuramos
    precisamos gostaríamos gostaria encontrar empresa empresas
    the of and or for to in on at by with from as is are was be been an this that these those
    we our us i my you your it its their they them looking look find want need would like
    some any who which what where how can could please me show give
    的 了 和 与 及 在 是 我们 我 你 他们 有 想 找 寻找 需要 希望 一些 哪些 什么 请 吗 呢 与 或 等 为 对""".split()
)


def _cut_han(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                for word in _domain_words():
                    jieba.add_word(word)
                _jieba = jieba
    return [t for t in _jieba.lcut(text) if t.strip()]


def _domain_words() -> set[str]:
    """Chinese sector, place and kind terms, so jieba keeps them whole (葡萄牙 is not 葡萄)."""
    import json

    from corpus import DATA_DIR, default_taxonomy

    words: set[str] = set()
    for sector in default_taxonomy().sectors.values():
        words.update(t for t in sector.terms("zh") if _HAN_RUN.fullmatch(t))
    lex = json.loads((DATA_DIR / "lexicon.json").read_text(encoding="utf-8"))
    for group in ("countries", "kinds"):
        for item in lex[group].values():
            words.update(t for t in item["terms"] if _HAN_RUN.fullmatch(t))
    for item in lex["regions"] + lex["cities"]:
        words.update(t for t in item["terms"] if _HAN_RUN.fullmatch(t))
    return words


def _stem(word: str) -> str:
    """Tiny pt/en stemmer: plural and a few frequent endings, nothing clever."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, repl in (("coes", "cao"), ("oes", "ao"), ("aes", "ao"), ("ies", "y"), ("eis", "el"),
                         ("ais", "al"), ("ers", "er"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    return word


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    for m in _HAN_RUN.finditer(text):
        tokens += _latin_tokens(text[pos : m.start()])
        tokens += [t for t in _cut_han(m.group()) if t not in STOPWORDS]
        pos = m.end()
    tokens += _latin_tokens(text[pos:])
    return tokens


def _latin_tokens(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(fold(text)):
        if w in STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        out.append(_stem(w))
    return out


class BM25Index:
    """BM25 (Okapi) over tokenised documents, scored for a subset of documents at a time.

    rank_bm25 computes the statistics (idf with its epsilon floor); each term's contribution
    to each document is then stored once as a posting list, so a query costs a few numpy adds
    over the documents holding its terms rather than a Python pass over every document.
    """

    def __init__(self, docs: Sequence[list[str]], k1: float = 1.2, b: float = 0.75):
        from rank_bm25 import BM25Okapi

        self.size = len(docs)
        self._vocab: list[set[str]] = [set(d) for d in docs]
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if not docs:
            return
        bm25 = BM25Okapi([d or ["\u0000"] for d in docs], k1=k1, b=b)
        norm = k1 * (1 - b + b * np.asarray(bm25.doc_len, np.float64) / bm25.avgdl)
        rows: dict[str, list[int]] = {}
        values: dict[str, list[float]] = {}
        for row, freqs in enumerate(bm25.doc_freqs):
            for term, f in freqs.items():
                rows.setdefault(term, []).append(row)
                values.setdefault(term, []).append(bm25.idf.get(term, 0.0) * f * (k1 + 1) / (f + norm[row]))
        self._postings = {t: (np.asarray(rows[t], np.int64), np.asarray(values[t], np.float64)) for t in rows}

    def scores(self, query_tokens: list[str], doc_rows: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``doc_rows`` (all documents when None); a repeated query term counts again."""
        total = np.zeros(self.size, np.float64)
        for term in query_tokens:
            posting = self._postings.get(term)
            if posting is not None:
                total[posting[0]] += posting[1]
        out = total if doc_rows is None else total[np.asarray(doc_rows, np.int64)]
        return out.astype(np.float32)

    def matched(self, query_tokens: list[str], row: int) -> list[str]:
        vocab = self._vocab[row]
        return list(dict.fromkeys(t for t in query_tokens if t in vocab))
