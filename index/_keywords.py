"""Keyword search: BM25 over every language version of a record.

Chinese is cut with jieba; Latin text is accent-folded and lightly stemmed so "moldes",
"Molde" and "molds" meet.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from itertools import compress
from pathlib import Path
from typing import Sequence

import numpy as np

from corpus import fold

from ._npy import load as load_npy

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


POSTINGS_CHUNK = 1 << 20  # postings whose scores are worked out at once
EMPTY_DOC = "\u0000"  # the one token of a record with no words, so every record has a length


def _save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` through a Python file, so a full disk is an OSError like any other write's."""
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


SEPARATORS = ("\x1f", "\x1e", "\x00", "\n", "\ufdd0")  # the first no value holds separates them


def _save_strings(path: Path, values: Sequence[str]) -> None:
    """Strings as one UTF-8 file, split by a character none of them holds: read back with one
    ``split`` (``_load_strings``), where JSON held the GIL for tens of ms at 100k strings."""
    for sep in SEPARATORS:
        text = sep.join(values)
        if text.count(sep) == max(len(values) - 1, 0):
            break
    else:
        raise ValueError(f"{path.name}: every separator occurs in the values")
    with open(path, "wb") as fh:
        fh.write(len(values).to_bytes(8, "little") + ord(sep).to_bytes(4, "little"))
        fh.write(text.encode("utf-8"))


def _load_strings(path: Path) -> list[str]:
    data = path.read_bytes()
    count, sep = int.from_bytes(data[:8], "little"), chr(int.from_bytes(data[8:12], "little"))
    values = data[12:].decode("utf-8").split(sep) if count else []
    if len(values) != count:
        raise ValueError(f"{path}: {len(values)} strings where {count} were written")
    return values


