"""Index generations: building one from records, updating it, staging it on disk and loading it.

A generation is a folder (``_storage``) holding the two dense stores (raw and calibrated), the
calibration means, the keyword index, the filter columns and the records, written in full before
it is made current. ``Generation`` is the state of one and what builds, writes and reads it;
``SearchEngine`` (``_engine``) searches it.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from bisect import bisect_left
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import orjson

from corpus import Organisation, TermMatcher, default_lexicon, default_taxonomy, lines_hash, record_json

from ._build import FAST_MIN_TEXTS, encode_passages
from ._calibration import Calibration, load_query_samples
from ._npy import load as load_npy
from ._vector_cache import fixed_vectors
from ._config import SearchConfig
from ._encoders import Encoder
from ._keywords import KeywordIndex, _merge_rows, _runs, _save_array, tokenize
from ._records import RecordColumns, Records, value_key
from ._second import SecondVectors, encode_records, second_encoder
from ._sectors import SECTOR_VID_BASE, SectorMapper, sector_passage, sector_words
from ._storage import StagedGeneration, current_generation, new_generation_dir, stage_generation
from ._vectors import VectorStore, new_vector_store, open_vector_store

FORMAT_VERSION = 4  # 4: ids, names, terms, record sequences and vector ids as flat files a reload reads without JSON
# (3: keyword index, filter columns and record offsets as arrays; each dense store is files dense-*.*)
SLOTS = 16  # vector id = record sequence * SLOTS + language slot; corpus.MAX_LANGUAGES is the same limit
BASE_SLOTS = {"pt": 0, "zh": 1, "en": 2}
log = logging.getLogger("cpc.index")
_DERIVED_LOCK = threading.Lock()


class SearchIndexError(RuntimeError):
    """Base for index problems the caller should show as they are."""


class IndexMismatchError(SearchIndexError):
    """The index on disk was built with another model or format."""


class IndexMissingError(SearchIndexError):
    """No index has been built in the data folder yet."""




def passage_text(rec: Organisation, lang: str, name: str, description: str) -> str:
    """The text embedded for one language version: name, what and where, sectors, description."""
    lex, tax = default_lexicon(), default_taxonomy()
    where = ", ".join(p for p in (rec.city, rec.region, lex.country_label(rec.country, lang) if rec.country else "") if p)
    sectors = ", ".join(tax.label(s, lang) for s in rec.sectors)
    head = lex.kind_label(rec.kind, lang).capitalize() + (f" ({where})" if where else "")
    parts = [f"{name}. {head}.", sectors + "." if sectors else "", description]
    if lang == rec.lang:
        parts += [rec.offers or "", rec.seeks or ""]
    return " ".join(p for p in parts if p).strip()


_key = value_key



_key = value_key


class Generation:
    """One index generation in memory: its stores, columns and records, and how it is built,
    updated, staged and loaded."""

    def __init__(self, encoder: Encoder, config: SearchConfig | None = None, second: Encoder | None | str = "config"):
        self.encoder = encoder
        self.config = config or SearchConfig()
        # the second dense signal's encoder (index/_second.py): "config" loads SearchConfig.second's
        # (None there: off); a caller may pass its own (the scale bench's synthetic one) or None
        self.second: Encoder | None = second_encoder(self.config.second) if second == "config" else second  # type: ignore[assignment]
        self._second: SecondVectors | None = None  # its vectors by row
        self.records: Records = Records()  # read on access: only shown records are parsed
        self.calibration = Calibration()
        self.raw: VectorStore | None = None
        self.cal: VectorStore | None = None
        self.next_seq = 0
        self.lang_slots: dict[str, int] = dict(BASE_SLOTS)
        # record id -> its sequence and its vector ids: dicts while building or writing; a loaded
        # engine keeps them as arrays by row (_row_seq, _vid_ptr/_vid_flat) and makes the dicts
        # only when it writes (100k-entry dicts held a reload's GIL for 100 ms)
        self._seq: dict[str, int] | None = {}
        self._vids: dict[str, list[int]] | None = {}
        self._row_seq = np.zeros(0, np.int64)
        self._vid_ptr, self._vid_flat = np.zeros(1, np.int64), np.zeros(0, np.int64)
        self.manifest: dict = {}
        self.generation: str | None = None  # the generation folder it was loaded from
        self._rows: list[str] = []
        self._bm25: KeywordIndex | None = None
        self._columns: RecordColumns | None = None
        self._row_of_seq = np.zeros(0, np.int64)  # record sequence -> row, -1 for none
        self._record_lines = np.zeros(0, np.int64)  # row -> its line in the records' file, -1: held as an object
        self._places: TermMatcher | None = None
        # record id -> [[sector, confidence, source], ...] (``_sectors``): read from the generation's
        # derived-sectors.json only when asked for (staff views, a write)
        self._derived: dict[str, list] | None = {}
        self._derived_file = None
        self._mapper: SectorMapper | None = None

    @property
    def seq(self) -> dict[str, int]:
        """Record id -> its sequence (vector ids are sequence * SLOTS + language slot)."""
        return self._maps()[0]

    @property
    def vids(self) -> dict[str, list[int]]:
        """Record id -> its vector ids."""
        return self._maps()[1]

    def _maps(self) -> tuple[dict[str, int], dict[str, list[int]]]:
        """The two dicts, made from the row arrays the first time a loaded engine needs them."""
        if self._seq is None or self._vids is None:
            flat, ptr = self._vid_flat.tolist(), self._vid_ptr.tolist()
            self._seq = dict(zip(self._rows, self._row_seq.tolist()))
            self._vids = {rid: flat[ptr[row] : ptr[row + 1]] for row, rid in enumerate(self._rows)}
        return self._seq, self._vids

    def _vids_of_row(self, row: int) -> list[int]:
        return self._vid_flat[self._vid_ptr[row] : self._vid_ptr[row + 1]].tolist()

    # -- building -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        records: Sequence[Organisation],
        encoder: Encoder,
        config: SearchConfig | None = None,
        progress: Callable[[int, int], None] | None = None,
        query_samples: Iterable[tuple[str, str]] | None = None,
        calibration: Calibration | None = None,
        second: Encoder | None | str = "config",
    ) -> "Generation":
        """``calibration``: use these language means instead of fitting them on ``records`` (a small
        side index, e.g. the posts', shares the organisations' space; index/_posts.py). ``second``:
        the second signal's encoder (index/_second.py; "config": SearchConfig.second's)."""
        engine = cls(encoder, config, second)
        texts, vids, langs = engine._versions(records)
        samples = [] if calibration is not None else list(query_samples if query_samples is not None else load_query_samples())
        total = len(texts) + len(samples)  # one progress bar over passages and calibration queries
        raw = engine._encode_passages(texts, (lambda d, _t: progress(d, total)) if progress else None)
        # the calibration queries are the same every build: encoded once per model (index/_vector_cache.py)
        encoded = []

        def encode_queries(qs: list[str]) -> np.ndarray:
            encoded.append(len(qs))
            return engine._encode(qs, "query", (lambda d, _t: progress(len(texts) + d, total)) if progress else None)

        queries = fixed_vectors(engine.encoder, [t for _, t in samples], "query", encode_queries) if samples \
            else encode_queries([])
        if progress and not encoded:  # known vectors: the bar ends here
            progress(total, total)
        engine.calibration = calibration or Calibration.fit(raw, langs, lambda _q: queries, samples)
        ids = np.array(vids, np.int64)
        columns = engine._vector_columns(records)
        cfg = engine.config
        derived = engine._derive(records, raw)
        s_ids, s_raw, s_columns = engine._sector_passages(records, derived)
        engine.raw = new_vector_store(engine.encoder.dim, cfg.vector_url, cfg.exact_max, label="raw")
        engine.cal = new_vector_store(engine.encoder.dim, cfg.vector_url, cfg.exact_max, label="calibrated")
        # language versions and sector passages in one write, in that order: written after the
        # versions, the sector passages went to an HNSW store's delta (a third of it at 100k), and
        # the delta's rebuild built the graph a second time from the 8-bit codes
        engine.raw.upsert(np.concatenate([ids, s_ids]), np.vstack([raw, s_raw]), columns + s_columns)
        engine.cal.upsert(np.concatenate([ids, s_ids]), np.vstack([engine.calibration.apply_docs(raw, langs),
                                                                   engine._calibrate_sector(s_raw)]), columns + s_columns)
        engine._set_records(records, derived=derived)
        engine._stamp()
        return engine

    def _slot(self, lang: str) -> int:
        if lang not in self.lang_slots:
            free = sorted(set(range(SLOTS)) - set(self.lang_slots.values()))
            if not free:
                raise SearchIndexError(f"too many description languages (at most {SLOTS})")
            self.lang_slots[lang] = free[0]
        return self.lang_slots[lang]

    def language_overflow(self, records: Sequence[Organisation]) -> tuple[int, str] | None:
        """(position, why) of the first record whose languages no longer fit the index's slots,
        found before anything changes; None when they all fit."""
        taken = set(self.lang_slots)
        for position, rec in enumerate(records):
            for lang in rec.versions():
                if lang not in taken:
                    if len(taken) >= SLOTS:
                        return position, (f"language '{lang}' does not fit: the index holds at most {SLOTS} description"
                                          f" languages and has {', '.join(sorted(taken))}")
                    taken.add(lang)
        return None

    def _versions(self, records: Sequence[Organisation]) -> tuple[list[str], list[int], list[str]]:
        texts, vids, langs = [], [], []
        for rec in records:
            if rec.id not in self.seq:
                self.seq[rec.id] = self.next_seq
                self.next_seq += 1
            rec_vids = []
            for lang, (name, desc) in rec.versions().items():
                vid = self.seq[rec.id] * SLOTS + self._slot(lang)
                texts.append(passage_text(rec, lang, name, desc))
                vids.append(vid)
                langs.append(lang)
                rec_vids.append(vid)
            self.vids[rec.id] = rec_vids
        return texts, vids, langs

    @staticmethod
    def _vector_columns(records: Sequence[Organisation]) -> list[dict]:
        """The filter columns of each vector, in ``_versions`` order (one row per language version)."""
        out = []
        for rec in records:
            row = {"record": rec.id, "country": _key(rec.country or ""), "region": _key(rec.region or ""),
                   "city": _key(rec.city or ""), "kind": _key(rec.kind or ""), "sector": [_key(s) for s in rec.sectors]}
            out += [row] * len(rec.versions())
        return out

    def _encode_passages(self, texts: list[str], progress: Callable[[int, int], None] | None,
                         fast: bool = True, fast_min_texts: int = FAST_MIN_TEXTS) -> np.ndarray:
        """Through the fast build path when it serves this encoder (index/_build.py), ``fast`` and
        there are ``fast_min_texts`` or more, checkpointed."""
        vectors, path = encode_passages(self.encoder, texts, progress, fast=fast, fast_min_texts=fast_min_texts)
        if texts:
            self.manifest["build_paths"] = sorted({*self.manifest.get("build_paths", ()), path})
        return vectors

    def _sector_passages(self, records: Sequence[Organisation], derived: dict[str, list[str]], fast: bool = True,
                         fast_min_texts: int = FAST_MIN_TEXTS) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """Each record's sector passage (``_sectors.sector_passage``: names, place, derived sectors in
        pt, zh and en) as one more vector of the record (id ``SECTOR_VID_BASE`` + its sequence): a question in another
        language than the record's reaches it by what it does. After ``_derive``: it reads the sectors.
        Returns (ids, raw vectors, filter columns) for the stores; the records' vector ids include them."""
        texts, vids, rows = [], [], []
        for rec in records:
            text = sector_passage(rec, derived.get(rec.id, ()))
            if text:
                vid = SECTOR_VID_BASE + self.seq[rec.id]
                texts.append(text)
                vids.append(vid)
                rows.append({"record": rec.id, "country": _key(rec.country or ""), "region": _key(rec.region or ""),
                             "city": _key(rec.city or ""), "kind": _key(rec.kind or ""),
                             "sector": [_key(s) for s in rec.sectors]})
                self.vids[rec.id] = [*self.vids[rec.id], vid]
        if not texts:
            return np.zeros(0, np.int64), np.zeros((0, self.encoder.dim), np.float32), []
        return np.array(vids, np.int64), self._encode_passages(texts, None, fast, fast_min_texts), rows

    def _calibrate_sector(self, raw: np.ndarray) -> np.ndarray:
        return self.calibration.apply_docs(raw, ["*"] * len(raw))  # several languages: the overall mean

    def _add_sector_passages(self, records: Sequence[Organisation], derived: dict[str, list[str]],
                             fast: bool = True, fast_min_texts: int = FAST_MIN_TEXTS) -> None:
        """``_sector_passages`` written into the stores (an upsert: the language versions are there already)."""
        ids, raw, rows = self._sector_passages(records, derived, fast, fast_min_texts)
        if not len(ids):
            return
        assert self.raw is not None and self.cal is not None
        self.raw.upsert(ids, raw, rows)
        self.cal.upsert(ids, self._calibrate_sector(raw), rows)

    def _encode(self, texts: list[str], kind: str, progress: Callable[[int, int], None] | None) -> np.ndarray:
        out = []
        batch = 16
        for start in range(0, len(texts), batch):
            out.append(self.encoder.encode(texts[start : start + batch], kind))  # type: ignore[arg-type]
            if progress:
                progress(min(start + batch, len(texts)), len(texts))
        return np.vstack(out) if out else np.zeros((0, self.encoder.dim), np.float32)

    def _derive(self, records: Sequence[Organisation], raw: np.ndarray) -> dict[str, list[str]]:
        """Derived sectors of ``records`` (``raw``: their passage vectors in ``_versions`` order),
        kept with their confidence; returns those the gates may use, by record id."""
        if self._mapper is None:
            self._mapper = SectorMapper(self.encoder.encode)
        passages, at = {}, 0
        for rec in records:
            n = len(rec.versions())
            passages[rec.id], at = raw[at:at + n], at + n
        mapped = self._mapper.map_records(records, passages)
        held = self.derived
        for rid, found in mapped.items():
            held[rid] = [d.to_list() for d in found]
        return {rid: [d.sector for d in found if d.usable] for rid, found in mapped.items()}

    @property
    def derived(self) -> dict[str, list]:
        """Record id -> its derived sectors [[sector, confidence, source], ...], most confident first."""
        with _DERIVED_LOCK:
            if self._derived is None:
                with self._derived_file as fh:
                    self._derived = orjson.loads(fh.read())
            return self._derived

    def derived_sectors(self, rid: str) -> list[dict]:
        """What staff see of how a record was placed in the taxonomy."""
        return [{"sector": s, "confidence": c, "source": src} for s, c, src in self.derived.get(rid, [])]

    def _set_records(self, records: Iterable[Organisation], removed: Iterable[str] = (),
                     derived: dict[str, list[str]] | None = None) -> None:
        """Add or replace ``records`` and drop ``removed``: only those are tokenised and read; every
        other record's keyword and filter data is copied over from the arrays, a run of rows at a
        time (no Python object a record: an ingest of 20 records into 100k made 100k of them)."""
        changed = {rec.id: rec for rec in records}
        gone = [rid for rid in dict.fromkeys(removed) if rid in self.records and rid not in changed]
        for rid in gone:
            self.records.drop(rid)
        for rec in changed.values():
            self.records.put(rec)
        old_cols, old_bm25 = self._columns, self._bm25
        ids, rows = self._row_plan(old_cols, changed, gone)
        new_records = [changed[ids[i]] for i in np.flatnonzero(rows < 0).tolist()]
        derived = derived or {}
        self._bm25 = KeywordIndex.merge(old_bm25, rows, [self._keyword_text(rec, derived.get(rec.id, ()))
                                                         for rec in new_records])
        self._columns = RecordColumns.merge(old_cols, ids, rows, new_records, derived)
        self._merge_second(rows, new_records)
        lines = np.full(len(rows), -1, np.int64)  # a record changed here is written from the object
        lines[rows >= 0] = self._record_lines[rows[rows >= 0]]
        self._record_lines = lines
        self._after_rows(rows)

    @staticmethod
    def second_passages(rec: Organisation) -> list[str]:
        """What the second encoder reads of a record: each language version's passage, by language
        (a record read back from its file may list its versions in another order)."""
        return [passage_text(rec, lang, name, desc) for lang, (name, desc) in sorted(rec.versions().items())]

    def _merge_second(self, rows: np.ndarray, new_records: Sequence[Organisation]) -> None:
        """The second signal's vectors in step with the rows (``rows``: as ``_set_records``'s plan):
        only the changed records are encoded."""
        if self.second is None:
            self._second = None
            return
        if self._second is None or self._second.flat.shape[1] != self.second.dim:
            if (rows >= 0).any():  # held rows without vectors (cannot happen after ``load``): all anew
                self._second = None
                self._second = self._second_of_all([self._columns.ids[i] for i in range(len(rows))], new_records)
                return
            self._second = SecondVectors.empty(self.second.dim)
        vectors = encode_records(self.second, [self.second_passages(rec) for rec in new_records])
        self._second = self._second.merged(rows, vectors)

    def _second_of_all(self, ids: Sequence[str], fresh: Sequence[Organisation] = ()) -> SecondVectors:
        """Every row's second vectors encoded anew (a generation written before they existed)."""
        assert self.second is not None
        given = {rec.id: rec for rec in fresh}
        recs = [given.get(rid) or self.records[rid] for rid in ids]
        vectors = encode_records(self.second, [self.second_passages(rec) for rec in recs])
        return SecondVectors.empty(self.second.dim).merged(np.full(len(recs), -1, np.int64), vectors)

    @staticmethod
    def _row_plan(old: RecordColumns | None, changed: dict[str, Organisation],
                  gone: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The ids of the rows after a change (in id order) and where each row comes from: its row
        in ``old``, or -1 for a record of ``changed``. Worked out from the changed ids alone."""
        old_ids = old.ids if old is not None else []
        row_of = old.row_of if old is not None else {}
        keep = np.ones(len(old_ids), bool)
        keep[[row_of[rid] for rid in gone]] = False
        kept = np.flatnonzero(keep)
        added = sorted(rid for rid in changed if rid not in row_of)
        # a new id goes before the first kept old id above it (the old ids are sorted)
        rows = np.insert(kept, np.searchsorted(kept, [bisect_left(old_ids, rid) for rid in added]).astype(np.int64), -1)
        ids: list[str] = []
        new_ids = iter(added)
        for start, stop, first in _runs(rows):
            if first < 0:
                ids.append(next(new_ids))
            else:
                ids += old_ids[first : first + stop - start]
        replaced = [row_of[rid] for rid in changed if rid in row_of]
        if replaced:
            position = np.full(len(old_ids), -1, np.int64)
            position[kept] = np.flatnonzero(rows >= 0)
            rows[position[replaced]] = -1
        return ids, rows

    @staticmethod
    def _keyword_text(rec: Organisation, derived: Sequence[str] = ()) -> list[str]:
        """The record's words, and its derived sectors' words in pt, zh and en (``_sectors.sector_words``):
        a question in one language finds a record written in another by what it does."""
        text = " ".join(f"{n} {d}" for n, d in rec.versions().values())
        return tokenize(" ".join([text, rec.offers or "", rec.seeks or "", " ".join(rec.sectors), sector_words(derived, synonyms=False)]))

    def _after_rows(self, rows: np.ndarray | None = None) -> None:
        """Row lookups derived from the columns (after a load or an update): numpy work only when
        loaded; after a write, the arrays are remade from the dicts for the rows that ``rows``
        (the old row of each row, -1 for a changed record) says changed, copied for the others."""
        assert self._columns is not None
        self._rows = self._columns.ids
        if self._seq is not None and self._vids is not None:  # built or written here: the dicts lead
            seq, vids = self._seq, self._vids
            if rows is None:
                rows = np.full(len(self._rows), -1, np.int64)
            new_ids = [self._rows[i] for i in np.flatnonzero(rows < 0).tolist()]
            row_seq = np.empty(len(rows), np.int64)
            row_seq[rows >= 0] = self._row_seq[rows[rows >= 0]]
            row_seq[rows < 0] = [seq[rid] for rid in new_ids]
            self._row_seq = row_seq
            self._vid_ptr, self._vid_flat = _merge_rows(self._vid_ptr, self._vid_flat, rows,
                                                        [vids[rid] for rid in new_ids], np.int64)
        size = max(self.next_seq, int(self._row_seq.max()) + 1 if len(self._row_seq) else 0)
        self._row_of_seq = np.full(size, -1, np.int64)
        self._row_of_seq[self._row_seq] = np.arange(len(self._row_seq))
        self._places = None


    def _stamp(self) -> None:
        self.manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": self.encoder.model_id,
            "dim": self.encoder.dim,
            "calibration": {
                "doc_languages": sorted(k for k in self.calibration.doc_means if k != "*"),
                "query_languages": sorted(k for k in self.calibration.query_means if k != "*"),
                "enabled_by_default": self.config.calibrate,
            },
            "corpus_hash": lines_hash(self.records.line(rid) for rid in self._rows),  # rows are in id order
            "built_at": self.manifest.get("built_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "records": len(self.records),
            "vectors": len(self.raw) if self.raw else 0,
            "index_type": self.raw.kind if self.raw else None,
            "build_paths": self.manifest.get("build_paths", []),  # how passages were encoded (index/_build.py)
            "second_model": self.second.model_id if self.second is not None else None,  # index/_second.py
        }

    # -- updates without a rebuild ------------------------------------------------------
    def upsert(self, records: Sequence[Organisation], progress: Callable[[int, int], None] | None = None,
               fast: bool = True, fast_min_texts: int = FAST_MIN_TEXTS) -> None:
        """Add or replace records: their vectors are re-encoded, the rest stay as they are. ``fast``:
        the build path may encode them (not in a serving process: see ``Catalog.serving``)."""
        if not records:
            return
        old = [v for r in records for v in self.vids.get(r.id, [])]
        texts, vids, langs = self._versions(records)
        raw = self._encode_passages(texts, progress, fast, fast_min_texts)
        assert self.raw is not None and self.cal is not None
        gone = np.array(sorted(set(old) - set(vids)), np.int64)  # a language version the record no longer has
        self.raw.delete(gone)
        self.cal.delete(gone)
        ids, columns = np.array(vids, np.int64), self._vector_columns(records)
        self.raw.upsert(ids, raw, columns)
        self.cal.upsert(ids, self.calibration.apply_docs(raw, langs), columns)
        derived = self._derive(records, raw)
        self._add_sector_passages(records, derived, fast, fast_min_texts)
        self._set_records(records, derived=derived)
        self._stamp()

    def delete(self, ids: Iterable[str]) -> list[str]:
        gone = [i for i in ids if i in self.records]
        vids = np.array([v for i in gone for v in self.vids.get(i, [])], np.int64)
        if self.raw is not None and self.cal is not None:
            self.raw.delete(vids)
            self.cal.delete(vids)
        held = self.derived
        for i in gone:
            self.vids.pop(i, None)
            self.seq.pop(i, None)
            held.pop(i, None)
        self._set_records([], gone)
        self._stamp()
        return gone

    def sync(self, records: Sequence[Organisation]) -> tuple[int, int]:
        """Bring the index in line with the record store: (upserted, deleted)."""
        want = {r.id: r for r in records}
        changed = [r for r in records
                   if r.id not in self.records or self.records.line(r.id) != record_json(r).encode("utf-8")]
        removed = [i for i in self.records if i not in want]
        while overflow := self.language_overflow(changed):  # stored before the schema limited languages
            position, why = overflow
            log.error("record %s stays out of the index: %s; fix or delete it", changed[position].id, why)
            del changed[position]
        if removed:
            self.delete(removed)
        if changed:
            self.upsert(changed)
        return len(changed), len(removed)

    # -- persistence --------------------------------------------------------------------
    def save(self, root: str | Path) -> Path:
        """Write a new generation and make it current."""
        return self.stage(root).publish()

    def stage(self, root: str | Path) -> StagedGeneration:
        """Write a new generation in full, not yet current; a failed write (a full disk) leaves no
        temp folder behind."""
        assert self.raw is not None and self.cal is not None
        tmp = new_generation_dir(Path(root))
        try:
            self.raw.save(tmp, "dense-raw")
            self.cal.save(tmp, "dense-calibrated")
            self.calibration.save(tmp / "calibration.npz")
            assert self._bm25 is not None and self._columns is not None
            # in row order, one line each (separators escaped): line i is row i; unchanged records'
            # lines are copied from the previous generation's file in blocks
            ends = self.records.write(tmp / "records.jsonl", self._rows, self._record_lines)
            _save_array(tmp / "records-ends.npy", ends)  # a reload need not read the whole file to find its lines
            # from now on read from the file just written: a built or updated engine holds no records
            # as objects either (the mapping outlives a rename or removal of the folder)
            self.records = Records.open(tmp / "records.jsonl", self._rows, ends)
            self._record_lines = np.arange(len(self._rows), dtype=np.int64)
            self._bm25.save(tmp)
            self._columns.save(tmp)
            (tmp / "derived-sectors.json").write_bytes(orjson.dumps(self.derived))
            if self._second is not None:
                self._second.save(tmp)
                if not self._second.exact:  # a large matrix is read from the file just written, not held
                    self._second = SecondVectors.load(tmp) or self._second
            _save_array(tmp / "row-seq.npy", self._row_seq)
            _save_array(tmp / "row-vids-indptr.npy", self._vid_ptr)
            _save_array(tmp / "row-vids.npy", self._vid_flat)
            (tmp / "state.json").write_text(json.dumps({"next_seq": self.next_seq, "lang_slots": self.lang_slots}),
                                            encoding="utf-8")
            (tmp / "manifest.json").write_text(json.dumps(self.manifest, indent=2), encoding="utf-8")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return stage_generation(tmp)

    @staticmethod
    def read_manifest(root: str | Path) -> dict | None:
        gen = current_generation(Path(root))
        if gen is None:
            return None
        return json.loads((gen / "manifest.json").read_text(encoding="utf-8"))

    @classmethod
    def load(cls, root: str | Path, encoder: Encoder, config: SearchConfig | None = None,
             pause: Callable[[], object] | None = None, second: Encoder | None | str = "config") -> "Generation":
        """The current generation in ``root``. ``pause`` is called between the steps: a serving
        process loading a new generation beside its searches sleeps a moment there, so a search
        waiting for the interpreter gets it at once (each step holds it ~10-20 ms at 100k).
        ``second``: the second signal's encoder, as for ``build``."""
        pause = pause or (lambda: None)
        gen = current_generation(Path(root))
        if gen is None:
            raise IndexMissingError(f"no index in {root}: run `cpc index build` first")
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index in {gen} has format {manifest.get('format_version')}, this version reads {FORMAT_VERSION}:"
                " rebuild it with `cpc index build`"
            )
        if manifest.get("model_id") != encoder.model_id or manifest.get("dim") != encoder.dim:
            raise IndexMismatchError(
                f"the index in {gen} was built with model '{manifest.get('model_id')}' ({manifest.get('dim')}-d),"
                f" but the configured model is '{encoder.model_id}' ({encoder.dim}-d): rebuild it with"
                " `cpc index build` or set CPC_MODEL to the index's model"
            )
        engine = cls(encoder, config, second)
        try:
            engine.raw = open_vector_store(gen, "dense-raw", engine.config.vector_url)
            pause()
            engine.cal = open_vector_store(gen, "dense-calibrated", engine.config.vector_url)
            pause()
        except LookupError as exc:  # a Milvus collection the generation refers to is gone
            raise IndexMismatchError(str(exc)) from exc
        engine.calibration = Calibration.load(gen / "calibration.npz")
        state = json.loads((gen / "state.json").read_text(encoding="utf-8"))
        engine.next_seq, engine.lang_slots = state["next_seq"], state["lang_slots"]
        engine._seq = engine._vids = None  # made from these arrays if this engine writes
        engine._row_seq = load_npy(gen / "row-seq.npy")
        engine._vid_ptr, engine._vid_flat = load_npy(gen / "row-vids-indptr.npy"), load_npy(gen / "row-vids.npy")
        engine.manifest = manifest
        engine.generation = gen.name
        pause()
        engine._columns = RecordColumns.load(gen, pause)
        pause()
        engine._bm25 = KeywordIndex.load(gen)
        pause()
        engine.records = Records.open(gen / "records.jsonl", engine._columns.ids, load_npy(gen / "records-ends.npy", mmap_mode="r"),
                                      where=engine._columns.row_of)  # line i is row i
        engine._record_lines = np.arange(len(engine._columns.ids), dtype=np.int64)
        try:  # opened now, read when asked: readable after the folder is pruned, no parse on a reload
            engine._derived, engine._derived_file = None, open(gen / "derived-sectors.json", "rb")
        except FileNotFoundError:  # a generation written before sectors were derived
            engine._derived = {}
        engine._after_rows()
        if engine.second is not None:
            held = SecondVectors.load(gen)
            if held is None or manifest.get("second_model") != engine.second.model_id or len(held) != len(engine._rows):
                # written before the second signal (or with another second encoder): encoded now, once;
                # the next write keeps them
                log.warning("index %s has no %s vectors: encoding %d records now", gen.name,
                            engine.second.model_id, len(engine._rows))
                held = engine._second_of_all(engine._rows)
            engine._second = held
            pause()
        return engine

