"""The data folder as one unit: records with Unicode line separators round-trip, a write the
index cannot hold or the disk cannot take changes nothing, and one process writes at a time
while the others follow its index generations."""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3
import threading
import time

import pytest

from corpus import MAX_LANGUAGES, CorpusError, Organisation
from index import Catalog, SearchEngine, StorageFullError, WriterBusyError
from index._engine import BASE_SLOTS, SLOTS
from index._storage import StagedGeneration

from conftest import DATA, private_copy

SEPARATORS = "\u2028\u2029\u0085"


def record(rid: str, **fields) -> dict:
    return {"id": rid, "kind": "company", "name": f"Test {rid}", "country": "PT", "region": "Centro", "lang": "en",
            "sectors": ["moulds"], "description": f"Fictional test firm {rid} making injection moulds.", **fields}


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def folder_state(catalog: Catalog) -> tuple:
    """What a refused write must leave as it was: store, pointer, generation folders."""
    gens = sorted(p.name for p in catalog.index_dir.iterdir() if p.name.startswith("gen-"))
    return len(catalog.store), catalog._read_pointer(), gens, sorted(catalog.store.bodies().items())


@pytest.fixture
def catalog(shipped_data_dir, encoder, tmp_path):
    cat = private_copy(shipped_data_dir, tmp_path / "var", encoder)
    yield cat
    cat.close()


def test_the_schema_allows_no_more_languages_than_the_index_has_slots():
    assert MAX_LANGUAGES == SLOTS and set(BASE_SLOTS) == {"pt", "zh", "en"}


def test_line_separators_in_a_record_survive_store_generation_and_reopening(catalog, encoder, tmp_path):
    name = f"Separator{SEPARATORS[0]}Test Works"
    path = tmp_path / "sep.jsonl"
    write_jsonl(path, [record("test-separators", name=name,
                              description=f"Fictional mould maker.{SEPARATORS[1]}Second paragraph{SEPARATORS[2]}here.",
                              i18n={"zh": {"name": "分隔符测试模具厂", "description": f"虚构的模具企业{SEPARATORS[0]}第二段。"}})])
    catalog.ingest(path)
    records_file = catalog.index_dir / catalog._read_pointer() / "records.jsonl"
    text = records_file.read_text(encoding="utf-8")
    assert not set(SEPARATORS) & set(text)  # escaped on disk: one record a line for every tool
    assert len(text.splitlines()) == len(catalog.store)
    catalog.ingest(path)  # a later write loads the generation the first one wrote
    assert catalog.delete(["pt-apcor"]) == ["pt-apcor"]
    catalog.close()

    reopened = Catalog(catalog.data_dir, encoder)
    engine = reopened.open()
    assert engine.records["test-separators"].name == name
    assert reopened.store.get("test-separators").description.endswith(f"Second paragraph{SEPARATORS[2]}here.")
    assert "test-separators" in [h.record.id for h in engine.search("分隔符测试模具厂", limit=3).hits]
    reopened.close()


def test_languages_the_index_cannot_hold_are_refused_by_line_before_anything_is_written(catalog, tmp_path):
    others = ["fr", "de", "es", "it", "ja", "ko", "ru", "ar", "nl", "sv", "pl", "tr"]
    wide = record("test-thirteen-languages", lang="vi", i18n={code: {"name": f"Name {code}"} for code in others})
    assert len(Organisation.model_validate(wide).versions()) == SLOTS - len(BASE_SLOTS)  # fits on its own
    one_more = record("test-one-language-more", lang="uk")
    path = tmp_path / "two.jsonl"
    path.write_text("\n" + json.dumps(wide) + "\n" + json.dumps(one_more) + "\n", encoding="utf-8")
    before = folder_state(catalog)
    with pytest.raises(CorpusError) as exc:
        catalog.ingest(path)
    (err,) = exc.value.errors
    assert (err.file, err.line, err.field) == (str(path), 3, "i18n") and "'uk' does not fit" in err.message
    assert folder_state(catalog) == before
    write_jsonl(path, [wide])  # alone it fits, and then fills every slot
    catalog.ingest(path)
    assert set(catalog.engine.lang_slots) >= {"vi", *others}


def test_a_record_stored_before_the_limits_still_opens(catalog, encoder):
    """A folder written by an older version (a 300-character region, 17 languages) opens and serves;
    the record the index has no slots for stays out of it, with an error in the log."""
    with sqlite3.connect(catalog.store.path) as db:
        long_region = record("test-old-long-region", region="R" * 300)
        many = record("test-old-many-languages", i18n={c: {"name": c} for c in
                                                        ["pt", "zh", "fr", "de", "es", "it", "ja", "ko", "ru", "ar", "nl",
                                                         "sv", "pl", "tr", "vi", "th", "uk"]})
        for row in (long_region, many):
            db.execute("INSERT INTO organisations(id, body) VALUES (?, ?)", (row["id"], json.dumps(row)))
    catalog.close()
    reopened = Catalog(catalog.data_dir, encoder)
    engine = reopened.open()
    assert engine.records["test-old-long-region"].region == "R" * 300
    assert "test-old-many-languages" not in engine.records and reopened.store.get("test-old-many-languages")
    assert reopened.delete(["test-old-many-languages"]) == []  # removable, although never indexed
    assert reopened.store.get("test-old-many-languages") is None
    reopened.close()


