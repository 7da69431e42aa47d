"""The second wild set (eval/data/wild2): a held-out check across corpora. It loads with the project's
loader, every answerable question has a sought record, every style tag is measured on enough
questions, every question is in the test half (nothing here may be tuned on), and none of its
records is one of the shipped corpus or of the first wild set (a cross-corpus check is only worth
something if the organisations are new)."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from eval._dataset import load_dataset

ROOT = Path(__file__).resolve().parents[1]
WILD2 = ROOT / "eval" / "data" / "wild2"
OTHER_CORPORA = [ROOT / "corpus" / "data" / "organisations.jsonl", ROOT / "eval" / "data" / "wild" / "corpus.jsonl"]
STYLES = {"keywords", "typo", "no_accents", "pt_br", "traditional", "cantonese", "pinyin", "mixed",
          "non_native_en", "pasted_profile", "named_org", "spanish", "french", "formal", "colloquial", "needs"}
MIN_PER_STYLE = 8
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(WILD2)


def test_loads_and_is_all_held_out(dataset):
    assert dataset.layout == "native"
    assert len(dataset.records) >= 60
    assert len(dataset.queries) >= 130
    assert {q.split for q in dataset.queries.values()} == {"test"}
    assert len(dataset.select("test").queries) == len(dataset.queries)


def test_every_answerable_query_has_a_sought_record_and_ooc_has_none(dataset):
    for qid, query in dataset.queries.items():
        grades = dataset.qrels.get(qid, {})
        if query.answerable:
            assert 2 in grades.values(), f"{qid} has no grade-2 record"
        else:
            assert not grades, f"out-of-corpus {qid} has judgements"
    assert sum(not q.answerable for q in dataset.queries.values()) >= 20


def test_every_record_is_sought_somewhere(dataset):
    sought = {doc for grades in dataset.qrels.values() for doc, grade in grades.items() if grade == 2}
    assert sought == {r.id for r in dataset.records}


def test_qrels_name_existing_queries_and_records_once():
    queries = {q["id"] for q in _lines(WILD2 / "queries.jsonl")}
    records = {r["id"] for r in _lines(WILD2 / "corpus.jsonl")}
    rows = (WILD2 / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "query_id\tdoc_id\tgrade"
    pairs = [tuple(row.split("\t")[:2]) for row in rows[1:]]
    assert len(pairs) == len(set(pairs)), "a (query, record) pair is judged twice"
    for row in rows[1:]:
        qid, did, grade = row.split("\t")
        assert qid in queries and did in records and grade in {"1", "2"}, row


def test_every_style_tag_is_used_enough_and_known():
    counts = collections.Counter()
    for query in _lines(WILD2 / "queries.jsonl"):
        assert set(query["style"]) <= STYLES, query["id"]
        assert query["type"] in {"general", "needs", "ooc"}, query["id"]
        if query["type"] == "needs":
            assert "needs" in query["style"], query["id"]
        counts.update(query["style"])
    for style in STYLES:
        assert counts[style] >= MIN_PER_STYLE, f"{style}: {counts[style]}"


def test_records_keep_source_labels_and_original_language_only():
    records = _lines(WILD2 / "corpus.jsonl")
    assert sum(r["kind"] == "company" for r in records) >= 15
    for record in records:
        assert record["sector_labels"] and record["sector_labels"] == record["sectors"], record["id"]
        assert record["sources"] and all(s.startswith(("http://", "https://")) for s in record["sources"]), record["id"]
        assert "i18n" not in record, record["id"]
        assert record["lang"] == {"PT": "pt", "CN": "zh"}[record["country"]], record["id"]
        assert record["id"].startswith({"PT": "pt-", "CN": "cn-"}[record["country"]]), record["id"]
        assert bool(_CJK.search(record["description"])) == (record["country"] == "CN"), record["id"]


def test_no_record_is_one_of_the_shipped_or_first_wild_corpus():
    def site(url):
        return url.split("//", 1)[-1].removeprefix("www.").rstrip("/").lower() if url else None

    others = [r for path in OTHER_CORPORA if path.is_file() for r in _lines(path)]
    assert others, "the shipped corpus is missing"
    ids = {r["id"] for r in others}
    names = {r["name"].casefold() for r in others}
    sites = {site(r.get("website")) for r in others} - {None}
    for record in _lines(WILD2 / "corpus.jsonl"):
        assert record["id"] not in ids, record["id"]
        assert record["name"].casefold() not in names, record["id"]
        assert site(record.get("website")) not in sites, record["id"]
