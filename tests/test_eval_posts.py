"""``cpc eval --posts``: the folder is checked before any embedding, and both directions are scored
by the service's own calls on a tiny fictional set (tests/data/posts_tiny)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eval._dataset import DatasetError
from eval._posts import evaluate_posts, format_posts, load_posts, write_posts_report

pytestmark = pytest.mark.usefixtures("ranx_compiled")  # compiled once per run, before any test here (conftest)
TINY = Path(__file__).parent / "data" / "posts_tiny"
REPO = Path(__file__).resolve().parents[1]


def test_the_tiny_set_loads_and_splits():
    data = load_posts(TINY)
    assert len(data.posts) == 4 and len(data.records) == 7
    tune = data.select("tune")
    assert len(tune.posts) == 4 and len(tune.records) == 7  # every post and profile stays a candidate
    assert set(tune.post_qrels) == {"post-fx1", "post-fx2"}  # the half's posts are the queries
    assert set(tune.org_qrels) == {"fx-cork-granules", "fx-auto-parts"}  # and the half's profiles


@pytest.mark.parametrize("file, line, bad, field", [
    ("posts.jsonl", 1, '{"id": "post-fx1", "type": "franchise"}', "type"),
    ("posts.jsonl", 1, "not json", "-"),
    ("post_qrels.tsv", 2, "post-fx1\tno-such-org\t2", "second column"),
    ("org_qrels.tsv", 2, "fx-cork-granules\tpost-fx1\t5", "grade"),
])
def test_bad_data_is_named_by_file_line_and_field(tmp_path, file, line, bad, field):
    folder = tmp_path / "posts"
    shutil.copytree(TINY, folder)
    lines = (folder / file).read_text(encoding="utf-8").splitlines()
    lines[line - 1] = bad
    (folder / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        load_posts(folder)
    assert err.value.line == line and err.value.field.startswith(field)


def test_both_directions_are_scored_and_reported(encoder, tmp_path):
    from index import SearchConfig, SearchEngine, load_query_samples

    data = load_posts(TINY)
    engine = SearchEngine.build(data.records, encoder, SearchConfig(), query_samples=load_query_samples()[::15])
    result = evaluate_posts(data, encoder, engine)
    assert result["post_to_org"]["queries"] == 4 and result["org_to_post"]["queries"] == 4
    assert result["post_to_org"]["ndcg@10"] >= 0.75 and result["org_to_post"]["ndcg@10"] >= 0.75
    assert "post→org" in format_posts(result)
    report = write_posts_report(result, tmp_path / "report")
    assert "nDCG@10" in report.read_text() and (tmp_path / "report" / "posts.png").stat().st_size > 1000


def test_cli_refuses_a_missing_folder_with_status_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "eval", "--posts", str(tmp_path / "none"), "--quiet"],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "no such folder" in done.stderr
