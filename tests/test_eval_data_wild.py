"""The wild dev set (eval/data/wild): it loads with the project's loader, every answerable question
has a sought record, every style tag is measured on enough questions, and none of its records
is one of the shipped corpus (the set exists to measure search on data nobody tuned on)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from eval._dataset import SPLITS, load_dataset

ROOT = Path(__file__).resolve().parents[1]
WILD = ROOT / "eval" / "data" / "wild"
SHIPPED = ROOT / "corpus" / "data" / "organisations.jsonl"
STYLES = {"keywords", "typo", "no_accents", "pt_br", "traditional", "cantonese", "pinyin", "mixed",
          "non_native_en", "pasted_profile", "named_org", "spanish", "french", "formal", "colloquial", "needs"}
MIN_PER_STYLE = 8


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (WILD / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(WILD)


def test_loads_with_both_halves(dataset):
    assert dataset.layout == "native"
    assert len(dataset.records) >= 70
    assert len(dataset.queries) >= 160
    for split in SPLITS:
        half = dataset.select(split)
        assert len(half.queries) >= 0.4 * len(dataset.queries)


def test_every_answerable_query_has_a_sought_record_and_ooc_has_none(dataset):
    for qid, query in dataset.queries.items():
        grades = dataset.qrels.get(qid, {})
        if query.answerable:
            assert 2 in grades.values(), f"{qid} has no grade-2 record"
        else:
            assert not grades, f"out-of-corpus {qid} has judgements"
    assert sum(not q.answerable for q in dataset.queries.values()) >= 25


def test_qrels_name_existing_queries_and_records():
    queries = {q["id"] for q in _lines("queries.jsonl")}
    records = {r["id"] for r in _lines("corpus.jsonl")}
    rows = (WILD / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "query_id\tdoc_id\tgrade"
    for row in rows[1:]:
        qid, did, grade = row.split("\t")
        assert qid in queries and did in records and grade in {"1", "2"}, row


def test_every_style_tag_is_used_enough_and_known():
    counts = collections.Counter()
    for query in _lines("queries.jsonl"):
        assert set(query["style"]) <= STYLES, query["id"]
        assert query["type"] in {"general", "needs", "ooc"}
        counts.update(query["style"])
    for style in STYLES:
        assert counts[style] >= MIN_PER_STYLE, f"{style}: {counts[style]}"


def test_records_keep_source_labels_and_original_language_only():
    for record in _lines("corpus.jsonl"):
        assert record["sector_labels"] and record["sources"], record["id"]
        assert "i18n" not in record, record["id"]
        assert record["lang"] == {"PT": "pt", "CN": "zh"}[record["country"]], record["id"]
        assert record["id"].startswith({"PT": "pt-", "CN": "cn-"}[record["country"]])


def test_no_record_duplicates_the_shipped_corpus():
    shipped = [json.loads(line) for line in SHIPPED.read_text(encoding="utf-8").splitlines() if line.strip()]

    def site(url):
        return url.split("//", 1)[-1].removeprefix("www.").rstrip("/").lower() if url else None

    ids = {r["id"] for r in shipped}
    names = {r["name"].casefold() for r in shipped}
    sites = {site(r.get("website")) for r in shipped} - {None}
    for record in _lines("corpus.jsonl"):
        assert record["id"] not in ids, record["id"]
        assert record["name"].casefold() not in names, record["id"]
        assert site(record.get("website")) not in sites, record["id"]
