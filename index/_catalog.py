"""The data folder: record store, index generations and the engine serving them.

One object the API, the assistant and the command line share. Writers build a new engine
off to the side and swap the reference; readers keep whichever engine they started with,
so a search during an ingest or reindex is answered by the old or the new index.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from corpus import KINDS, LoadResult, Organisation, RecordStore, corpus_hash, default_lexicon, default_taxonomy, load_records
from corpus import fold

from ._encoders import Encoder
from ._engine import Filters, SearchConfig, SearchEngine, IndexMissingError
from ._storage import POINTER

Progress = Callable[[int, int], None]


class FilterValueError(ValueError):
    """A filter value the index does not know; ``allowed`` lists what it does know."""

    def __init__(self, field: str, value: str, allowed: Sequence[str]):
        self.field, self.value, self.allowed = field, value, list(allowed)
        shown = ", ".join(self.allowed[:60]) + (" ..." if len(self.allowed) > 60 else "")
        super().__init__(f"unknown {field} '{value}'; allowed values: {shown}")


@dataclass
class IngestReport:
    imported: int
    skipped: list[str]


class Catalog:
    def __init__(self, data_dir: str | Path, encoder: Encoder, config: SearchConfig | None = None):
        self.data_dir = Path(data_dir)
        self.index_dir = self.data_dir / "index"
        self.encoder = encoder
        self.config = config or SearchConfig()
        self.store = RecordStore(self.data_dir / "records.sqlite")
        self._engine: SearchEngine | None = None
        self._pointer: str | None = None
        self._checked = 0.0
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()

    # -- opening ------------------------------------------------------------------------
    def open(self, corpus: str | Path | None = None, progress: Progress | None = None) -> SearchEngine:
        """Load the index, seeding the store from ``corpus`` and building what is missing."""
        with self._write_lock:
            if len(self.store) == 0 and corpus is not None:
                self.store.replace_all(load_records(corpus).records)
            try:
                engine = SearchEngine.load(self.index_dir, self.encoder, self.config)
            except IndexMissingError:
                engine = SearchEngine.build(self.store.all(), self.encoder, self.config, progress)
                engine.save(self.index_dir)
            records = self.store.all()
            if engine.manifest.get("corpus_hash") != corpus_hash(records):
                engine.sync(records)  # a crash between store commit and index save
                engine.save(self.index_dir)
            self._set(engine)
            return engine

    def rebuild(self, corpus: str | Path | None = None, progress: Progress | None = None) -> SearchEngine:
        """Full rebuild from the store (replaced by ``corpus`` when given)."""
        with self._write_lock:
            if corpus is not None:
                self.store.replace_all(load_records(corpus).records)
            engine = SearchEngine.build(self.store.all(), self.encoder, self.config, progress)
            engine.save(self.index_dir)
            self._set(engine)
            return engine

    def _set(self, engine: SearchEngine) -> None:
        self._engine = engine
        self._pointer = self._read_pointer()

    def _read_pointer(self) -> str | None:
        try:
            return (self.index_dir / POINTER).read_text().strip()
        except FileNotFoundError:
            return None

    @property
    def engine(self) -> SearchEngine:
        """The current engine; picks up generations written by another process (at most 1/s)."""
        if self._engine is None:
            raise IndexMissingError("the index is not loaded yet")
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            pointer = self._read_pointer()
            if pointer and pointer != self._pointer and self._reload_lock.acquire(blocking=False):
                try:
                    self._engine = SearchEngine.load(self.index_dir, self.encoder, self.config)
                    self._pointer = pointer
                except Exception:  # a half-visible generation: keep serving the old one
                    pass
                finally:
                    self._reload_lock.release()
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    # -- writes -------------------------------------------------------------------------
    def _fresh_copy(self) -> SearchEngine:
        return SearchEngine.load(self.index_dir, self.encoder, self.config)

    def upsert(self, records: Sequence[Organisation], progress: Progress | None = None) -> None:
        """Store first (committed), then a new index generation; a crash in between is
        repaired by ``open``, which syncs the index to the store."""
        if not records:  # nothing to write: no new generation either
            return
        with self._write_lock:
            self.store.upsert(records)
            engine = self._fresh_copy()
            engine.upsert(records, progress)
            engine.save(self.index_dir)
            self._set(engine)

    def ingest(self, path: str | Path, skip_invalid: bool = False, progress: Progress | None = None) -> IngestReport:
        result: LoadResult = load_records(path, skip_invalid=skip_invalid)  # raises before any write
        self.upsert(result.records, progress)
        return IngestReport(len(result.records), [str(e) for e in result.skipped])

    def delete(self, ids: Iterable[str]) -> list[str]:
        ids = list(ids)
        with self._write_lock:
            self.store.delete(ids)
            engine = self._fresh_copy()
            gone = engine.delete(ids)
            engine.save(self.index_dir)
            self._set(engine)
            return gone

    def close(self) -> None:
        self.store.close()

    # -- filters ------------------------------------------------------------------------
    def resolve_filters(
        self,
        country: Sequence[str] = (),
        region: Sequence[str] = (),
        kind: Sequence[str] = (),
        sectors: Sequence[str] = (),
        city: Sequence[str] = (),
    ) -> Filters:
        """Turn user filter values (any language, any case) into index values, or raise."""
        engine = self.engine
        countries = []
        for value in country:
            code = value.strip().upper()
            if code not in engine.values("country"):
                found = default_lexicon().countries(value)
                if not found or found[0] not in engine.values("country"):
                    raise FilterValueError("country", value, engine.values("country"))
                code = found[0]
            countries.append(code)
        kinds = []
        for value in kind:
            k = value.strip().lower()
            if k not in KINDS:
                found = default_lexicon().kinds(value)
                if not found:
                    raise FilterValueError("kind", value, KINDS)
                k = found[0]
            kinds.append(k)
        out_sectors = []
        present = {fold(s): s for s in engine.values("sector")} if sectors else {}
        for value in sectors:
            slug = default_taxonomy().link(value) or present.get(fold(value.strip()))
            if not slug:
                raise FilterValueError("sectors", value, sorted(set(default_taxonomy().sectors) | set(present.values())))
            out_sectors.append(slug)
        regions = [self._place(value, "region") for value in region]
        cities = [self._place(value, "city") for value in city]
        return Filters(tuple(countries), tuple(regions), tuple(cities), tuple(kinds), tuple(out_sectors))

    def _place(self, value: str, field: str) -> str:
        known = {fold(v): v for v in self.engine.values(field)}
        hit = known.get(fold(value.strip()))
        if hit:
            return hit
        for place, _ in default_lexicon().find_places(value):
            if fold(place.name) in known:
                return known[fold(place.name)]
        raise FilterValueError(field, value, sorted(known.values()))
