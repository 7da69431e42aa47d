"""eval/: metrics on hand-checked rankings, both dataset layouts, and every input error.

No embeddings here (see test_eval_cli.py for the real runs).
"""

import json
import math
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from eval import (
    CONFIGS, DEFAULT_CONFIG, DatasetError, EvalError, evaluate_rankings, load_dataset, parse_configs,
    query_groups, run_chats, score_rankings,
)

pytestmark = pytest.mark.usefixtures("ranx_compiled")  # compiled once per run, before any test here (conftest)
TINY = Path(__file__).parent / "data" / "eval_tiny"
L3 = math.log2(3)  # the discount of rank 2


# -- metrics ----------------------------------------------------------------------------
QRELS = {
    "q1": {"a": 2, "b": 1},
    "q2": {"c": 2, "d": 2},
    "q3": {"e": 2},
    "q4": {"f": 1, "g": 2},
}
RANKINGS = {
    "q1": ["b", "a", "x"],
    "q2": ["x", "c", "y", "z", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "d"],  # d at rank 12
    "q3": [],
    "q4": ["f", "g"],
}
QUERY_LANGS = {"q1": "pt", "q2": "zh", "q3": "en", "q4": "pt"}
DOC_LANGS = {"a": "pt", "b": "pt", "c": "pt", "d": "zh", "e": "en", "f": "zh", "g": "en"}