def test_opening_cleans_what_a_dead_writer_left_but_keeps_the_current_generation(catalog, encoder):
    """Left by a writer killed mid-write: a temp folder, a pointer text, and a finished generation
    renamed into place whose pointer never moved (its name sorts after the current one)."""
    current = catalog._read_pointer()
    catalog.close()
    index = catalog.index_dir
    shutil.copytree(index / current, index / "gen-99991231T235959-dead00")
    (index / "gen-99991231T235959-dead01.tmp").mkdir()
    (index / ".CURRENT.gen-99991231T235959-dead01.tmp").write_text("gen-99991231T235959-dead01")
    reopened = Catalog(catalog.data_dir, encoder)
    reopened.open()
    assert reopened._read_pointer() == current and (index / current).is_dir()
    assert not [p for p in index.iterdir() if p.name.endswith(".tmp")]
    assert reopened.engine.search("cortiça", limit=1).hits
    reopened.close()


# -- failed writes change nothing ----------------------------------------------------------------
def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["generation", "store", "publish"])
def test_a_failed_write_leaves_store_and_index_as_they_were(catalog, tmp_path, monkeypatch, where):
    """Disk full while the generation is written, while the store commits, or (rename failing)
    while the generation is made current: each time the store and the index stay as before."""
    path = tmp_path / "new.jsonl"
    write_jsonl(path, [record("test-never-written")])
    engine_before = catalog.engine
    before = folder_state(catalog)
    if where == "generation":
        monkeypatch.setattr("index._vectors.FaissVectorStore.save",
                            lambda self, folder, name: ((folder / f"{name}.half").write_bytes(b"half"), disk_full()))
    elif where == "store":
        def full_store(self, records):
            raise sqlite3.OperationalError("database or disk is full")
        monkeypatch.setattr("corpus._store.RecordStore.upsert", full_store)
    else:
        real = StagedGeneration.publish

        def publish(self):
            monkeypatch.setattr("index._storage.os.replace", disk_full)  # the renames fail, as on a broken disk
            try:
                return real(self)
            finally:
                monkeypatch.undo()
        monkeypatch.setattr("index._storage.StagedGeneration.publish", publish)
    with pytest.raises((StorageFullError, OSError)) as exc:
        catalog.ingest(path)
    assert isinstance(exc.value, StorageFullError) and "is full" in str(exc.value) and "nothing was changed" in str(exc.value)
    monkeypatch.undo()
    assert folder_state(catalog) == before
    assert not [p for p in catalog.index_dir.iterdir() if p.name.endswith(".tmp")]  # no temp folder or pointer left
    assert catalog.engine is engine_before and "test-never-written" not in catalog.engine.records
    catalog.ingest(path)  # and the next write, with room, goes through
    assert "test-never-written" in catalog.engine.records and catalog.store.get("test-never-written")


# -- one writer ----------------------------------------------------------------------------------
def test_one_writer_per_folder_and_readers_follow_its_generations(catalog, encoder, tmp_path):
    reader = Catalog(catalog.data_dir, encoder)
    reader.open()
    assert reader.read_only and not catalog.read_only
    path = tmp_path / "one.jsonl"
    write_jsonl(path, [record("test-followed")])
    with pytest.raises(WriterBusyError) as exc:
        reader.ingest(path)
    assert str(catalog.data_dir) in str(exc.value) and "pid " in str(exc.value)
    with pytest.raises(WriterBusyError):
        reader.delete(["pt-apcor"])
    assert reader.store.get("test-followed") is None

    catalog.ingest(path)
    deadline = time.monotonic() + 10
    while "test-followed" not in reader.engine.records and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "test-followed" in reader.engine.records  # picked up without a restart
    assert reader.engine.search("Test test-followed moulds", limit=3).hits

    catalog.close()  # the writer goes: the reader's next write takes the folder over
    assert reader.delete(["test-followed"]) == ["test-followed"]
    assert not reader.read_only and reader.store.get("test-followed") is None
    reader.close()


def test_a_reader_keeps_answering_while_a_new_generation_loads(catalog, encoder, tmp_path, monkeypatch):
    """Following the writer never stalls a request: the new generation loads in a thread (held
    here until released) while the old engine answers, then is swapped in."""
    reader = Catalog(catalog.data_dir, encoder)
    reader.open()
    before = reader.engine
    loading, release = threading.Event(), threading.Event()
    real_load = SearchEngine.load.__func__

    def slow_load(cls, *args, **kwargs):
        if threading.current_thread().name == "cpc-index-reload":
            loading.set()
            release.wait(60)
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(SearchEngine, "load", classmethod(slow_load))
    path = tmp_path / "slow.jsonl"
    write_jsonl(path, [record("test-slow-load")])
    catalog.ingest(path)
    try:
        deadline = time.monotonic() + 10
        while not loading.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            assert reader.engine is before and time.monotonic() - started < 0.5  # never waits for the load
            time.sleep(0.1)
        assert loading.is_set()
        assert reader.engine is before and "test-slow-load" not in reader.engine.records
        assert reader.engine.search("cortiça", limit=1).hits  # answered by the old generation meanwhile
    finally:
        release.set()
    deadline = time.monotonic() + 30
    while reader.engine is before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "test-slow-load" in reader.engine.records and reader.engine.generation == catalog.engine.generation
    reader.close()


