"""The search core: dense (FAISS) + keyword (BM25) ranking with filters and soft boosts.

Pure Python objects, no HTTP: the API, the assistant and the evaluation all call
``SearchEngine.search``. Every language version of a record is a vector; a record scores
by its best version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np

from corpus import Organisation, Place, TermMatcher, default_lexicon, default_taxonomy, lines_hash, record_json
from corpus import fold

from ._build import FAST_MIN_TEXTS, encode_passages
from ._calibration import Calibration, load_query_samples
from ._encoders import QUERY_CHARS_MAX, Encoder, cap_text, encoder_executor
from ._keywords import KeywordIndex, _merge_rows, _runs, _save_array, tokenize
from ._normalise import vocabulary_of, warm as warm_normalise
from ._query import QueryAnalysis, analyse, analyse_record
from ._records import RecordColumns, Records, record_about, value_key
from ._storage import StagedGeneration, current_generation, new_generation_dir, stage_generation
from ._vectors import VectorFilter, VectorStore, new_vector_store, open_vector_store

FORMAT_VERSION = 4  # 4: ids, names, terms, record sequences and vector ids as flat files a reload reads without JSON
# (3: keyword index, filter columns and record offsets as arrays; each dense store is files dense-*.*)
SLOTS = 16  # vector id = record sequence * SLOTS + language slot; corpus.MAX_LANGUAGES is the same limit
BASE_SLOTS = {"pt": 0, "zh": 1, "en": 2}
Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
log = logging.getLogger("cpc.index")


class SearchIndexError(RuntimeError):
    """Base for index problems the caller should show as they are."""


class IndexMismatchError(SearchIndexError):
    """The index on disk was built with another model or format."""


class IndexMissingError(SearchIndexError):
    """No index has been built in the data folder yet."""


FLOOR_FILE = Path(__file__).parent / "data" / "floor.json"


def load_floor(path: Path = FLOOR_FILE) -> dict[str, dict[str, float]] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["languages"]
    except FileNotFoundError:
        return None


@dataclass
class SearchConfig:
    """Ranking knobs: set before the dev set existed; its tuning half confirmed them (eval/)."""

    calibrate: bool = True
    w_dense: float = 1.0
    w_bm25: float = 0.2
    bm25_floor: float = 6.0  # BM25 scores are divided by max(best score, floor)
    boost_sector: float = 0.08
    boost_country: float = 0.06
    boost_kind: float = 0.03
    boost_place: float = 0.05
    boost_complement: float = 0.05  # a sector that fits the asker's by the value chain
    # What is embedded of a query is capped (CPC_QUERY_CHARS_MAX; a Chinese character counts two):
    # encoder time grows faster than the text. Needs analysis and keywords still read all of it.
    encode_chars_max: int = QUERY_CHARS_MAX
    exact_max: int = 50_000
    vector_url: str | None = None  # CPC_VECTOR_URL: None keeps the vectors in FAISS, else a Milvus server or milvus-lite file
    min_candidates: int = 100
    # The relevance floor (hybrid mode): a hit is a match only when it is where the partner was
    # asked for, does what was asked (a sought or complementary sector) or reads very close to
    # the query, and scores above its language's floor. Fitted on the dev sets' tuning halves
    # (index/data/floor.json, `cpc eval --fit-floor`); None turns the floor off.
    floor: dict[str, dict[str, float]] | None = field(default_factory=lambda: load_floor())

    def floor_for(self, lang: str) -> dict[str, float] | None:
        if self.floor is None:
            return None
        return self.floor.get(lang) or self.floor.get("*")


@dataclass
class Filters:
    """Hard filters; a record must match every non-empty field (any value within a field)."""

    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    exclude_countries: tuple[str, ...] = ()
    exclude_regions: tuple[str, ...] = ()
    exclude_cities: tuple[str, ...] = ()
    exclude_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass
class Hit:
    record: Organisation
    score: float
    dense: float
    keyword: float
    sectors: list[str] = field(default_factory=list)  # query sectors the record has
    terms: list[str] = field(default_factory=list)  # query keywords found in the record
    signals: list[str] = field(default_factory=list)  # "country", "kind", "place" boosts that applied
    complements: list[str] = field(default_factory=list)  # its sectors that complement the asker's
    on_topic: bool = False  # its tags or its texts name a sector the query asked for or complements


@dataclass
class SearchResult:
    analysis: QueryAnalysis
    total: int
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    nearest: list[Hit] = field(default_factory=list)  # below the floor: shown only as "nearest", never as matches

    @property
    def embedded(self) -> str:
        """What was embedded of the partner description (see SearchConfig.encode_chars_max)."""
        return cap_text(self.analysis.focus, self.encode_chars_max)[0]

    @property
    def truncated(self) -> bool:
        """Whether only the start of the partner description was embedded."""
        return self.embedded != self.analysis.focus

    encode_chars_max: int = QUERY_CHARS_MAX


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


@dataclass
class _Shown:
    """What the floor and the order need of a candidate before its record is read: most are never shown."""

    id: str
    country: str | None


class SearchEngine:
    def __init__(self, encoder: Encoder, config: SearchConfig | None = None):
        self.encoder = encoder
        self.config = config or SearchConfig()
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
    ) -> "SearchEngine":
        engine = cls(encoder, config)
        texts, vids, langs = engine._versions(records)
        samples = list(query_samples if query_samples is not None else load_query_samples())
        total = len(texts) + len(samples)  # one progress bar over passages and calibration queries
        raw = engine._encode_passages(texts, (lambda d, _t: progress(d, total)) if progress else None)
        queries = engine._encode(
            [t for _, t in samples], "query", (lambda d, _t: progress(len(texts) + d, total)) if progress else None
        )
        engine.calibration = Calibration.fit(raw, langs, lambda _q: queries, samples)
        ids = np.array(vids, np.int64)
        columns = engine._vector_columns(records)
        cfg = engine.config
        engine.raw = new_vector_store(engine.encoder.dim, cfg.vector_url, cfg.exact_max, label="raw")
        engine.cal = new_vector_store(engine.encoder.dim, cfg.vector_url, cfg.exact_max, label="calibrated")
        engine.raw.upsert(ids, raw, columns)
        engine.cal.upsert(ids, engine.calibration.apply_docs(raw, langs), columns)
        engine._set_records(records)
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

    def _encode(self, texts: list[str], kind: str, progress: Callable[[int, int], None] | None) -> np.ndarray:
        out = []
        batch = 16
        for start in range(0, len(texts), batch):
            out.append(self.encoder.encode(texts[start : start + batch], kind))  # type: ignore[arg-type]
            if progress:
                progress(min(start + batch, len(texts)), len(texts))
        return np.vstack(out) if out else np.zeros((0, self.encoder.dim), np.float32)

    def _set_records(self, records: Iterable[Organisation], removed: Iterable[str] = ()) -> None:
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
        self._bm25 = KeywordIndex.merge(old_bm25, rows, [self._keyword_text(rec) for rec in new_records])
        self._columns = RecordColumns.merge(old_cols, ids, rows, new_records)
        lines = np.full(len(rows), -1, np.int64)  # a record changed here is written from the object
        lines[rows >= 0] = self._record_lines[rows[rows >= 0]]
        self._record_lines = lines
        self._after_rows(rows)

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
    def _keyword_text(rec: Organisation) -> list[str]:
        text = " ".join(f"{n} {d}" for n, d in rec.versions().values())
        return tokenize(" ".join([text, rec.offers or "", rec.seeks or "", " ".join(rec.sectors)]))

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

    def sectors_of(self, rec: Organisation) -> set[str]:
        """What the record is about for the floor (``_records.record_about``): read from the
        columns for an indexed record."""
        row = self._columns.row_of.get(rec.id) if self._columns is not None else None
        if row is not None:
            return set(self._columns.sectors("about", row))
        return set(record_about(rec))

    def named_in(self, folded: str, first: Sequence[str] = ()) -> str | None:
        """The record a folded message names: the first of ``first``, then in id order, one of
        whose names' ``name_key`` (4 characters or more) occurs in it; None if none does. Read
        from the columns (no record is parsed, nothing is worked out per message or per engine)."""
        cols = self._columns
        if cols is None:
            return None
        keys = cols.name_keys
        for rid in first:
            row = cols.row_of.get(rid)
            if row is not None and any(len(k) >= 4 and k in folded for k in keys[row]):
                return rid
        for i, k in enumerate(keys.flat):
            if len(k) >= 4 and k in folded:
                return cols.ids[int(np.searchsorted(keys.indptr, i, side="right")) - 1]
        return None

    def analyse(self, query: str) -> QueryAnalysis:
        """The query as understood, normalised against this generation's vocabulary (_normalise)."""
        return analyse(query, extra_places=self.record_places, vocabulary=vocabulary_of(self._columns))

    def record_places(self, text: str) -> list[Place]:
        """Regions and cities of the records named in ``text``, also those the shipped lexicon does
        not know: a newly ingested record's city is understood at once."""
        return [place for place, _, _ in self.record_place_mentions(text)]

    def warm(self, pause: Callable[[], object] | None = None) -> None:
        """Work out what the first searches of a newly loaded engine would otherwise work out
        inline (the record places' matcher, the filter values): whoever loads a generation calls
        this before swapping it in, so no search pays for it (``pause``: see ``load``)."""
        self.record_place_mentions("")
        warm_normalise(self._columns)  # the normalisation vocabulary and its tools
        for key in ("country", "region", "city", "kind", "sector"):
            if pause:
                pause()
            self.values(key)

    def record_place_mentions(self, text: str) -> list[tuple[Place, str, int]]:
        """As ``record_places``, with the term found and its offset (for exclusions: "without X")."""
        if self._places is None:
            lex = default_lexicon()
            pairs = []
            cols = self._columns
            columns: list[list] = [[], [], []]
            if cols is not None and len(cols):  # each distinct (country, region, city) once
                stacked = np.stack([np.asarray(cols.codes[f], np.int64) + 1 for f in ("country", "region", "city")], 1)
                sizes = stacked.max(0) + 1
                keys = (stacked[:, 0] * sizes[1] + stacked[:, 1]) * sizes[2] + stacked[:, 2]  # one int a triple:
                first = np.unique(keys, return_index=True)[1]  # unique(axis=0) held the GIL ~60 ms at 100k
                codes = stacked[np.sort(first)] - 1  # in row order, as each first occurs (the first spelling wins)
                columns = [[cols.tables[f][c] if c >= 0 else None for c in codes[:, i].tolist()]
                           for i, f in enumerate(("country", "region", "city"))]
            for country, region, city in zip(*columns):
                for level, value in (("region", region), ("city", city)):
                    if value and lex.place(value) is None and len(fold(value)) >= 3:
                        pairs.append((value, Place(value, country, level, region if level == "city" else None, {})))
            self._places = TermMatcher(pairs)
        return self._places.find(text)

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
        self._set_records(records)
        self._stamp()

    def delete(self, ids: Iterable[str]) -> list[str]:
        gone = [i for i in ids if i in self.records]
        vids = np.array([v for i in gone for v in self.vids.get(i, [])], np.int64)
        if self.raw is not None and self.cal is not None:
            self.raw.delete(vids)
            self.cal.delete(vids)
        for i in gone:
            self.vids.pop(i, None)
            self.seq.pop(i, None)
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
             pause: Callable[[], object] | None = None) -> "SearchEngine":
        """The current generation in ``root``. ``pause`` is called between the steps: a serving
        process loading a new generation beside its searches sleeps a moment there, so a search
        waiting for the interpreter gets it at once (each step holds it ~10-20 ms at 100k)."""
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
        engine = cls(encoder, config)
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
        engine._row_seq = np.load(gen / "row-seq.npy")
        engine._vid_ptr, engine._vid_flat = np.load(gen / "row-vids-indptr.npy"), np.load(gen / "row-vids.npy")
        engine.manifest = manifest
        engine.generation = gen.name
        pause()
        engine._columns = RecordColumns.load(gen, pause)
        pause()
        engine._bm25 = KeywordIndex.load(gen)
        pause()
        engine.records = Records.open(gen / "records.jsonl", engine._columns.ids, np.load(gen / "records-ends.npy", mmap_mode="r"),
                                      where=engine._columns.row_of)  # line i is row i
        engine._record_lines = np.arange(len(engine._columns.ids), dtype=np.int64)
        engine._after_rows()
        return engine

    # -- search -------------------------------------------------------------------------
    def allowed_mask(self, filters: Filters | None) -> np.ndarray | None:
        """The rows ``filters`` allow, as a boolean mask over rows (None: no filter)."""
        if filters is None or filters.is_empty() or self._columns is None:
            return None
        cols = self._columns
        allowed = np.ones(len(cols), bool)
        for key, values in (("country", filters.countries), ("region", filters.regions), ("city", filters.cities),
                            ("kind", filters.kinds), ("sector", filters.sectors)):
            if values:
                allowed &= cols.mask(key, values)
        for key, values in (("country", filters.exclude_countries), ("region", filters.exclude_regions),
                            ("city", filters.exclude_cities)):
            if values:
                allowed &= ~cols.mask(key, values)
        for rid in filters.exclude_ids:
            row = cols.row_of.get(rid)
            if row is not None:
                allowed[row] = False
        return allowed

    def allowed_rows(self, filters: Filters | None) -> np.ndarray | None:
        mask = self.allowed_mask(filters)
        return None if mask is None else np.flatnonzero(mask)

    @staticmethod
    def vector_filter(filters: Filters | None) -> VectorFilter | None:
        """The hard filters as the vector store applies them inside its search (folded keys, ids as they are)."""
        if filters is None or filters.is_empty():
            return None
        keys = lambda values: tuple(_key(v) for v in values)  # noqa: E731
        return VectorFilter(
            include=(("country", keys(filters.countries)), ("region", keys(filters.regions)), ("city", keys(filters.cities)),
                     ("kind", keys(filters.kinds)), ("sector", keys(filters.sectors))),
            exclude=(("country", keys(filters.exclude_countries)), ("region", keys(filters.exclude_regions)),
                     ("city", keys(filters.exclude_cities)), ("record", tuple(filters.exclude_ids))),
        )

    def values(self, key: str) -> list[str]:
        """Distinct values present for a filterable field (country, region, city, kind, sector)."""
        return self._columns.values(key) if self._columns is not None else []

    def encode_query(self, text: str, lang: str, calibrate: bool) -> np.ndarray:
        """The query vector of ``text`` (capped: encoder time grows with the text, see SearchConfig)."""
        q = self.encoder.encode([cap_text(text, self.config.encode_chars_max)[0]], "query")[0]
        return self.calibration.apply_query(q, lang) if calibrate else q

    async def asearch(
        self,
        query: str,
        filters: Filters | None = None,
        limit: int = 10,
        offset: int = 0,
        mode: Mode = "hybrid",
        calibrate: bool | None = None,
    ) -> SearchResult:
        """``search`` for an event loop: only the encoder call leaves the loop, straight onto the
        encoder's own thread; the rest (~1 ms of ranking) runs in place, saving two thread hops."""
        t0 = time.perf_counter()
        calibrate = self.config.calibrate if calibrate is None else calibrate
        a = self.analyse(query)
        qv = None
        encoded = None
        if mode in ("hybrid", "dense"):
            loop = asyncio.get_running_loop()
            t = time.perf_counter()
            qv = await loop.run_in_executor(encoder_executor(self.encoder), self.encode_query, a.focus, a.lang, calibrate)
            encoded = time.perf_counter() - t
        result = self.search(query, filters, limit, offset, mode, calibrate, analysis=a, query_vector=qv)
        if encoded is not None:  # the same timings a plain search reports
            result.timings["encode"] = encoded
        result.timings["total"] = time.perf_counter() - t0
        return result

    def search(
        self,
        query: str,
        filters: Filters | None = None,
        limit: int = 10,
        offset: int = 0,
        mode: Mode = "hybrid",
        calibrate: bool | None = None,
        analysis: QueryAnalysis | None = None,
        query_vector: np.ndarray | None = None,
        use_floor: bool = True,
        other_side: bool = True,
    ) -> SearchResult:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        t0 = time.perf_counter()
        cfg = self.config
        calibrate = cfg.calibrate if calibrate is None else calibrate
        a = analysis or self.analyse(query)
        mask = self.allowed_mask(filters)
        rows = None if mask is None else np.flatnonzero(mask)
        n_allowed = len(self._rows) if rows is None else len(rows)
        timings: dict[str, float] = {"analyse": time.perf_counter() - t0}
        need = offset + limit
        if n_allowed == 0 or need <= 0:
            return SearchResult(a, 0, [], timings, encode_chars_max=cfg.encode_chars_max)

        dense: dict[int, float] = {}
        qv = None
        if mode in ("hybrid", "dense"):
            t = time.perf_counter()
            qv = query_vector if query_vector is not None else self.encode_query(a.focus, a.lang, calibrate)
            timings["encode"] = time.perf_counter() - t
            index = self.cal if calibrate else self.raw
            assert index is not None
            k = max(cfg.min_candidates, need * 2 * max(1, len(self.lang_slots)))
            scores, vids = index.search(qv, k, self.vector_filter(filters))
            seqs = np.asarray(vids, np.int64) // SLOTS
            known = (seqs >= 0) & (seqs < len(self._row_of_seq))
            found = np.full(len(seqs), -1, np.int64)
            found[known] = self._row_of_seq[seqs[known]]
            for s, row in zip(scores.tolist(), found.tolist()):
                if row >= 0 and s > dense.get(row, -9.0):
                    dense[row] = s

        keyword = np.zeros(len(self._rows), np.float64)  # row -> BM25 score over the best allowed one
        kw_rows = np.zeros(0, np.int64)  # rows with a keyword score, in row order
        q_tokens = a.tokens + a.expansion
        if mode in ("hybrid", "bm25") and q_tokens and self._bm25 is not None:
            t = time.perf_counter()
            bm = self._bm25.scores(q_tokens)
            if mask is not None:
                bm[~mask] = 0.0
            best = float(bm.max()) if len(bm) and (mask is None or mask.any()) else 0.0
            top = max(best, cfg.bm25_floor if mode == "hybrid" else 1e-9)
            kw_rows = np.flatnonzero(bm > 0)
            keyword[kw_rows] = bm[kw_rows].astype(np.float64) / top
            timings["keyword"] = time.perf_counter() - t

        if mode == "bm25":
            # ranked by keyword score alone: the page is picked in numpy (ties by id, the row order)
            order = np.lexsort((kw_rows, -keyword[kw_rows]))[:need]
            candidates = kw_rows[order].tolist()
            total = len(kw_rows)
        else:
            candidates = list(dense)
            if mode == "hybrid":
                n_best = max(cfg.min_candidates, need)
                if len(kw_rows) > n_best:  # the best, ties in row order (a stable sort's)
                    cut = -np.partition(-keyword[kw_rows], n_best - 1)[n_best - 1]
                    pool = kw_rows[keyword[kw_rows] >= cut]
                else:
                    pool = kw_rows
                best_kw = pool[np.argsort(-keyword[pool], kind="stable")][:n_best].tolist()
                missing = [r for r in best_kw if r not in dense]
                if missing and qv is not None:
                    dense.update(self._exact_dense(qv, missing, calibrate))
                candidates += missing
            total = n_allowed

        cols = self._columns
        assert cols is not None
        wanted_country = a.countries[0] if len(a.countries) == 1 else None
        place_names = {_key(p.name) for p in a.places}
        q_slugs = a.sector_slugs
        q_sectors = set(q_slugs)
        q_complements = [s for s in a.complements if s not in q_sectors]
        wanted = q_slugs + q_complements
        cand = np.asarray(candidates, np.int64)  # what the loop reads of each candidate, gathered at once
        countries, kinds = cols.column("country", cand), cols.column("kind", cand)
        regions, cities = cols.column("region", cand, keys=True), cols.column("city", cand, keys=True)
        tagged_holds = cols.holding(cand, wanted, "tagged")  # boosts and reasons go by the record's own tags
        about_holds = cols.holding(cand, wanted, "about")  # its tags are among these
        hits: list[tuple[Hit, int]] = []
        for i, row in enumerate(candidates):
            country, kind = countries[i], kinds[i]
            d, kw = dense.get(row, 0.0), float(keyword[row])
            held = tagged_holds[i]
            sectors = [s for s, h in zip(q_slugs, held) if h]
            complements = [s for s, h in zip(q_complements, held[len(q_slugs):]) if h]
            on_topic = any(about_holds[i])
            signals = []
            if mode == "bm25":
                score = kw
            elif mode == "dense":
                score = d
            else:
                score = cfg.w_dense * d + cfg.w_bm25 * kw
                if sectors:
                    score += cfg.boost_sector * len(sectors) / len(q_sectors)
                elif complements:
                    score += cfg.boost_complement
                if wanted_country and country == wanted_country:
                    score += cfg.boost_country
                    signals.append("country")
                if kind in a.kinds:
                    score += cfg.boost_kind
                    signals.append("kind")
                if place_names and ({regions[i], cities[i]} & place_names):
                    score += cfg.boost_place
                    signals.append("place")
            shown = _Shown(self._rows[row], country)  # the record itself is read only if it is shown
            hits.append((Hit(shown, float(score), float(d), kw, sectors, [], signals, complements, on_topic), row))  # type: ignore[arg-type]
        hits.sort(key=lambda pair: (-pair[0].score, pair[0].record.id))
        floor = cfg.floor_for(a.lang) if mode == "hybrid" and use_floor else None
        if floor is not None and rows is not None and not (a.sectors or a.complements or a.countries or a.places):
            floor = None  # "industrial partners" within hard filters: a browse, the filters say what is wanted
        nearest: list[Hit] = []
        if floor is not None:
            row_of = {id(hit): row for hit, row in hits}
            kept = self.apply_floor([hit for hit, _ in hits], a, floor, other_side)  # in the order they are shown
            if not kept:
                nearest = [hit for hit, _ in hits[:3]]
            hits = [(hit, row_of[id(hit)]) for hit in kept]
            total = len(hits)
        page = hits[offset:need]
        for hit in nearest:
            hit.record = self.records[hit.record.id]
        for hit, row in page:  # records and matched keywords only for the hits shown
            hit.record = self.records[hit.record.id]
            if self._bm25 is not None:
                hit.terms = self._bm25.matched(a.tokens, row)
        timings["total"] = time.perf_counter() - t0
        return SearchResult(a, total, [hit for hit, _ in page], timings, nearest, cfg.encode_chars_max)

    @classmethod
    def apply_floor(cls, hits: list[Hit], a: QueryAnalysis, floor: dict[str, float], other_side: bool = True) -> list[Hit]:
        """The hits that are matches, best first (``hits`` sorted by score)."""
        matches = [hit for hit in hits if cls.is_match(hit, a, floor)]
        if other_side and matches and a.countries and not a.needs.split:
            # "moldes China" has answers in China: the same trade on the other side follows them,
            # as a lead to a partner of a partner. A need that said who asks gets only the side asked for.
            matches += [hit for hit in hits if hit.record.country not in a.countries
                        and cls.is_match(hit, a, floor, check_country=False)]
        return matches

    @staticmethod
    def is_match(hit: Hit, a: QueryAnalysis, floor: dict[str, float], check_country: bool = True) -> bool:
        """Whether a hit is a partner the query asked for (see ``SearchConfig.floor``)."""
        rec = hit.record
        if check_country and a.countries and rec.country not in a.countries:
            return False  # the partner was asked for elsewhere: the asker's own side is no answer
        if (a.sectors or a.complements) and not hit.on_topic and hit.dense < floor["dense_off_sector"]:
            return False  # about another trade, and does not read close enough to say otherwise
        if not (a.sectors or a.complements) and hit.dense < floor["dense"]:
            return False  # nothing to recognise the partner by but the text, which is not close
        return hit.score >= floor["score"]

    def matches(self, org_id: str, limit: int = 10, lang: str | None = None) -> SearchResult:
        """Partners for one organisation, for staff preparing matchmaking: on the other side of the
        alliance, for what it seeks or does, through its sectors and their value chain."""
        rec = self.records.get(org_id)
        if rec is None:
            raise KeyError(org_id)
        a = analyse_record(rec, lang)
        return self.search(a.focus, Filters(exclude_ids=(org_id,)), limit=limit, analysis=a)

    def _exact_dense(self, qv: np.ndarray, rows: list[int], calibrate: bool) -> dict[int, float]:
        index = self.cal if calibrate else self.raw
        assert index is not None
        owners = [(row, vid) for row in rows for vid in self._vids_of_row(row)]
        # one batch for all candidates; a vector deleted under this generation (Milvus changes in
        # place: another worker's delete) is skipped until this worker loads the newer generation
        held, vectors = index.fetch_known([vid for _, vid in owners])
        sims = vectors @ qv
        out: dict[int, float] = {}
        for (row, _), s, h in zip(owners, sims.tolist(), held.tolist()):
            if h and s > out.get(row, -9.0):
                out[row] = s
        return out