# Worked by hand (gain = grade, discount log2(rank + 1)):
# q1: DCG = 1/1 + 2/log2(3) = 2.26186; ideal = 2/1 + 1/log2(3) = 2.63093 -> nDCG 0.85972.
#     grade-2 docs {a}: a at rank 2 -> Recall 1/1 = 1, MRR 1/2.
# q2: DCG@10 = 2/log2(3) (c at 2; d at 12 is cut) = 1.26186; ideal = 2 + 2/log2(3) = 3.26186 -> 0.38685.
#     Recall 1/2 (d outside the top 10), MRR 1/2.
# q3: nothing retrieved -> 0, 0, 0.
# q4: f (grade 1) at 1, g (grade 2) at 2: nDCG as q1 = 0.85972; Recall 1; MRR 1/2 (grade 1 does not count).
EXPECTED = {
    "q1": {"ndcg@10": (1 + 2 / L3) / (2 + 1 / L3), "recall@10": 1.0, "mrr@10": 0.5},
    "q2": {"ndcg@10": (2 / L3) / (2 + 2 / L3), "recall@10": 0.5, "mrr@10": 0.5},
    "q3": {"ndcg@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0},
    "q4": {"ndcg@10": (1 + 2 / L3) / (2 + 1 / L3), "recall@10": 1.0, "mrr@10": 0.5},
}


def test_metrics_match_the_hand_computation():
    got = evaluate_rankings(RANKINGS, QRELS, sought=2)
    assert set(got) == set(EXPECTED)
    for q, metrics in EXPECTED.items():
        for m, v in metrics.items():
            assert got[q][m] == pytest.approx(v, abs=1e-9), (q, m)
    assert got["q1"]["ndcg@10"] == pytest.approx(0.85972, abs=1e-5)
    assert got["q2"]["ndcg@10"] == pytest.approx(0.38685, abs=1e-5)


def test_group_means_and_language_pairs():
    summary, _ = score_rankings(RANKINGS, QRELS, QUERY_LANGS, DOC_LANGS, sought=2)
    # all: nDCG (0.85972 + 0.38685 + 0 + 0.85972) / 4, Recall (1 + .5 + 0 + 1) / 4, MRR (.5 + .5 + 0 + .5) / 4
    assert summary["all"]["n"] == 4
    assert summary["all"]["ndcg@10"] == pytest.approx(sum(e["ndcg@10"] for e in EXPECTED.values()) / 4)
    assert summary["all"]["recall@10"] == pytest.approx(2.5 / 4)
    assert summary["all"]["mrr@10"] == pytest.approx(1.5 / 4)
    assert summary["pt"]["n"] == 2 and summary["pt"]["mrr@10"] == pytest.approx(0.5)
    assert summary["zh"]["n"] == 1 and summary["zh"]["recall@10"] == pytest.approx(0.5)
    # pairs follow the grade-2 docs only: q1 a(pt); q2 c(pt), d(zh) -> two pairs; q3 e(en); q4 g(en), not f(zh)
    assert {p: m["n"] for p, m in summary["pairs"].items()} == {"en→en": 1, "pt→en": 1, "pt→pt": 1, "zh→pt": 1, "zh→zh": 1}
    assert summary["pairs"]["zh→zh"]["ndcg@10"] == pytest.approx(EXPECTED["q2"]["ndcg@10"])


def test_ranking_order_is_kept_and_unranked_queries_are_refused():
    # reversed order changes the score: ranx sees strictly decreasing scores, never ties
    flipped = evaluate_rankings({"q1": ["a", "b"]}, QRELS)
    assert flipped["q1"]["ndcg@10"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no document of grade 2 for query id"):
        evaluate_rankings({"q9": ["a"]}, {"q9": {"a": 1}})


def test_groups_always_have_the_three_languages():
    groups = query_groups({"q": "es"}, {"q": {"d": 2}}, {"d": "pt"})
    assert groups["pt"] == groups["zh"] == groups["en"] == [] and groups["es"] == ["q"]
    assert groups["pairs"] == {"es→pt": ["q"]}


# -- configurations and the chats hook ------------------------------------------------------
def test_configs_default_always_included():
    assert DEFAULT_CONFIG == "hybrid" and CONFIGS["hybrid"].mode == "hybrid" and CONFIGS["hybrid"].calibrate
    assert parse_configs("bm25") == ["bm25", "hybrid"]
    assert parse_configs(None) == list(CONFIGS)
    with pytest.raises(EvalError, match="unknown configuration.*bm52"):
        parse_configs("bm52")


def test_chats_run_through_the_real_assistant(tmp_path, encoder):
    from eval import build_engine

    ds = load_dataset(TINY)
    assert ds.chats_path is None and run_chats(ds, None) is None
    shutil.copytree(TINY, tmp_path / "d")
    conv = {
        "id": "c1",
        "turns": [{"user": "葡萄牙软木塞供应商"}, {"user": "谢谢"}, {"user": "Chinese mould makers"}],
        "expect": [
            {"lang": "zh", "any_of": ["pt-cortica-feira"], "none_of": []},
            {"lang": "zh", "any_of": []},
            {"lang": "en", "any_of": ["cn-mould-ningbo"], "none_of": ["cn-mould-ningbo"]},  # must fail
        ],
    }
    (tmp_path / "d" / "chats.jsonl").write_text(json.dumps(conv, ensure_ascii=False) + "\n", encoding="utf-8")
    ds = load_dataset(tmp_path / "d")
    out = run_chats(ds, build_engine(ds, encoder, progress=False))
    assert (out["conversations"], out["turns"], out["passed"]) == (1, 3, 2)
    (failure,) = out["failures"]
    assert failure["turn"] == 3 and failure["problems"] == ["unwanted: cn-mould-ningbo"]


@pytest.mark.parametrize(
    "line, field",
    [
        ("{not json", "-"),
        ('{"turns": [{"user": "x"}], "expect": [{"lang": "pt"}]}', "id"),
        ('{"id": "c", "turns": [], "expect": []}', "turns"),
        ('{"id": "c", "turns": [{"user": "x"}], "expect": []}', "expect"),
        ('{"id": "c", "turns": [{"user": "x"}], "expect": [{"lang": "fr"}]}', "expect[0].lang"),
        ('{"id": "c", "turns": [{"user": "x"}], "expect": [{"lang": "pt", "any_of": ["nope"]}]}', "expect[0].any_of"),
    ],
)
def test_malformed_chats_name_line_and_field(tmp_path, line, field):
    from eval import load_chats

    path = tmp_path / "chats.jsonl"
    path.write_text("\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        load_chats(path, {"pt-cortica-feira"})
    assert (exc.value.line, exc.value.field) == (2, field)


# -- loading ----------------------------------------------------------------------------
def test_native_layout_loads():
    ds = load_dataset(TINY)
    assert ds.layout == "native" and ds.sought == 2
    assert len(ds.records) == 6 and len(ds.queries) == 6
    assert ds.queries["q-zh-cork"].lang == "zh"  # detected: no "lang" in the file
    assert ds.queries["q-pt-vaccines"].lang == "pt"
    assert ds.qrels["q-pt-moulds"] == {"cn-mould-ningbo": 2, "pt-moldes-leiria": 1}
    assert "pt-cortica-feira" not in ds.qrels["q-en-partial"]  # grade 0 = not relevant
    assert ds.by_id["pt-textil-braga"].lang == "pt"
    test = ds.select("test")
    assert set(test.queries) == {"q-zh-cork", "q-en-battery", "q-zh-textile", "q-en-partial"}
    assert set(test.qrels) <= set(test.queries) and test.split == "test"
    assert list(ds.select("all", limit=2).queries) == ["q-pt-moulds", "q-zh-cork"]


def _write_beir(root: Path, qrels_lines=None, header="query-id\tcorpus-id\tscore") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = [
        {"_id": "Doc 1", "title": "Cork Works", "text": "We make natural cork stoppers.", "metadata": {"country": "pt", "kind": "institution"}},
        {"_id": "d2", "title": "", "text": "宁波的注塑模具制造企业，为汽车行业生产精密模具。", "metadata": {"country": "China"}},
        {"_id": "doc_1", "title": "Battery Co", "text": "Lithium battery packs for electric buses."},
    ]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8")
    queries = [{"_id": "1", "text": "cork stoppers"}, {"_id": "2", "text": "模具"}]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in queries) + "\n", encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    lines = qrels_lines if qrels_lines is not None else ["1\tDoc 1\t1", "2\td2\t1", "2\tdoc_1\t0"]
    (root / "qrels" / "test.tsv").write_text("\n".join([header] + lines) + "\n", encoding="utf-8")
    return root


def test_beir_layout_loads_with_id_mapping(tmp_path):
    ds = load_dataset(_write_beir(tmp_path / "beir"))
    assert ds.layout == "beir" and ds.sought == 1
    by = ds.by_id
    slug = next(r.id for r in ds.records if ds.source_id(r.id) == "Doc 1")
    assert slug != "Doc 1" and slug.startswith("doc-1-") and ds.source_id(slug) == "Doc 1"
    rec = by[slug]
    assert rec.name == "Cork Works" and rec.kind == "institution" and rec.country == "PT" and rec.lang == "en"
    assert by["d2"].country == "" and by["d2"].kind == "company" and by["d2"].lang == "zh"
    assert by["d2"].name.startswith("宁波")  # no title: the first words of the text
    other = next(r for r in ds.records if ds.source_id(r.id) == "doc_1")
    assert other.id != slug  # "doc_1" and "Doc 1" do not collide
    assert ds.qrels == {"1": {slug: 1}, "2": {"d2": 1}}
    from index import passage_text

    assert passage_text(by["d2"], "zh", by["d2"].name, by["d2"].description).startswith("宁波")


# -- errors: file, line and field ---------------------------------------------------------
def _copy(tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(TINY, dst)
    return dst


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


CASES = {
    "bad JSON line": ("queries.jsonl", 3, '{"id": "q-en-battery", "text": "battery"', "-", "not valid JSON"),
    "missing text": ("queries.jsonl", 2, '{"id": "q-zh-cork"}', "text", "missing"),
    "empty id": ("queries.jsonl", 2, '{"id": " ", "text": "x"}', "id", "must not be empty"),
    "duplicate query": ("queries.jsonl", 2, '{"id": "q-pt-moulds", "text": "x"}', "id", "duplicate query id 'q-pt-moulds' (first on line 1)"),
    "bad split": ("queries.jsonl", 4, '{"id": "q-pt-vaccines", "text": "x", "split": "dev"}', "split", "must be one of tune, test"),
    "bad lang": ("queries.jsonl", 1, '{"id": "q-pt-moulds", "text": "x", "lang": "portuguese"}', "lang", "ISO 639-1"),
    "record without country": ("corpus.jsonl", 2, '{"id": "cn-mould-ningbo", "kind": "company", "name": "N", "description": "d"}', "country", "Field required"),
    "grade out of range": ("qrels.tsv", 3, "q-pt-moulds\tpt-moldes-leiria\t3", "grade", "must be an integer 0-2, found '3'"),
    "grade not a number": ("qrels.tsv", 2, "q-pt-moulds\tcn-mould-ningbo\thigh", "grade", "found 'high'"),
    "unknown query": ("qrels.tsv", 4, "q-nope\tpt-cortica-feira\t2", "query_id", "unknown query 'q-nope'"),
    "unknown doc": ("qrels.tsv", 4, "q-zh-cork\tpt-nope\t2", "doc_id", "unknown document 'pt-nope'"),
    "bad header": ("qrels.tsv", 1, "query\tdoc\tgrade", "header", "expected 'query_id<TAB>doc_id<TAB>grade'"),
    "two columns": ("qrels.tsv", 5, "q-en-battery\tcn-ev-battery-shenzhen", "-", "expected 3 tab-separated fields"),
    "duplicate judgement": ("qrels.tsv", 3, "q-pt-moulds\tcn-mould-ningbo\t1", "doc_id", "duplicate judgement"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_names_file_line_and_field(tmp_path, case):
    name, lineno, text, field, message = CASES[case]
    root = _copy(tmp_path)
    _replace_line(root / name, lineno, text)
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    exc = err.value
    assert (Path(exc.file).name, exc.line, exc.field) == (name, lineno, field)
    assert message in exc.message
    assert str(exc).startswith(f"{root / name}:{lineno}: {field}: ")


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl", "qrels.tsv"])
def test_missing_file(tmp_path, name):
    root = _copy(tmp_path)
    (root / name).unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert Path(err.value.file).name == name and err.value.line == 0 and "file not found" in str(err.value)


def test_missing_folder_and_empty_split(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")
    root = _copy(tmp_path)
    for line in (1, 4):
        _replace_line(root / "queries.jsonl", line, json.dumps({"id": f"q{line}", "text": "x", "split": "test"}))
    (root / "qrels.tsv").write_text("query_id\tdoc_id\tgrade\n", encoding="utf-8")
    with pytest.raises(DatasetError, match='no query has "split": "tune"') as err:
        load_dataset(root).select("tune")
    assert err.value.field == "split"


def test_beir_errors(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset(_write_beir(tmp_path / "a", ["1\tDoc 1\t-1"]))
    assert (Path(err.value.file).name, err.value.line, err.value.field) == ("test.tsv", 2, "score")
    assert "non-negative integer" in err.value.message
    with pytest.raises(DatasetError) as err:
        load_dataset(_write_beir(tmp_path / "b", header="query_id\tdoc_id\tgrade"))
    assert (err.value.line, err.value.field) == (1, "header") and "query-id<TAB>corpus-id<TAB>score" in err.value.message
    with pytest.raises(DatasetError) as err:
        load_dataset(_write_beir(tmp_path / "c", ["1\tDoc-1\t1"]))
    assert err.value.field == "corpus-id" and "unknown document 'Doc-1'" in err.value.message
    root = _write_beir(tmp_path / "d")
    with open(root / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"_id": "d4", "title": "", "text": ""}) + "\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert (Path(err.value.file).name, err.value.line, err.value.field) == ("corpus.jsonl", 4, "text")


def test_abstention_figure_counts_honest_empty_answers(tmp_path, encoder):
    from eval import build_engine
    from eval._run import evaluate_dataset

    shutil.copytree(TINY, tmp_path / "d")
    with open(tmp_path / "d" / "queries.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "q-ooc-football", "text": "football clubs in Brazil for a shirt sponsorship",
                             "lang": "en", "type": "ooc"}) + "\n")
        fh.write(json.dumps({"id": "q-ooc-wine", "text": "Somos uma adega e procuramos importadores de vinho em França",
                             "lang": "pt", "type": "ooc"}) + "\n")
    ds = load_dataset(tmp_path / "d")
    result = evaluate_dataset(ds, ["hybrid", "dense"], engine=build_engine(ds, encoder, progress=False), progress=False)
    a = result.abstention["hybrid"]
    assert (a["out_of_corpus"], a["answerable"]) == (2, 5)  # q-en-partial has no grade-2 record: skipped
    assert a["abstained"] == 2 and a["answered_out_of_corpus"] == []
    assert a["first_hit_relevant"] >= 4
    assert result.abstention["dense"]["abstained"] == 0  # without the floor every question gets an answer
    assert "q-ooc-football" not in result.per_query["hybrid"]  # not in the nDCG means
    assert result.to_json()["abstention"]["hybrid"]["abstained_rate"] == 1.0
    bad = tmp_path / "d" / "queries.jsonl"
    bad.write_text('{"id": "x", "text": "y", "type": "maybe"}\n', encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path / "d")
    assert err.value.field == "type"


def test_figures_by_style_and_answerable_empty(tmp_path, encoder):
    """Every figure is broken down by the queries' style tags, in --json, the table and the report."""
    from eval import build_engine
    from eval._report import format_table, write_report
    from eval._run import evaluate_dataset

    root = tmp_path / "d"
    shutil.copytree(TINY, root)
    lines = [json.loads(line) for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, q in enumerate(lines):
        q["style"] = ["keywords"] if i % 2 else ["keywords", "typo"]
    lines.append({"id": "q-ooc-football", "text": "football clubs in Brazil", "lang": "en", "type": "ooc", "style": ["keywords"]})
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in lines) + "\n", encoding="utf-8")
    ds = load_dataset(root)
    assert ds.queries["q-ooc-football"].styles == ("keywords",) and ds.queries["q-ooc-football"].type == "ooc"
    result = evaluate_dataset(ds, ["hybrid", "hybrid-floor", "hybrid-unjudged"], engine=build_engine(ds, encoder, progress=False),
                              progress=False)
    data = result.to_json()
    styles = data["configs"]["hybrid"]["styles"]
    assert set(styles) == {"keywords", "typo"} and styles["keywords"]["n"] == data["configs"]["hybrid"]["all"]["n"]
    a = data["abstention"]["hybrid"]
    assert a["answerable_empty"] == len(a["answerable_without_results"]) and "answerable_empty_rate" in a
    assert a["by_style"]["keywords"]["out_of_corpus"] == 1 and a["by_style"]["typo"]["out_of_corpus"] == 0
    assert data["abstention"]["hybrid-unjudged"]["answerable_empty"] == 0  # every candidate shown
    assert "styles" in data["configs"]["hybrid-floor"]
    table = format_table(data)
    assert "style:keywords" in table and "answerable_empty:" in table and "style typo:" in table
    write_report(result, tmp_path / "out")
    assert (tmp_path / "out" / "ndcg_by_style.png").is_file()
    assert "answerable_empty" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    (root / "queries.jsonl").write_text(json.dumps({"id": "x", "text": "y", "style": "typo"}) + "\n"
                                        + json.dumps({"id": "z", "text": "w", "style": [1]}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert (err.value.line, err.value.field) == (2, "style")
