"""The wild evaluation sets (every eval/data/wild* folder with a corpus, found by glob, so a new
set is checked as soon as it lands): each loads with the project's loader, every answerable question
has a sought record and every record is sought, every style tag is known and measured on enough
questions, records keep their source labels and original language only, and none of a set's records
is one of the shipped corpus or of another wild set (the sets exist to measure search on
organisations nobody tuned on).

Split rules (the sets' READMEs): ``wild`` and ``wild4`` have a tune and a test half (they are
used to fit and cross-validate the relevance judgement); every other wild set (``wild2``,
``wild3``, ...) is a held-out check with every question in the test half. Records must not repeat
the real profiles of ``eval/data/posts`` either."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from eval._dataset import SPLITS, load_dataset

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "corpus" / "data" / "organisations.jsonl"
PROFILES = ROOT / "eval" / "data" / "posts" / "profiles.jsonl"
SETS = sorted(p for p in (ROOT / "eval" / "data").glob("wild*") if (p / "corpus.jsonl").is_file())
TUNED = {"wild", "wild4"}  # sets with a tune half; the others are held out, all test
# (records, questions, out-of-corpus questions) at the least; DEFAULT_MINIMUM for a set not named here
MINIMUM = {"wild": (70, 160, 25), "wild2": (60, 130, 20), "wild4": (60, 200, 30)}
DEFAULT_MINIMUM = (40, 100, 15)
STYLES = {"keywords", "typo", "no_accents", "pt_br", "traditional", "cantonese", "pinyin", "mixed",
          "non_native_en", "pasted_profile", "named_org", "spanish", "french", "formal", "colloquial", "needs"}
MIN_PER_STYLE = 8
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _site(url):
    return url.split("//", 1)[-1].removeprefix("www.").rstrip("/").lower() if url else None


def test_the_known_sets_are_found():
    assert {"wild", "wild2"} <= {p.name for p in SETS}


@pytest.fixture(scope="module", params=SETS, ids=[p.name for p in SETS])
def folder(request):
    return request.param


@pytest.fixture(scope="module")
def dataset(folder):
    return load_dataset(folder)


def test_loads_with_its_split_rule(folder, dataset):
    records, questions, _ = MINIMUM.get(folder.name, DEFAULT_MINIMUM)
    assert dataset.layout == "native"
    assert len(dataset.records) >= records and len(dataset.queries) >= questions
    if folder.name in TUNED:
        for split in SPLITS:
            assert len(dataset.select(split).queries) >= 0.4 * len(dataset.queries), split
    else:  # held out: nothing here may be tuned on
        assert {q.split for q in dataset.queries.values()} == {"test"}
        assert len(dataset.select("test").queries) == len(dataset.queries)


def test_every_answerable_query_has_a_sought_record_and_ooc_has_none(folder, dataset):
    for qid, query in dataset.queries.items():
        grades = dataset.qrels.get(qid, {})
        if query.answerable:
            assert 2 in grades.values(), f"{qid} has no grade-2 record"
        else:
            assert not grades, f"out-of-corpus {qid} has judgements"
    assert sum(not q.answerable for q in dataset.queries.values()) >= MINIMUM.get(folder.name, DEFAULT_MINIMUM)[2]


def test_every_record_is_sought_somewhere(dataset):
    sought = {doc for grades in dataset.qrels.values() for doc, grade in grades.items() if grade == 2}
    assert sought == {r.id for r in dataset.records}


def test_record_and_question_ids_are_unique(folder):
    for name in ("corpus.jsonl", "queries.jsonl"):
        ids = [row["id"] for row in _lines(folder / name)]
        assert len(ids) == len(set(ids)), f"{folder.name}/{name}: {[i for i in ids if ids.count(i) > 1]}"


def test_qrels_name_existing_queries_and_records_once(folder):
    queries = {q["id"] for q in _lines(folder / "queries.jsonl")}
    records = {r["id"] for r in _lines(folder / "corpus.jsonl")}
    rows = (folder / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "query_id\tdoc_id\tgrade"
    pairs = [tuple(row.split("\t")[:2]) for row in rows[1:]]
    assert len(pairs) == len(set(pairs)), "a (query, record) pair is judged twice"
    for row in rows[1:]:
        qid, did, grade = row.split("\t")
        assert qid in queries and did in records and grade in {"1", "2"}, row


def test_every_style_tag_is_used_enough_and_known(folder):
    counts = collections.Counter()
    for query in _lines(folder / "queries.jsonl"):
        assert set(query["style"]) <= STYLES, query["id"]
        assert query["type"] in {"general", "needs", "ooc"}, query["id"]
        if query["type"] == "needs":
            assert "needs" in query["style"], query["id"]
        counts.update(query["style"])
    for style in STYLES:
        assert counts[style] >= MIN_PER_STYLE, f"{style}: {counts[style]}"


def test_records_keep_source_labels_and_original_language_only(folder):
    records = _lines(folder / "corpus.jsonl")
    assert sum(r["kind"] == "company" for r in records) >= 15
    for record in records:
        assert record["sector_labels"] and record["sector_labels"] == record["sectors"], record["id"]
        assert record["sources"] and all(s.startswith(("http://", "https://")) for s in record["sources"]), record["id"]
        assert "i18n" not in record, record["id"]
        assert record["lang"] == {"PT": "pt", "CN": "zh"}[record["country"]], record["id"]
        assert record["id"].startswith({"PT": "pt-", "CN": "cn-"}[record["country"]]), record["id"]
        assert bool(_CJK.search(record["description"])) == (record["country"] == "CN"), record["id"]


def test_no_record_is_one_of_the_shipped_corpus_or_another_wild_set(folder):
    others = _lines(SHIPPED) + [r for other in SETS if other != folder for r in _lines(other / "corpus.jsonl")]
    if folder.name not in {"wild", "wild2", "wild3"}:  # sets made before the posts profiles existed may share some
        others += _lines(PROFILES)
    ids = {r["id"] for r in others}
    names = {r["name"].casefold() for r in others}
    sites = {_site(r.get("website")) for r in others} - {None}
    for record in _lines(folder / "corpus.jsonl"):
        assert record["id"] not in ids, record["id"]
        assert record["name"].casefold() not in names, record["id"]
        assert _site(record.get("website")) not in sites, record["id"]


def test_the_tuned_sets_split_every_language_type_and_style_evenly(folder):
    """A tuned set fits the judgement on one half and reports the other: each language, type and
    style tag must be on both sides, within a third of its count (and at most 3 apart)."""
    if folder.name not in TUNED:
        pytest.skip("held out: every question is in the test half")
    halves = {split: collections.Counter() for split in SPLITS}
    for query in _lines(folder / "queries.jsonl"):
        halves[query["split"]].update([f"lang:{query['lang']}", f"type:{query['type']}"]
                                      + [f"style:{style}" for style in query["style"]])
    for tag in set(halves["tune"]) | set(halves["test"]):
        tune, test = halves["tune"][tag], halves["test"][tag]
        assert abs(tune - test) <= max(3, (tune + test) // 3), f"{folder.name} {tag}: tune {tune}, test {test}"
