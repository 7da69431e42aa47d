"""What the ranking needs of every record, as arrays; the records themselves read on demand.

A 10,000-record index once held every record as a pydantic object and rebuilt its filters and
keyword index in Python on each start (tens of seconds, hundreds of MB). Now each index
generation keeps, beside ``records.jsonl``: per-record filter codes and sector lists
(``RecordColumns``), and the keyword index (``_keywords.KeywordIndex``). A record is parsed
only when it is shown (``Records``, with a small cache of recent ones).
"""

from __future__ import annotations

import mmap
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import orjson

from corpus import STORED, Organisation, default_taxonomy, fold, record_json

from ._keywords import _gather, _load_strings, _merge_rows, _merged_indptr, _runs, _save_array, _save_strings
from ._npy import load as load_npy

FIELDS = ("country", "region", "city", "kind")  # one value a record
SECTOR_LISTS = ("tags", "about")  # its sector tags; what it is about (tags and sectors its texts name)
CACHED_RECORDS = 512
COPY_CHUNK = 16 << 20  # bytes of an old records.jsonl copied to a new one at a time


def value_key(value: str) -> str:
    """How filter values compare: accents and case folded."""
    return fold(value).strip()


_NAME_CUT = re.compile(r"\s[–—-]\s|[（(,]")


def name_key(name: str) -> str:
    """What a chat recognises an organisation by in a message: the start of one of its names,
    before a dash, bracket or comma ("APCOR - Associação ..." -> "apcor"), folded. Kept in the
    columns beside each name, worked out once when the record is written."""
    return fold(_NAME_CUT.split(name)[0]).strip()


def record_names(rec: Organisation) -> list[str]:
    """Its own name and its translations' names, each once."""
    return list(dict.fromkeys([rec.name, *(t.name for t in rec.i18n.values() if t.name)]))


def record_about(rec: Organisation) -> list[str]:
    """What the record is about for the floor: its sector tags and the sectors its own texts name
    (a record tagged 'wine' whose description says it now makes olive oil is about food too, and an
    ingested record without tags still matches by what it says it does)."""
    found = dict.fromkeys(rec.sectors)
    tax = default_taxonomy()
    for name, desc in rec.versions().values():
        found.update(dict.fromkeys(slug for slug, _ in tax.find(f"{name}. {desc} {rec.offers or ''}")))
    return list(found)


