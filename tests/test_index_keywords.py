"""Keyword search as arrays: the same BM25 scores as rank_bm25's statistics computed in Python,
saved and loaded, and updated by re-tokenising only the changed records."""

from __future__ import annotations

import random

import numpy as np
import pytest

from index import tokenize
from index._engine import SearchEngine
from index._keywords import KeywordIndex


class OracleBM25:
    """The keyword index as it was before the array format: rank_bm25 computes the statistics,
    each term's contribution to each document kept in a dict of posting lists."""

    def __init__(self, docs, k1=1.2, b=0.75):
        from rank_bm25 import BM25Okapi

        self.size = len(docs)
        self.vocab = [set(d) for d in docs]
        bm25 = BM25Okapi([d or ["\u0000"] for d in docs], k1=k1, b=b)
        norm = k1 * (1 - b + b * np.asarray(bm25.doc_len, np.float64) / bm25.avgdl)
        rows, values = {}, {}
        for row, freqs in enumerate(bm25.doc_freqs):
            for term, f in freqs.items():
                rows.setdefault(term, []).append(row)
                values.setdefault(term, []).append(bm25.idf.get(term, 0.0) * f * (k1 + 1) / (f + norm[row]))
        self.postings = {t: (np.asarray(rows[t], np.int64), np.asarray(values[t], np.float64)) for t in rows}

    def scores(self, query_tokens, doc_rows=None):
        total = np.zeros(self.size, np.float64)
        for term in query_tokens:
            posting = self.postings.get(term)
            if posting is not None:
                total[posting[0]] += posting[1]
        out = total if doc_rows is None else total[np.asarray(doc_rows, np.int64)]
        return out.astype(np.float32)

    def matched(self, query_tokens, row):
        return list(dict.fromkeys(t for t in query_tokens if t in self.vocab[row]))


@pytest.fixture(scope="module")
def docs(shipped_records):
    """The shipped corpus tokenised as the engine does, in id order, with an empty record and a
    one-word one (a term in every record gets rank_bm25's epsilon idf)."""
    records = sorted(shipped_records, key=lambda r: r.id)
    return [SearchEngine._keyword_text(r) for r in records] + [[], ["moldes"]]


def random_queries(docs, n=200, seed=7):
    rng = random.Random(seed)
    vocab = sorted({t for d in docs for t in d})
    queries = [rng.sample(vocab, rng.randint(1, 6)) for _ in range(n)]
    queries += [tokenize("moldes para injeção de plásticos"), tokenize("葡萄酒 出口 中国"), ["nosuchterm"], []]
    queries.append(queries[0] + queries[0][:1])  # a repeated term counts again
    return queries


def assert_same_as_oracle(index: KeywordIndex, oracle: OracleBM25, docs) -> None:
    rows = np.arange(0, len(docs), 3)
    for q in random_queries(docs):
        assert np.array_equal(index.scores(q), oracle.scores(q))  # bit for bit, not approximately
        assert np.array_equal(index.scores(q, rows), oracle.scores(q, rows))
    q = tokenize("cortiça moldes vinho 葡萄酒 robots")
    for row in range(len(docs)):
        assert index.matched(q, row) == oracle.matched(q, row)


def test_scores_are_identical_to_rank_bm25s(docs):
    assert_same_as_oracle(KeywordIndex.build(docs), OracleBM25(docs), docs)


def test_saved_and_loaded_memory_mapped(docs, tmp_path):
    built = KeywordIndex.build(docs)
    built.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path)
    assert isinstance(loaded.post_values, np.memmap) and loaded.terms == built.terms
    assert_same_as_oracle(loaded, OracleBM25(docs), docs)


def test_an_update_tokenises_only_the_changed_records_and_scores_as_a_fresh_build(docs, tmp_path):
    built = KeywordIndex.build(docs)
    built.save(tmp_path)
    old = KeywordIndex.load(tmp_path)
    rng = random.Random(3)
    # drop a third of the records, replace a few, add some new ones with words no record had
    kept = sorted(rng.sample(range(len(docs)), 2 * len(docs) // 3))
    replaced = set(kept[:5])
    new_docs = [["brandnewterm", "moldes", "moldes"], tokenize("fábrica de bicicletas elétricas em Águeda"), []]
    sources = [docs[r][::-1] + ["extra"] if r in replaced else r for r in kept]
    sources[10:10] = new_docs[:1]  # new records between kept ones too, not only at the end
    sources += new_docs[1:]
    rows = np.array([s if isinstance(s, int) else -1 for s in sources], np.int64)
    merged = KeywordIndex.merge(old, rows, [s for s in sources if isinstance(s, list)])
    expected_docs = [s if isinstance(s, list) else docs[s] for s in sources]
    fresh = KeywordIndex.build(expected_docs)
    assert merged.size == len(expected_docs) and sorted(merged.terms) == sorted(fresh.terms)
    for row in range(merged.size):  # each record's terms and counts, in the order they appear in it
        lo, hi, flo, fhi = *merged.doc_indptr[row : row + 2], *fresh.doc_indptr[row : row + 2]
        assert [merged.terms[t] for t in merged.doc_terms[lo:hi]] == [fresh.terms[t] for t in fresh.doc_terms[flo:fhi]]
        assert merged.doc_counts[lo:hi].tolist() == fresh.doc_counts[flo:fhi].tolist()
    assert set(merged.terms) == {t for d in expected_docs for t in (d or ["\u0000"])}  # gone terms are dropped
    assert_same_as_oracle(merged, OracleBM25(expected_docs), expected_docs)


def test_an_empty_index_scores_nothing():
    index = KeywordIndex.build([])
    assert index.size == 0 and index.scores(["moldes"]).shape == (0,)


def test_rows_merged_a_run_at_a_time_are_the_rows_gathered_one_by_one():
    """New rows before old row 0, between runs, at the end; old rows out of order and repeated."""
    from index._keywords import _gather, _merge_rows, _runs

    indptr = np.array([0, 2, 2, 5, 6, 9], np.int64)
    values = np.arange(9, dtype=np.int32) * 10
    rows = np.array([-1, 0, 1, 2, -1, -1, 4, 3, 3, -1], np.int64)
    new = [[7], [], [8, 8], [9, 9, 9]]
    assert _runs(rows) == [(0, 1, -1), (1, 4, 0), (4, 5, -1), (5, 6, -1), (6, 7, 4), (7, 8, 3), (8, 9, 3), (9, 10, -1)]
    ptr, merged = _merge_rows(indptr, values, rows, new, np.int64)
    added = iter(new)
    expected = [next(added) if r < 0 else values[indptr[r] : indptr[r + 1]].tolist() for r in rows.tolist()]
    assert [merged[ptr[i] : ptr[i + 1]].tolist() for i in range(len(rows))] == expected
    kept = rows[rows >= 0]
    assert np.concatenate([merged[ptr[i] : ptr[i + 1]] for i in np.flatnonzero(rows >= 0)]).tolist() == \
        _gather(indptr, values, kept)[1].tolist()
    with pytest.raises(ValueError):
        _merge_rows(indptr, values, rows, new[:-1], np.int64)  # a new row without its values
