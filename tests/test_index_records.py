"""Records read on demand and the per-record arrays the ranking uses instead of them: they
match the records, survive a save and load, stay consistent through updates, and an index in
the old format is refused with the way out."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from corpus import Organisation, corpus_hash, default_taxonomy, fold, load_records, record_json
from index import Filters, IndexMismatchError, SearchEngine, tokenize
from index._records import record_about

from conftest import DATA


@pytest.fixture(scope="module")
def fictional():
    return load_records(DATA / "fictional.jsonl").records


@pytest.fixture(scope="module")
def saved(fictional_index_dir, tmp_path_factory):
    """The fictional records' index (built once per run, conftest), a copy of this module's own."""
    root = tmp_path_factory.mktemp("records-index") / "index"
    shutil.copytree(fictional_index_dir, root)
    return root


def snapshot(engine: SearchEngine) -> dict:
    """Everything the ranking reads per row, as plain values."""
    cols = engine._columns
    rows = [(rid, *(cols.value(f, row) for f in ("country", "region", "city", "kind")),
             cols.sectors("tags", row), sorted(cols.sectors("about", row)), sorted(cols.tagged(row)), cols.names[row],
             cols.name_keys[row])
            for row, rid in enumerate(engine._rows)]
    values = {f: engine.values(f) for f in ("country", "region", "city", "kind", "sector")}
    queries = [tokenize(q) for q in ("moldes cortiça", "葡萄酒 机器人", "robots wine cork", "cluster")]
    scores = [engine._bm25.scores(q).tolist() for q in queries]
    return {"rows": rows, "values": values, "scores": scores}


def expected_rows(records) -> list:
    """What ``snapshot`` must hold, read from the records themselves."""
    tax = default_taxonomy()
    return [(r.id, r.country, r.region, r.city, r.kind, list(r.sectors), sorted(record_about(r)),
             sorted(r.sectors if any(s in tax for s in r.sectors) else record_about(r)),
             names(r), [fold(re.split(r"\s[–—-]\s|[（(,]", n)[0]).strip() for n in names(r)])
            for r in sorted(records, key=lambda r: r.id)]


def names(r) -> list[str]:
    return list(dict.fromkeys([r.name, *(t.name for t in r.i18n.values() if t.name)]))


def set_filter_rows(records, f: Filters) -> list[int]:
    """The filter semantics as sets over records (any value within a field, every field)."""
    def key(value: str) -> str:
        return fold(value).strip()

    out = []
    for row, r in enumerate(sorted(records, key=lambda r: r.id)):
        ok = all(not values or any(key(v) in {key(x) for x in (r.sectors if field == "sectors" else [getattr(r, field) or ""])}
                                   for v in values)
                 for field, values in (("country", f.countries), ("region", f.regions), ("city", f.cities),
                                       ("kind", f.kinds), ("sectors", f.sectors)))
        ok = ok and not any(key(getattr(r, field) or "") in {key(v) for v in values}
                            for field, values in (("country", f.exclude_countries), ("region", f.exclude_regions),
                                                  ("city", f.exclude_cities)))
        if ok and r.id not in f.exclude_ids:
            out.append(row)
    return out


def test_a_loaded_index_parses_no_record_until_one_is_asked_for(saved, fictional, encoder):
    engine = SearchEngine.load(saved, encoder)
    records = engine.records
    assert not records._cache  # nothing parsed at load
    assert len(records) == len(fictional) and set(records) == {r.id for r in fictional}
    assert "test-cork-lab" in records and "no-such-id" not in records and records.get("no-such-id") is None
    result = engine.search("rolhas de cortiça", limit=2)
    assert 0 < len(records._cache) <= 2 + len(result.nearest)  # only what was shown
    assert all(isinstance(h.record, Organisation) for h in result.hits + result.nearest)
    by_id = {r.id: r for r in fictional}
    for rid in records:
        assert record_json(records[rid]) == record_json(by_id[rid])
    assert records["test-cork-lab"] is records["test-cork-lab"]  # cached, not parsed twice


def test_the_arrays_hold_what_the_records_say(saved, fictional, encoder):
    engine = SearchEngine.load(saved, encoder)
    assert snapshot(engine)["rows"] == expected_rows(fictional)
    assert snapshot(engine) == snapshot(SearchEngine.build(fictional, encoder))
    for rec in fictional:
        assert engine.sectors_of(rec) == set(record_about(rec))


@pytest.mark.parametrize("filters", [
    Filters(countries=("PT",)), Filters(countries=("pt", "CN")), Filters(kinds=("company",)),
    Filters(sectors=("cork",)), Filters(sectors=("wine", "moulds"), exclude_countries=("CN",)),
    Filters(exclude_ids=("test-cork-lab",)), Filters(regions=("no such region",)),
    Filters(countries=("PT",), exclude_cities=("leiria", "Porto")),
])
def test_filters_as_masks_allow_what_the_set_semantics_allow(saved, fictional, encoder, filters):
    engine = SearchEngine.load(saved, encoder)
    assert engine.allowed_rows(filters).tolist() == set_filter_rows(fictional, filters)
    hits = engine.search("empresa", filters, limit=10, mode="bm25").hits + engine.search("empresa", filters, limit=10).hits
    allowed = {engine._rows[r] for r in set_filter_rows(fictional, filters)}
    assert {h.record.id for h in hits} <= allowed


def test_upsert_and_delete_keep_the_arrays_as_a_fresh_build_would(saved, fictional, encoder, tmp_path):
    engine = SearchEngine.load(saved, encoder)
    by_id = {r.id: r for r in fictional}
    changed = by_id["test-cork-lab"].model_copy(update={"sectors": ["wine"], "city": "Évora", "region": "Alentejo"})
    new = Organisation.model_validate({
        "id": "test-bike-works", "kind": "company", "name": "Bicicletas de Teste", "country": "PT", "region": "Centro",
        "city": "Águeda", "lang": "pt", "sectors": [], "description": "Fábrica fictícia de bicicletas elétricas e moldes."})
    gone = next(i for i in sorted(by_id) if i != changed.id)
    engine.upsert([changed, new])
    assert engine.delete([gone]) == [gone]
    final = [r for r in fictional if r.id not in (gone, changed.id)] + [changed, new]
    assert snapshot(engine)["rows"] == expected_rows(final)
    assert snapshot(engine) == snapshot(SearchEngine.build(final, encoder))
    assert engine.records[changed.id].city == "Évora" and gone not in engine.records
    assert engine.manifest["corpus_hash"] == corpus_hash(final)

    engine.save(tmp_path)
    assert not any(isinstance(where, Organisation) for where in engine.records._where.values())  # read from the file now
    assert record_json(engine.records["test-bike-works"]) == record_json(new)
    reloaded = SearchEngine.load(tmp_path, encoder)
    assert snapshot(reloaded) == snapshot(engine)
    assert [record_json(reloaded.records[i]) for i in reloaded.records] == [record_json(r) for r in
                                                                           sorted(final, key=lambda r: r.id)]
    assert reloaded.search("bicicletas elétricas Águeda", limit=1).hits[0].record.id == "test-bike-works"
    assert reloaded.allowed_rows(Filters(cities=("agueda",))).tolist() == [reloaded._rows.index("test-bike-works")]


def test_an_index_in_the_old_format_is_refused_with_the_way_out(saved, encoder, tmp_path):
    import shutil

    root = tmp_path / "old"
    shutil.copytree(saved, root)
    gen = root / (root / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text())
    (gen / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(IndexMismatchError, match="rebuild it with `cpc index build`"):
        SearchEngine.load(root, encoder)


def reference_merge(old, ids, sources):
    """``RecordColumns.merge`` as it was when it read every row in Python (sources: an old row or
    a record for each row): the vectorised one must give the same columns, tables in the same order."""
    import numpy as np

    from index._keywords import _gather
    from index._records import FIELDS, SECTOR_LISTS, RecordColumns

    tables = {f: [] for f in (*FIELDS, "sector")}
    index = {f: {} for f in tables}

    def code(field, value):
        if not value:
            return -1
        found = index[field].get(value)
        if found is None:
            found = index[field][value] = len(tables[field])
            tables[field].append(value)
        return found

    n = len(sources)
    codes = {f: np.full(n, -1, np.int32) for f in FIELDS}
    pieces = {name: [] for name in SECTOR_LISTS}
    tagged = np.zeros(n, bool)
    names = []
    old_rows = np.asarray([s for s in sources if isinstance(s, int)], np.int64)
    copied = {name: _gather(*old.lists[name], old_rows) for name in SECTOR_LISTS} if old is not None and len(old_rows) else {}
    tax = default_taxonomy()
    next_old = 0
    for row, source in enumerate(sources):
        if isinstance(source, int):
            for f in FIELDS:
                c = int(old.codes[f][source])
                codes[f][row] = code(f, old.tables[f][c]) if c >= 0 else -1
            for name in SECTOR_LISTS:
                ptr, values = copied[name]
                pieces[name].append([code("sector", old.tables["sector"][c])
                                     for c in values[ptr[next_old] : ptr[next_old + 1]].tolist()])
            tagged[row] = bool(old.taxonomy_tagged[source])
            names.append(old.names[source])
            next_old += 1
            continue
        rec = source
        for f in FIELDS:
            codes[f][row] = code(f, getattr(rec, f))
        pieces["tags"].append([code("sector", s) for s in rec.sectors])
        pieces["about"].append([code("sector", s) for s in record_about(rec)])
        tagged[row] = any(s in tax for s in rec.sectors)
        names.append(list(dict.fromkeys([rec.name, *(t.name for t in rec.i18n.values() if t.name)])))
    lists = {}
    for name, rows in pieces.items():
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum([len(r) for r in rows], out=indptr[1:])
        lists[name] = (indptr, np.fromiter((c for r in rows for c in r), np.int32, count=int(indptr[-1])))
    return RecordColumns(ids, tables, codes, lists, tagged, names)


def assert_same_columns(got, want) -> None:
    import numpy as np

    assert got.ids == want.ids and got.tables == want.tables
    for f in want.codes:
        assert got.codes[f].dtype == want.codes[f].dtype and np.array_equal(got.codes[f], want.codes[f]), f
    for name, (ptr, values) in want.lists.items():
        assert np.array_equal(got.lists[name][0], ptr) and np.array_equal(got.lists[name][1], values), name
        assert got.lists[name][1].dtype == values.dtype
    assert list(got.names) == list(want.names)
    assert np.array_equal(got.taxonomy_tagged, want.taxonomy_tagged)


def test_columns_merged_in_blocks_are_the_columns_merged_row_by_row(shipped_records, fictional, tmp_path):
    """Rounds of inserts (between and after old ids), replacements (with values no other record
    holds, none at all, or sectors outside the taxonomy) and deletions, each merged from the last:
    the same ids, tables in the same order, codes, lists, names and taxonomy flags as before."""
    import random
    import sys

    import numpy as np

    from conftest import REPO
    from index._records import RecordColumns

    sys.path.insert(0, str(REPO / "bench"))
    from _synthetic import SyntheticCorpus

    synthetic = list(SyntheticCorpus(5).organisations(300))
    pool = {r.id: r for r in [*shipped_records, *fictional, *synthetic]}
    rng = random.Random(11)
    start = rng.sample(sorted(pool), len(pool) // 2)
    ids = sorted(start)
    columns = RecordColumns.merge(None, ids, np.full(len(ids), -1, np.int64), [pool[i] for i in ids])
    assert_same_columns(columns, reference_merge(None, ids, [pool[i] for i in ids]))
    columns.save(tmp_path)
    columns = RecordColumns.load(tmp_path)  # names as a loaded index holds them
    for round_ in range(6):
        held = set(columns.ids)
        outside = sorted(set(pool) - held)
        added = {i: pool[i] for i in rng.sample(outside, min(len(outside), rng.randint(0, 25)))}
        replaced = {}
        for rid in rng.sample(sorted(held), 15):
            change = rng.choice([
                {"city": f"Vila Fictícia {round_}", "region": None},
                {"country": "CN", "kind": "institution", "city": None},
                {"sectors": ["wine", "not-a-sector"]},
                {"sectors": []},
                {"name": f"Renomeada {rid}"},
            ])
            replaced[rid] = pool[rid].model_copy(update=change)
        gone = rng.sample(sorted(held - set(replaced)), rng.randint(0, 30))
        if round_ == 3:  # a round that deletes whole runs, the first and the last rows among them
            gone = [i for i in columns.ids[:10] + columns.ids[-10:] if i not in replaced]
        changed = {**added, **replaced}
        new_ids, rows = SearchEngine._row_plan(columns, changed, gone)
        assert new_ids == sorted((held - set(gone)) | set(added))
        assert all(rows[i] == (-1 if rid in changed else columns.row_of[rid]) for i, rid in enumerate(new_ids))
        records = [changed[new_ids[i]] for i in np.flatnonzero(rows < 0).tolist()]
        merged = RecordColumns.merge(columns, new_ids, rows, records)
        sources = [changed[rid] if rid in changed else columns.row_of[rid] for rid in new_ids]
        assert_same_columns(merged, reference_merge(columns, new_ids, sources))
        for pid, p in pool.items():
            if pid in changed:
                pool[pid] = changed[pid]
        columns = merged
    assert_same_columns(columns, reference_merge(None, columns.ids, [pool[i] for i in columns.ids]))  # as a fresh build


def test_records_file_copied_in_blocks_is_the_file_written_line_by_line(saved, fictional, encoder, tmp_path):
    """Unchanged records' lines are copied from the previous generation's file a run at a time:
    the file is byte for byte the one record_json writes line by line (separators escaped), its
    saved line ends are where its newlines are, through two changes before a save and a save of
    an engine that had saved before."""
    import numpy as np

    from index._storage import current_generation

    engine = SearchEngine.load(saved, encoder)
    by_id = {r.id: r for r in fictional}
    ids = sorted(by_id)
    template = {"kind": "company", "country": "PT", "lang": "pt", "sectors": [],
                "description": "Empresa fictícia de teste\u2028com separadores\u0085de linha."}
    first_new = Organisation.model_validate({**template, "id": "aaa-test-first", "name": "Primeira\u2029Fictícia"})
    last_new = Organisation.model_validate({**template, "id": "zzz-test-last", "name": "Última Fictícia"})
    middle = by_id[ids[len(ids) // 2]]
    changed = middle.model_copy(update={"description": middle.description + "\u2029Mais uma linha."})
    engine.delete([ids[0]])  # two changes before the file is written: the row plans compose
    engine.upsert([first_new, changed, last_new])
    final = {r.id: r for r in fictional if r.id != ids[0]} | {r.id: r for r in (first_new, changed, last_new)}

    def assert_written_as_line_by_line(root):
        gen = current_generation(root)
        data = (gen / "records.jsonl").read_bytes()
        assert data == b"".join(record_json(final[i]).encode("utf-8") + b"\n" for i in sorted(final))
        assert not any(sep in data.decode("utf-8") for sep in "\u2028\u2029\u0085")
        assert np.load(gen / "records-ends.npy").tolist() == np.flatnonzero(np.frombuffer(data, np.uint8) == 10).tolist()
        reloaded = SearchEngine.load(root, encoder)
        assert [record_json(reloaded.records[i]) for i in reloaded.records] == [record_json(final[i]) for i in sorted(final)]

    engine.save(tmp_path / "first")
    assert_written_as_line_by_line(tmp_path / "first")
    final[ids[3]] = final[ids[3]].model_copy(update={"city": "Viseu"})
    engine.upsert([final[ids[3]]])  # from the file this engine wrote: all of it copied but one line
    engine.delete([ids[-1]])
    del final[ids[-1]]
    engine.save(tmp_path / "second")
    assert_written_as_line_by_line(tmp_path / "second")