# -- a group of writers (cpc serve --workers) ---------------------------------------------------------------
def test_workers_of_the_group_holding_the_folder_write_in_turn_and_others_are_refused(shipped_data_dir, encoder, tmp_path):
    """The serve parent holds the folder for its group; each worker of the group writes, one write
    at a time, each starting from the generation the last one wrote; anyone else gets 409's error."""
    import threading

    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    group = 4242
    parent = Catalog(data_dir, encoder, group=group)
    parent.open()
    first, second = Catalog(data_dir, encoder, group=group), Catalog(data_dir, encoder, group=group)
    outsider, other_group = Catalog(data_dir, encoder), Catalog(data_dir, encoder, group=7)
    for c in (first, second, outsider, other_group):
        c.open()
    assert f"[group {group}]" in parent.writer_lock.holder()
    assert not parent.read_only and not first.read_only and not second.read_only
    assert outsider.read_only and other_group.read_only
    try:
        path = tmp_path / "one.jsonl"
        write_jsonl(path, [record("test-first")])
        first.ingest(path)
        write_jsonl(path, [record("test-second")])
        second.ingest(path)  # from the generation `first` wrote, not the one `second` opened
        assert {"test-first", "test-second"} <= set(second.engine.records)
        deadline = time.monotonic() + 10
        while "test-second" not in first.engine.records and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {"test-first", "test-second"} <= set(first.engine.records)  # followed without a reopen

        for c in (outsider, other_group):
            with pytest.raises(WriterBusyError) as exc:
                c.delete(["test-first"])
            assert f"pid {parent.writer_lock.holder().split()[1]}" in str(exc.value)

        # two writes at once from two workers: they take turns, and neither loses the other's record
        paths = []
        for rid in ("test-a", "test-b"):
            paths.append(tmp_path / f"{rid}.jsonl")
            write_jsonl(paths[-1], [record(rid)])
        threads = [threading.Thread(target=c.ingest, args=(p,)) for c, p in zip((first, second), paths)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        fresh = Catalog(data_dir, encoder, group=group)
        fresh.open()
        assert {"test-a", "test-b"} <= set(fresh.engine.records) and fresh.store.get("test-a") and fresh.store.get("test-b")
        fresh.close()

        # a worker killed between the store commit and publishing the index: the next write repairs it first
        (data_dir / "write.lock").write_text("pid 1 writing\n")
        first.store.upsert([Organisation.model_validate(record("test-orphan"))])
        assert "test-orphan" not in first._fresh_copy().records
        second.delete(["test-first"])
        assert "test-orphan" in second.engine.records and "test-first" not in second.engine.records
        assert (data_dir / "write.lock").read_text() == ""

        # the parent goes: the group's next writer takes the folder over, for the group
        parent.close()
        first.delete(["test-second"])
        assert first.writer_lock.held and f"[group {group}]" in first.writer_lock.holder()
        second.delete(["test-a"])
        assert not second.read_only and "test-a" not in second.engine.records and "test-second" not in second.engine.records
        with pytest.raises(WriterBusyError):
            outsider.delete(["test-b"])
    finally:
        for c in (first, second, outsider, other_group, parent):
            c.close()


def test_a_reindex_into_milvus_is_followed_by_every_process_serving_the_folder(milvus_server, shipped_data_dir, encoder,
                                                                                tmp_path):
    """A reindex that changes the vector store (FAISS to a Milvus server, CPC_VECTOR_URL set on the
    writer) is completed for every process serving the folder: one that still has no CPC_VECTOR_URL
    opens the new generation's collection from its reference and ranks as the writer does."""
    from index import SearchConfig

    writer = private_copy(shipped_data_dir, tmp_path / "var", encoder)
    reader = Catalog(tmp_path / "var", encoder, SearchConfig())
    reader.open()
    assert reader.read_only and reader.engine.raw.kind == "flat"
    writer.config.vector_url = milvus_server
    writer.rebuild(DATA / "fictional.jsonl")  # six records: the reindex is quick
    assert writer.engine.raw.kind == "milvus" and len(writer.engine.records) == 6
    deadline = time.monotonic() + 60
    while reader.engine.raw.kind != "milvus":  # looked for at most once a second, loaded beside searches
        assert time.monotonic() < deadline, "the other process did not follow the reindex"
        time.sleep(0.2)
    for query in ("cork stoppers", "moldes de injeção", "葡萄酒", "robots"):
        assert ([h.record.id for h in reader.engine.search(query, limit=5).hits]
                == [h.record.id for h in writer.engine.search(query, limit=5).hits])
    reader.close()
    writer.close()
