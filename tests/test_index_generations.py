"""Generations: an engine is built, staged, published and loaded by the generations module."""

import pytest

from corpus import load_records
from index import IndexMismatchError, SearchEngine
from index._generations import FORMAT_VERSION, Generation

from conftest import DATA, fictional_engine


def test_build_stage_publish_load(encoder, tmp_path):
    records = load_records(DATA / "fictional.jsonl").records
    built = SearchEngine.build(records, encoder)
    assert isinstance(built, Generation) and built.manifest["format_version"] == FORMAT_VERSION
    staged = built.stage(tmp_path)
    assert SearchEngine.read_manifest(tmp_path) is None  # staged, not yet current
    staged.publish()
    loaded = SearchEngine.load(tmp_path, encoder)
    assert sorted(loaded.records) == sorted(r.id for r in records)
    assert loaded.search("软木塞", limit=1).hits[0].record.id == "test-cork-lab"
    gone = loaded.delete(["test-cork-lab"])
    assert gone == ["test-cork-lab"] and "test-cork-lab" not in loaded.records


def test_a_generation_of_another_format_is_refused(encoder, fictional_index_dir, tmp_path):
    gen = fictional_engine(fictional_index_dir, tmp_path / "index", encoder).save(tmp_path)
    manifest = (gen / "manifest.json").read_text().replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 1')
    (gen / "manifest.json").write_text(manifest)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        SearchEngine.load(tmp_path, encoder)