def _gather(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR rows ``rows`` of (indptr, values), as a new (indptr, values)."""
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    out_ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    if not out_ptr[-1]:
        return out_ptr, values[:0].copy()
    # position i of the output reads starts[row of i] + (i - out_ptr[row of i])
    owner = np.repeat(np.arange(len(rows)), lengths)
    take = starts[owner] + (np.arange(out_ptr[-1]) - out_ptr[owner])
    return out_ptr, np.asarray(values)[take]


def _runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
    """The segments of ``rows`` (a row of an old table each, -1 for a new row) in order, as
    (start, stop, old start): rows ``start:stop`` are the old rows ``old start:old start + stop -
    start``, or one new row (``old start`` -1). Rows kept in order make at most one run more than
    there are new or dropped rows, so a merge copies blocks, not rows."""
    rows = np.asarray(rows, np.int64)
    if not len(rows):
        return []
    # a segment starts where a row does not continue the one before it (and at every new row)
    starts = np.flatnonzero(np.concatenate([[True], (rows[1:] != rows[:-1] + 1) | (rows[1:] < 0) | (rows[:-1] < 0)]))
    stops = np.append(starts[1:], len(rows))
    return list(zip(starts.tolist(), stops.tolist(), rows[starts].tolist()))


def _merged_indptr(indptr: np.ndarray, rows: np.ndarray, new: Sequence[Sequence]) -> np.ndarray:
    """The CSR offsets of rows that are old rows ``rows[i]`` (of ``indptr``) or, for -1, the next of ``new``."""
    rows = np.asarray(rows, np.int64)
    is_new = rows < 0
    if int(is_new.sum()) != len(new):
        raise ValueError(f"{int(is_new.sum())} new rows for {len(new)} new values")
    lengths = np.zeros(len(rows), np.int64)
    kept = rows[~is_new]
    lengths[~is_new] = np.asarray(indptr)[kept + 1] - np.asarray(indptr)[kept]
    lengths[is_new] = [len(r) for r in new]
    out_ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    return out_ptr


def _merge_rows(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray, new: Sequence[Sequence[int]],
                dtype) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows: row ``i`` is the old (indptr, values) row ``rows[i]``, or where that is -1, the
    next of ``new``; old rows are copied a run at a time (``_runs``)."""
    out_ptr = _merged_indptr(indptr, rows, new)
    out = np.empty(int(out_ptr[-1]), dtype)
    added = iter(new)
    for start, stop, old_start in _runs(rows):
        lo, hi = int(out_ptr[start]), int(out_ptr[stop])
        if old_start < 0:
            out[lo:hi] = next(added)
        else:
            first = int(indptr[old_start])
            out[lo:hi] = values[first : first + hi - lo]
    return out_ptr, out


class KeywordIndex:
    """BM25 (Okapi) over tokenised records, held as arrays and saved with the index generation.

    Each record keeps its distinct term ids and their counts (``doc_*``, in the order the terms
    first appear in it); the statistics are rank_bm25's (idf with its epsilon floor, the same
    sums in the same order, so scores are identical to it), and each term's contribution to each
    record is stored once in a term -> records posting list (``post_*``, CSR). A query costs a
    few numpy adds over the records holding its terms; an update re-tokenises only the changed
    records and recomputes the statistics from these arrays.
    """

    FILES = ("doc-indptr", "doc-terms", "doc-counts", "post-indptr", "post-rows", "post-values")

    def __init__(self, terms: list[str], doc_indptr: np.ndarray, doc_terms: np.ndarray, doc_counts: np.ndarray,
                 k1: float = 1.2, b: float = 0.75, postings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        self.terms = terms
        self.term_ids = dict(zip(terms, range(len(terms))))  # one C call: a reload holds the GIL in short steps
        self.doc_indptr, self.doc_terms, self.doc_counts = doc_indptr, doc_terms, doc_counts
        self.k1, self.b = k1, b
        self.size = len(doc_indptr) - 1
        self.post_indptr, self.post_rows, self.post_values = postings or self._postings()

    # -- building -----------------------------------------------------------------------
    @classmethod
    def build(cls, docs: Sequence[list[str]], k1: float = 1.2, b: float = 0.75) -> "KeywordIndex":
        return cls.merge(None, np.full(len(docs), -1, np.int64), docs, k1, b)

    @classmethod
    def merge(cls, old: "KeywordIndex | None", rows: np.ndarray, docs: Sequence[list[str]], k1: float = 1.2,
              b: float = 0.75) -> "KeywordIndex":
        """A new index whose record ``i`` is ``old``'s record ``rows[i]``, or, where ``rows[i]`` is
        -1, the next token list of ``docs``: only ``docs`` are counted in Python; the old records'
        arrays are copied a run of consecutive rows at a time (an ingest of a few records into 100k
        made 100k little arrays here)."""
        rows = np.asarray(rows, np.int64)
        terms = list(old.terms) if old is not None else []
        term_ids = dict(old.term_ids) if old is not None else {}
        new_terms: list[list[int]] = []
        new_counts: list[list[int]] = []
        for tokens in docs:
            freqs: dict[str, int] = {}
            for token in tokens or [EMPTY_DOC]:  # rank_bm25's way: counts in order of first appearance
                freqs[token] = freqs.get(token, 0) + 1
            ids = []
            for token in freqs:
                tid = term_ids.get(token)
                if tid is None:
                    tid = term_ids[token] = len(terms)
                    terms.append(token)
                ids.append(tid)
            new_terms.append(ids)
            new_counts.append(list(freqs.values()))
        old_ptr = old.doc_indptr if old is not None else np.zeros(1, np.int64)
        indptr, doc_terms = _merge_rows(old_ptr, old.doc_terms if old is not None else np.zeros(0, np.int32),
                                        rows, new_terms, np.int32)
        _, doc_counts = _merge_rows(old_ptr, old.doc_counts if old is not None else np.zeros(0, np.int32),
                                    rows, new_counts, np.int32)
        used = np.zeros(len(terms), bool)
        used[doc_terms] = True
        if not used.all():  # terms only deleted or replaced records had: renumber the rest
            remap = (np.cumsum(used, dtype=np.int64) - 1).astype(np.int32)
            terms = list(compress(terms, used.tolist()))
            doc_terms = remap[doc_terms]
        return cls(terms, indptr, doc_terms, doc_counts, k1, b)

    def _postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_terms = len(self.terms)
        if self.size == 0:
            return np.zeros(n_terms + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64)
        doc_terms = np.asarray(self.doc_terms)
        order = np.argsort(doc_terms, kind="stable")  # by term, records ascending within it
        df = np.bincount(doc_terms, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(df, out=indptr[1:])
        summed = np.zeros(len(self.doc_counts) + 1, np.int64)
        np.cumsum(self.doc_counts, out=summed[1:])
        doc_indptr = np.asarray(self.doc_indptr)
        doc_len = summed[doc_indptr[1:]] - summed[doc_indptr[:-1]]  # tokens per record
        total = int(summed[-1])
        del summed
        # rank_bm25 sums the idfs in the order terms first appear in the corpus: the same order here
        # (a term's first posting is its first appearance: the order above is stable)
        present = np.flatnonzero(df)
        in_order = doc_terms[np.sort(order[indptr[present]])]
        idf = np.zeros(n_terms, np.float64)
        idf_sum = 0
        negative = []
        for tid, freq in zip(in_order.tolist(), df[in_order].tolist()):
            value = math.log(self.size - freq + 0.5) - math.log(freq + 0.5)
            idf[tid] = value
            idf_sum += value
            if value < 0:
                negative.append(tid)
        eps = 0.25 * (idf_sum / n_terms)  # rank_bm25's epsilon floor for terms in most records
        idf[negative] = eps
        avgdl = total / self.size
        norm = self.k1 * (1 - self.b + self.b * doc_len.astype(np.float64) / avgdl)
        # each posting's idf * count * (k1 + 1) / (count + norm): the same operations as one
        # expression over all records, made a chunk of postings at a time (a third of the memory)
        row_of = np.repeat(np.arange(self.size, dtype=np.int32), np.diff(doc_indptr))
        post_rows = np.empty(len(order), np.int32)
        values = np.empty(len(order), np.float64)
        for lo in range(0, len(order), POSTINGS_CHUNK):
            at = order[lo : lo + POSTINGS_CHUNK]
            rows = post_rows[lo : lo + len(at)]
            np.take(row_of, at, out=rows)
            counts = np.asarray(self.doc_counts)[at].astype(np.float64)
            chunk = idf[doc_terms[at]]
            chunk *= counts
            chunk *= self.k1 + 1
            counts += norm[rows]
            chunk /= counts
            values[lo : lo + len(at)] = chunk
        return indptr, post_rows, values

    # -- persistence --------------------------------------------------------------------
    def save(self, folder: Path, prefix: str = "bm25") -> None:
        arrays = (self.doc_indptr, self.doc_terms, self.doc_counts, self.post_indptr, self.post_rows, self.post_values)
        for name, array in zip(self.FILES, arrays):
            _save_array(folder / f"{prefix}-{name}.npy", array)
        _save_strings(folder / f"{prefix}-terms.txt", self.terms)
        (folder / f"{prefix}.json").write_text(json.dumps({"k1": self.k1, "b": self.b}), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, prefix: str = "bm25") -> "KeywordIndex":
        """Arrays memory-mapped: only the postings a query touches are read from disk."""
        meta = json.loads((folder / f"{prefix}.json").read_text(encoding="utf-8"))
        arrays = [load_npy(folder / f"{prefix}-{name}.npy", mmap_mode="r") for name in cls.FILES]
        return cls(_load_strings(folder / f"{prefix}-terms.txt"), *arrays[:3], meta["k1"], meta["b"], postings=tuple(arrays[3:]))  # type: ignore[arg-type]

    # -- queries ------------------------------------------------------------------------
    def scores(self, query_tokens: list[str], doc_rows: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``doc_rows`` (all records when None); a repeated query term counts again."""
        total = np.zeros(self.size, np.float64)
        for term in query_tokens:
            tid = self.term_ids.get(term)
            if tid is not None:
                lo, hi = self.post_indptr[tid], self.post_indptr[tid + 1]
                total[self.post_rows[lo:hi]] += self.post_values[lo:hi]
        out = total if doc_rows is None else total[np.asarray(doc_rows, np.int64)]
        return out.astype(np.float32)

    def matched(self, query_tokens: list[str], row: int) -> list[str]:
        """The query terms record ``row`` holds, in query order, once each."""
        held = set(self.doc_terms[self.doc_indptr[row] : self.doc_indptr[row + 1]].tolist())
        return list(dict.fromkeys(t for t in query_tokens if self.term_ids.get(t, -1) in held))