class _Candidates:
    """A table's values while columns are merged: the old table's, then those only new records
    hold (a value is its index here, a candidate code)."""

    def __init__(self, table: Sequence[str]):
        self.values = list(table)
        self._index = dict(zip(self.values, range(len(self.values))))

    def code(self, value: str | None) -> int:
        if not value:
            return -1
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self.values)
            self.values.append(value)
        return found

    def first_held(self, sequence: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The table of the values ``sequence`` (candidate codes, -1 for none) holds, in the order
        it first holds them, and the lookup array candidate code -> code in it (-1 -> -1)."""
        held = sequence[sequence >= 0]
        distinct, first = np.unique(held, return_index=True)
        by_first = distinct[np.argsort(first)]
        lookup = np.full(len(self.values) + 1, -1, np.int32)  # the extra last entry is where -1 reads
        lookup[by_first] = np.arange(len(by_first), dtype=np.int32)
        return [self.values[c] for c in by_first.tolist()], lookup


class RecordColumns:
    """Row -> country, region, city and kind codes (-1: none) and sector lists (CSR), rows in id
    order. Codes index ``tables[field]`` (the values as written; ``sector`` for both lists).
    Filters become boolean masks over rows, one numpy comparison a field."""

    def __init__(self, ids: list[str], tables: dict[str, list[str]], codes: dict[str, np.ndarray],
                 lists: dict[str, tuple[np.ndarray, np.ndarray]], taxonomy_tagged: np.ndarray,
                 names: "Sequence[list[str]]", name_keys: "Ragged | None" = None):
        self.ids = ids
        self.names = names  # row -> the record's names (its own and its translations'), to recognise it in a chat
        if name_keys is None:  # columns made directly: the keys from the names
            ragged = names if isinstance(names, Ragged) else Ragged.of(names)
            name_keys = Ragged([name_key(n) for n in ragged.flat], ragged.indptr)
        self.name_keys = name_keys  # row -> ``name_key`` of each of its names, in the same order
        self.row_of = dict(zip(ids, range(len(ids))))
        self.tables = tables
        self.codes = codes
        self.lists = lists
        self.taxonomy_tagged = taxonomy_tagged  # whether any of its tags is a taxonomy sector
        self._codes_by_key: dict[str, dict[str, list[int]]] = {}
        self._masks: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._mask_lock = threading.Lock()
        self._values: dict[str, list[str]] = {}
        self.keys = {f: [value_key(v) for v in tables[f]] for f in (*FIELDS, "sector")}
        self._sector_code = {slug: c for c, slug in enumerate(tables["sector"])}

    def __len__(self) -> int:
        return len(self.ids)

    # -- building -----------------------------------------------------------------------
    @classmethod
    def merge(cls, old: "RecordColumns | None", ids: list[str], rows: np.ndarray,
              records: Sequence[Organisation], derived: Mapping[str, Sequence[str]] | None = None) -> "RecordColumns":
        """Columns for ``ids``: row ``i`` copied from ``old``'s row ``rows[i]``, or where that is -1,
        read from the next of ``records``. Only ``records`` are read in Python: the old rows' codes
        go through a lookup array, their lists and names are copied a run of rows at a time. Values
        no row holds any more are dropped; each table lists its values in the order the rows first
        hold them (a sector: a row's tags, then what it is about), as a build of the same records."""
        rows = np.asarray(rows, np.int64)
        is_new = rows < 0
        kept, new_at = rows[~is_new], np.flatnonzero(is_new)
        if len(new_at) != len(records) or len(rows) != len(ids) or (old is None and len(kept)):
            raise ValueError("merge: rows, ids and records do not fit together")
        n = len(rows)
        codes: dict[str, np.ndarray] = {}
        tables: dict[str, list[str]] = {}
        for f in FIELDS:
            held = _Candidates(old.tables[f] if old is not None else [])
            extended = np.full(n, -1, np.int64)  # a candidate code a row
            extended[~is_new] = old.codes[f][kept] if old is not None else []
            extended[new_at] = [held.code(getattr(rec, f)) for rec in records]
            tables[f], lookup = held.first_held(extended)
            codes[f] = lookup[extended]
        sectors = _Candidates(old.tables["sector"] if old is not None else [])
        lists = {}
        derived = derived or {}

        def about(rec: Organisation) -> list[str]:  # its texts' sectors and those derived from its own labels
            return list(dict.fromkeys([*record_about(rec), *derived.get(rec.id, ())]))

        for name, read in (("tags", lambda rec: rec.sectors), ("about", about)):
            old_ptr, old_values = old.lists[name] if old is not None else (np.zeros(1, np.int64), np.zeros(0, np.int32))
            lists[name] = _merge_rows(old_ptr, old_values, rows, [[sectors.code(s) for s in read(rec)] for rec in records],
                                      np.int64)
        (tags_ptr, tags), (about_ptr, about) = lists["tags"], lists["about"]
        # the sequence a build reads sectors in (row 0's tags, row 0's about list, row 1's tags, ...):
        # tag i of row r is at i + about_ptr[r] in it, about entry k of row r at k + tags_ptr[r + 1]
        sequence = np.empty(len(tags) + len(about), np.int64)
        sequence[np.arange(len(tags)) + np.repeat(about_ptr[:-1], np.diff(tags_ptr))] = tags
        sequence[np.arange(len(about)) + np.repeat(tags_ptr[1:], np.diff(about_ptr))] = about
        tables["sector"], lookup = sectors.first_held(sequence)
        lists = {name: (ptr, lookup[values]) for name, (ptr, values) in lists.items()}
        tax = default_taxonomy()
        tagged = np.zeros(n, bool)
        tagged[~is_new] = old.taxonomy_tagged[kept] if old is not None else []
        tagged[new_at] = [any(s in tax for s in rec.sectors) for rec in records]
        old_names = Ragged.of(old.names if old is not None else [])
        new_names = [record_names(rec) for rec in records]
        names = old_names.merge(rows, new_names)
        old_keys = old.name_keys if old is not None else Ragged([], np.zeros(1, np.int64))
        keys = old_keys.merge(rows, [[name_key(n) for n in row] for row in new_names])
        return cls(ids, tables, codes, lists, tagged, names, keys)

    # -- persistence --------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        # ids and names as NUL-separated text, not JSON: parsing 16 MB of JSON held the GIL ~100 ms
        # at 100k records, a stall for every search of a process loading a new generation
        (folder / "columns.json").write_bytes(orjson.dumps({"tables": self.tables}))
        _save_strings(folder / "column-ids.txt", self.ids)
        names = self.names if isinstance(self.names, Ragged) else Ragged.of(self.names)
        _save_strings(folder / "column-names.txt", names.flat)
        _save_array(folder / "column-names-indptr.npy", names.indptr)
        _save_strings(folder / "column-name-keys.txt", self.name_keys.flat)  # aligned with the names
        for f in FIELDS:
            _save_array(folder / f"column-{f}.npy", self.codes[f])
        for name, (indptr, values) in self.lists.items():
            _save_array(folder / f"column-{name}-indptr.npy", indptr)
            _save_array(folder / f"column-{name}.npy", values)
        _save_array(folder / "column-taxonomy-tagged.npy", self.taxonomy_tagged)

    @classmethod
    def load(cls, folder: Path, pause: "Callable[[], object] | None" = None) -> "RecordColumns":
        pause = pause or (lambda: None)
        meta = orjson.loads((folder / "columns.json").read_bytes())
        codes = {f: load_npy(folder / f"column-{f}.npy") for f in FIELDS}
        lists = {name: (load_npy(folder / f"column-{name}-indptr.npy"), load_npy(folder / f"column-{name}.npy"))
                 for name in SECTOR_LISTS}
        indptr = load_npy(folder / "column-names-indptr.npy")
        names = Ragged(_load_strings(folder / "column-names.txt"), indptr)
        pause()
        keys = Ragged(_load_strings(folder / "column-name-keys.txt"), indptr)
        pause()
        ids = _load_strings(folder / "column-ids.txt")
        pause()
        return cls(ids, meta["tables"], codes, lists, load_npy(folder / "column-taxonomy-tagged.npy"), names, keys)

    # -- reading ------------------------------------------------------------------------
    def value(self, field: str, row: int) -> str | None:
        c = int(self.codes[field][row])
        return self.tables[field][c] if c >= 0 else None

    def sectors(self, name: str, row: int) -> list[str]:
        indptr, values = self.lists[name]
        table = self.tables["sector"]
        return [table[c] for c in values[indptr[row] : indptr[row + 1]].tolist()]

    def tagged(self, row: int) -> list[str]:
        """The sectors boosts and reasons go by: its tags, or what its texts name when none of its
        tags is a taxonomy sector."""
        return self.sectors("tags" if self.taxonomy_tagged[row] else "about", row)

    def column(self, field: str, rows: np.ndarray, keys: bool = False) -> list[str | None]:
        """The values of ``rows`` (their folded keys when ``keys``; None, or "" for keys, when unset)."""
        table = self.keys[field] if keys else self.tables[field]
        none = "" if keys else None
        return [table[c] if c >= 0 else none for c in np.asarray(self.codes[field])[rows].tolist()]

    def holding(self, rows: np.ndarray, slugs: Sequence[str], name: str) -> list[list[bool]]:
        """For each of ``rows``, whether its sector list ``name`` ("tags", "about", or "tagged": see
        ``tagged``) holds each of ``slugs``: a few numpy operations for a whole candidate list."""
        if name == "tagged":
            by_tags = np.asarray(self.holding(rows, slugs, "tags"), bool).reshape(len(rows), len(slugs))
            by_about = np.asarray(self.holding(rows, slugs, "about"), bool).reshape(len(rows), len(slugs))
            return np.where(np.asarray(self.taxonomy_tagged)[rows][:, None], by_tags, by_about).tolist()
        out = np.zeros((len(rows), len(slugs)), bool)
        if len(rows) and len(slugs):
            ptr, values = _gather(*self.lists[name], rows)
            owner = np.repeat(np.arange(len(rows)), np.diff(ptr))
            for j, slug in enumerate(slugs):
                code = self._sector_code.get(slug)
                if code is not None:
                    out[owner[values == code], j] = True
        return out.tolist()

    def values(self, field: str) -> list[str]:
        """Distinct values present (``sector``: the tags), the first row's spelling of each."""
        found = self._values.get(field)
        if found is None:
            if field == "sector":
                codes = np.asarray(self.lists["tags"][1])
            else:
                codes = np.asarray(self.codes[field])
            seen: dict[str, str] = {}
            for c in codes[codes >= 0].tolist():
                seen.setdefault(self.keys[field][c], self.tables[field][c])
            found = self._values[field] = sorted(seen.values())
        return found

    def mask(self, field: str, values: Sequence[str]) -> np.ndarray:
        """Rows holding any of ``values`` (folded keys compared); ``field`` may be ``sector``."""
        out = np.zeros(len(self.ids), bool)
        for v in values:
            out |= self._value_mask(field, value_key(v))
        return out

    def _value_mask(self, field: str, key: str) -> np.ndarray:
        with self._mask_lock:
            found = self._masks.get((field, key))
            if found is not None:
                self._masks.move_to_end((field, key))
                return found
        by_key = self._codes_by_key.get(field)
        if by_key is None:
            by_key = {}
            for c, k in enumerate(self.keys[field]):
                by_key.setdefault(k, []).append(c)
            self._codes_by_key[field] = by_key
        codes = by_key.get(key, [])
        if field == "sector":
            indptr, values = self.lists["tags"]
            hit = np.isin(values, codes)
            found = np.zeros(len(self.ids), bool)
            found[np.repeat(np.arange(len(self.ids)), np.diff(indptr))[hit]] = True
        else:
            found = np.isin(self.codes[field], codes)
        with self._mask_lock:
            self._masks[(field, key)] = found
            if len(self._masks) > 256:
                self._masks.popitem(last=False)
        return found


class Ragged(Sequence[list[str]]):
    """Rows of strings as one flat list and CSR offsets: row ``i`` is ``flat[indptr[i]:indptr[i + 1]]``
    (100k small lists cost a reload ~15 ms of GIL and megabytes of objects; this, two objects)."""

    def __init__(self, flat: list[str], indptr: np.ndarray):
        self.flat, self.indptr = flat, indptr

    @classmethod
    def of(cls, rows: Sequence[Sequence[str]]) -> "Ragged":
        if isinstance(rows, Ragged):
            return rows
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([len(r) for r in rows], out=indptr[1:])
        return cls([v for r in rows for v in r], indptr)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __iter__(self):
        flat, ptr = self.flat, self.indptr.tolist()
        return (flat[ptr[i] : ptr[i + 1]] for i in range(len(ptr) - 1))

    def merge(self, rows: np.ndarray, new: Sequence[Sequence[str]]) -> "Ragged":
        """Row ``i`` is this one's row ``rows[i]``, or where that is -1, the next of ``new``: the
        flat list is put together a run of old rows at a time (``_runs``), no list a row."""
        indptr = _merged_indptr(self.indptr, rows, new)
        flat: list[str] = []
        added = iter(new)
        for start, stop, old_start in _runs(rows):
            if old_start < 0:
                flat += next(added)
            else:
                flat += self.flat[int(self.indptr[old_start]) : int(self.indptr[old_start + stop - start])]
        return Ragged(flat, indptr)

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        return self.flat[int(self.indptr[row]) : int(self.indptr[row + 1])]


class _Lines:
    """The lines of a ``records.jsonl``, memory-mapped: readable after the generation is pruned."""

    def __init__(self, path: Path, ends: np.ndarray):
        """``ends``: where each line ends, as saved beside the file (``records-ends.npy``): finding
        them would read every page of it."""
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if len(ends) and int(ends[-1]) != size - 1:
            raise ValueError(f"{path}: its saved line ends do not fit the file ({int(ends[-1]) + 1} of {size} bytes)")
        self.starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if len(ends) else ends
        self.ends = ends

    def __len__(self) -> int:
        return len(self.ends)

    def line(self, i: int) -> bytes:
        return self._map[self.starts[i] : self.ends[i]]

    def copy(self, fh, first: int, stop: int) -> int:
        """Write lines ``first:stop`` (with their newlines) to ``fh`` as they are, a chunk at a
        time, each chunk's pages let go of once written: copying a 100 MB file through the map
        would otherwise leave all of it in this process's resident memory. The bytes written."""
        lo, hi = int(self.starts[first]), int(self.ends[stop - 1]) + 1
        with memoryview(self._map) as view:
            for at in range(lo, hi, COPY_CHUNK):
                end = min(at + COPY_CHUNK, hi)
                with view[at:end] as chunk:
                    fh.write(chunk)
                page = at - at % mmap.PAGESIZE
                self._map.madvise(mmap.MADV_DONTNEED, page, end - page)  # type: ignore[union-attr]
        return hi - lo


class Records(Mapping[str, Organisation]):
    """The indexed records by id, read from the generation's ``records.jsonl`` when asked for (a
    few hundred recent ones cached); records added since it was loaded are held as objects."""

    def __init__(self, lines: _Lines | None = None, ids: Sequence[str] = (), where: dict[str, int] | None = None):
        """``where``: id -> line, when the caller has it (the columns' ``row_of``: line i is row i);
        shared until this changes, then copied."""
        self._where: dict[str, int | Organisation] = where if where is not None else dict(zip(ids, range(len(ids))))
        self._shared = where is not None
        self._lines = lines
        self._cache: OrderedDict[str, Organisation] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, ids: Sequence[str], ends: np.ndarray,
             where: dict[str, int] | None = None) -> "Records":
        lines = _Lines(path, ends)
        if len(lines) != len(ids):
            raise ValueError(f"{path} holds {len(lines)} records, its columns {len(ids)}")
        return cls(lines, ids, where)

    def __len__(self) -> int:
        return len(self._where)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __contains__(self, rid: object) -> bool:
        return rid in self._where

    def __getitem__(self, rid: str) -> Organisation:
        where = self._where[rid]
        if isinstance(where, Organisation):
            return where
        with self._lock:
            rec = self._cache.get(rid)
            if rec is not None:
                self._cache.move_to_end(rid)
                return rec
        assert self._lines is not None
        rec = Organisation.model_validate_json(self._lines.line(where), context=STORED)
        with self._lock:
            self._cache[rid] = rec
            if len(self._cache) > CACHED_RECORDS:
                self._cache.popitem(last=False)
        return rec

    def _own(self) -> None:
        if self._shared:
            self._where, self._shared = dict(self._where), False

    def put(self, rec: Organisation) -> None:
        self._own()
        self._where[rec.id] = rec
        with self._lock:
            self._cache.pop(rec.id, None)

    def drop(self, rid: str) -> None:
        self._own()
        del self._where[rid]
        with self._lock:
            self._cache.pop(rid, None)

    def write(self, path: Path, ids: Sequence[str], lines: np.ndarray) -> np.ndarray:
        """Write the records ``ids`` to ``path`` one a line (``record_json``; line i is ``ids[i]``)
        and return where each line ends. ``lines[i]``: the line of this one's file that holds
        ``ids[i]`` as it is, or -1 for a record held as an object: each run of consecutive lines
        is copied from the mapped file as one block, only the others are made line by line."""
        ends = np.empty(len(ids), np.int64)
        written = 0
        with open(path, "wb") as fh:
            for start, stop, first in _runs(lines):
                if first < 0:
                    line = self.line(ids[start]) + b"\n"
                    fh.write(line)
                    written += len(line)
                    ends[start] = written - 1
                else:
                    assert self._lines is not None
                    last = first + stop - start
                    shift = written - int(self._lines.starts[first])
                    written += self._lines.copy(fh, first, last)
                    ends[start:stop] = self._lines.ends[first:last] + shift
        return ends

    def line(self, rid: str) -> bytes:
        """The record as its line of ``records.jsonl`` (``record_json``), without parsing it."""
        where = self._where[rid]
        if isinstance(where, Organisation):
            return record_json(where).encode("utf-8")
        assert self._lines is not None
        return self._lines.line(where)
