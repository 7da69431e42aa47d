"""The data folder: record store, index generations and the engine serving them.

One object the API, the assistant and the command line share. Writers build a new engine
off to the side and swap the reference; readers keep whichever engine they started with,
so a search during an ingest or reindex is answered by the old or the new index.

Every write changes the record store and the index together or not at all: the new index
generation is written in full first, then the store commits, then two renames make the
generation current (see ``_commit``). A process killed in between is repaired by ``open``,
which brings the index in line with the committed store. Only the holder of the data folder's
writer lock (``_lock.DataFolderLock``) writes, or a worker of the group holding it
(``cpc serve --workers``); a catalog opened while another process holds it is read-only and
follows the generations that process writes. Writes, by whoever may write, take turns under
``_lock.WriteLock``, and each starts from the generation on disk (another worker's, maybe).
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from corpus import KINDS, LoadResult, Organisation, RecordStore, bodies_hash, corpus_hash, default_lexicon, default_taxonomy, load_records
from corpus import fold

from ._build import FAST_MIN_TEXTS, clear_checkpoints, passage_checkpoints
from ._encoders import Encoder
from ._engine import Filters, SearchConfig, SearchEngine, SearchIndexError, IndexMissingError
from ._lock import DataFolderLock, WriteLock, WriterBusyError
from ._normalise import warm as warm_normalise
from ._storage import POINTER, current_generation, prune
from ._vectors import lite_file_in_use
from ._writer import WriteProcessError, full_disk, write_in_child

Progress = Callable[[int, int], None]
DELEGATE_FAST_MIN_TEXTS = 400
log = logging.getLogger("cpc.index")


def _pause() -> None:
    """Between the steps of loading a new generation beside searches: a moment for them (see SearchEngine.load)."""
    time.sleep(0.003)


class FilterValueError(ValueError):
    """A filter value the index does not know; ``allowed`` lists what it does know."""

    def __init__(self, field: str, value: str, allowed: Sequence[str]):
        self.field, self.value, self.allowed = field, value, list(allowed)
        shown = ", ".join(self.allowed[:60]) + (" ..." if len(self.allowed) > 60 else "")
        super().__init__(f"unknown {field} '{value}'; allowed values: {shown}")


class StorageFullError(SearchIndexError):
    """The disk holding the data folder is full or over quota; the write changed nothing."""

    def __init__(self, data_dir: Path, cause: BaseException):
        self.data_dir = data_dir
        super().__init__(f"the disk holding the data folder {data_dir} is full ({cause}): nothing was changed;"
                         " free some space and try again")


def disk_full(exc: BaseException) -> bool:
    """A write refused for want of space: ENOSPC or EDQUOT from a file, SQLITE_FULL from SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return False


@dataclass
class IngestReport:
    imported: int
    skipped: list[str]


class Catalog:
    def __init__(self, data_dir: str | Path, encoder: Encoder, config: SearchConfig | None = None,
                 group: int | None = None, write_process: tuple[str, int | None] | None = None,
                 delegate: bool = False, repair: bool = False, second: Encoder | None | str = "config"):
        """``second``: the second signal's encoder (index/_second.py; "config": SearchConfig.second's;
        the scale bench passes a synthetic one). ``group``: the worker group (the serve parent's pid) this catalog writes for, if any.
        ``write_process``: (model spec, threads) to load the encoder with in a child process that
        does this catalog's writes while it is ``serving`` (index/_writer.py). ``delegate``: this
        catalog is that child, writing for a process that holds the right to (no writer lock is
        checked), and ``repair`` says whether that process took the lock over from a dead writer."""
        self.data_dir = Path(data_dir)
        self.index_dir = self.data_dir / "index"
        # passages encoded by a build not yet published: a killed build resumes from them
        self.checkpoint_dir = self.data_dir / "build-checkpoints"
        self.encoder = encoder
        self.config = config or SearchConfig()
        self.second = second
        self.writer_lock = DataFolderLock(self.data_dir, group)
        self.write_turn = WriteLock(self.data_dir)
        # Set by a process that answers searches: its writes encode on the encoder's own thread, one
        # passage a call, between searches. The build path's set-up (seconds of graph work in C++
        # that holds the GIL) would stall every search of the process for over a second.
        self.serving = False
        # a child process writes for a serving catalog: not for milvus-lite, whose file one process opens
        # (the configured one, or the one the current index refers to)
        lite = lite_file_in_use(self.config.vector_url, current_generation(self.index_dir))
        self.write_process = write_process if lite is None else None
        self._delegate, self._delegate_repair = delegate, repair
        self.store = RecordStore(self.data_dir / "records.sqlite")
        self._engine: SearchEngine | None = None
        self._pointer: str | None = None
        self._checked = 0.0
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()  # held while a reload thread loads a generation
        self._swap_lock = threading.Lock()  # the engine and its pointer change together

    @property
    def read_only(self) -> bool:
        """True while another process, not of this one's worker group, holds the data folder's
        writer lock (this one only reads)."""
        return not self.writer_lock.held and not self.writer_lock.held_by_my_group()

    # -- opening ------------------------------------------------------------------------
    def open(self, corpus: str | Path | None = None, progress: Progress | None = None) -> SearchEngine:
        """Load the index, seeding the store from ``corpus`` and building what is missing.

        When another process holds the writer lock (or a worker group this one belongs to: its
        parent built the index before starting it), opens the current generation as it is,
        nothing seeded, built or repaired (that process does it)."""
        engine = self._open(corpus, progress)
        # the query normaliser's tools, word lists and this generation's vocabulary are made beside
        # the first searches, not in one of them (a later generation's in SearchEngine.warm)
        threading.Thread(target=warm_normalise, args=(engine._columns,), name="cpc-warm-normalise", daemon=True).start()
        return engine

    def _open(self, corpus: str | Path | None, progress: Progress | None) -> SearchEngine:
        with self._write_lock:
            if not self.writer_lock.acquire():
                try:
                    engine = SearchEngine.load(self.index_dir, self.encoder, self.config, second=self.second)
                except IndexMissingError:
                    raise IndexMissingError(f"no index in {self.index_dir} yet, and {self.writer_lock.holder()} holds"
                                            " the data folder (building it?): start again once it serves") from None
                self._set(engine)
                return engine
            with self.write_turn.hold(), passage_checkpoints(self.checkpoint_dir):  # a worker of an earlier group may still be writing
                return self._open_as_writer(corpus, progress)

    def _open_as_writer(self, corpus: str | Path | None, progress: Progress | None) -> SearchEngine:
        # temp files of a writer that died (no one else writes now); never the generation CURRENT names
        prune(self.index_dir, keep={self._read_pointer() or ""}, tmp_older_than=0)
        bodies = self.store.bodies()
        seed: list[Organisation] | None = None
        if not bodies and corpus is not None:
            seed = load_records(corpus).records
        try:
            engine = SearchEngine.load(self.index_dir, self.encoder, self.config, second=self.second)
            # the store's own text hashes as the index's when nothing changed: no record is parsed
            changed = seed is not None or engine.manifest.get("corpus_hash") != bodies_hash(bodies)
            if changed:
                records = seed if seed is not None else self.store.all()
                changed = engine.manifest.get("corpus_hash") != corpus_hash(records)
                if changed:
                    engine.sync(records)  # a crash between the store commit and publishing the index
        except IndexMissingError:
            records = seed if seed is not None else self.store.all()
            engine = SearchEngine.build(records, self.encoder, self.config, progress, second=self.second)
            changed = True
        del bodies
        if seed is not None:
            self._commit(engine, lambda: self.store.replace_all(seed), None)
        elif changed:
            self._commit(engine)
        else:
            self._set(engine)
        return engine

    def rebuild(self, corpus: str | Path | None = None, progress: Progress | None = None) -> SearchEngine:
        """Full rebuild from the store (replaced by ``corpus`` when given). Nothing to repair first: it
        replaces the index whole, and a killed earlier build's saved passages are what it resumes from."""
        if self._writes_in_child:
            self._child_write("rebuild", progress, corpus=str(corpus) if corpus is not None else None)
            return self.engine
        with self._writing(repair=False), passage_checkpoints(self.checkpoint_dir):
            records = load_records(corpus).records if corpus is not None else self.store.all()
            engine = SearchEngine.build(records, self.encoder, self.config, progress, second=self.second)
            if corpus is not None:
                self._commit(engine, lambda: self.store.replace_all(records), None)
            else:
                self._commit(engine)
            return engine

    def _set(self, engine: SearchEngine) -> None:
        with self._swap_lock:
            self._engine = engine
            self._pointer = engine.generation = self._read_pointer()

    def _read_pointer(self) -> str | None:
        try:
            return (self.index_dir / POINTER).read_text().strip()
        except FileNotFoundError:
            return None

    @property
    def engine(self) -> SearchEngine:
        """The current engine, never loaded here: a generation written by another process (seen
        at most once a second) is loaded in a thread and swapped in when it is complete, while
        the old engine keeps answering."""
        if self._engine is None:
            raise IndexMissingError("the index is not loaded yet")
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            pointer = self._read_pointer()
            if pointer and pointer != self._pointer and self._stale_collection():
                # a Milvus generation two rebuilds old: its collection is dropped, so it cannot answer
                # in the meantime; the current one is loaded now (a few ms: the vectors stay in Milvus)
                try:
                    self._follow()
                except Exception as exc:  # noqa: BLE001 - keep the old one; a search says what fails
                    log.warning("could not load the new index generation (%s)", exc)
            elif pointer and pointer != self._pointer and self._reload_lock.acquire(blocking=False):
                try:
                    threading.Thread(target=self._reload, args=(self._pointer,), name="cpc-index-reload",
                                     daemon=True).start()
                except BaseException:
                    self._reload_lock.release()
                    raise
        return self._engine

    def _stale_collection(self) -> bool:
        """The served generation is on Milvus and its folder has been pruned (see _storage.prune)."""
        engine = self._engine
        return (getattr(engine.raw, "kind", None) == "milvus" and bool(self._pointer)
                and not (self.index_dir / str(self._pointer)).is_dir())

    def _reload(self, was: str | None) -> None:
        """Load the current generation and swap it in, unless this process wrote a newer one meanwhile."""
        try:
            engine = self._load_beside_searches()
            with self._swap_lock:
                if self._pointer == was:
                    self._engine, self._pointer = engine, engine.generation
            log.info("serving index generation %s", engine.generation)
        except Exception as exc:  # a half-visible or pruned generation: keep serving the old one, retry later
            log.warning("could not load the new index generation (%s); still serving %s", exc, self._pointer)
        finally:
            self._reload_lock.release()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    # -- writes -------------------------------------------------------------------------
    @contextmanager
    def _writing(self, repair: bool = True) -> Iterator[None]:
        """One write: hold the writer lock (or be of the group holding it) or refuse
        (WriterBusyError), then wait for this write's turn. A read-only catalog whose writer has
        gone takes the lock over, and first repairs what that writer left; so does any writer
        that finds the previous write unfinished (its process was killed mid-write)."""
        with self._write_lock:
            took_over = self._delegate_repair if self._delegate else self._may_write()
            with self.write_turn.hold() as unfinished:
                if unfinished:
                    log.warning("the last write to %s did not finish (%s): repairing it first", self.data_dir, unfinished)
                if repair and (took_over or unfinished):
                    self._open_as_writer(None, None)
                yield

    def _may_write(self) -> bool:
        """Hold the writer lock (or be of the group holding it) or raise WriterBusyError; True when
        this catalog just took the lock over from a writer that has gone (repair first)."""
        if self.writer_lock.held:
            return False
        if self.writer_lock.acquire():
            took_over = self._engine is not None  # it was open read-only (or its group's holder died)
            if took_over:
                log.info("took over the writer lock of %s", self.data_dir)
            return took_over
        if not self.writer_lock.held_by_my_group():
            raise self.writer_lock.busy_error()
        return False

    @property
    def _writes_in_child(self) -> bool:
        return self.serving and self.write_process is not None and not self._delegate

    def _child_write(self, op: str, progress: Progress | None = None, **request) -> dict:
        """One write done by a child process (index/_writer.py); then the generation it published
        is loaded here and swapped in, whatever the outcome (a repair may have published one)."""
        model, threads = self.write_process  # type: ignore[misc]
        loaded = request.pop("loaded", None)
        with self._write_lock:
            repair = self._may_write()
            try:
                outcome = write_in_child(self.data_dir, model, threads, self.config, op, repair=repair,
                                         progress=progress, **request)
            finally:
                self._follow()
        error = outcome.error
        if error is None:
            return outcome.result or {}
        if error["kind"] == "record":
            source = loaded or LoadResult(list(request.get("records", ())))
            raise source.error(error["position"], error["field"], error["message"])
        if error["kind"] == "full":
            raise StorageFullError(self.data_dir, full_disk(error["message"]))
        raise WriteProcessError(f"the write did not finish ({error['message']}): nothing was changed, or the next"
                                " write repairs what it left; see the server log")

    def _load_beside_searches(self) -> SearchEngine:
        """The current generation, loaded with pauses and warmed up, ready to swap in (see SearchEngine.load)."""
        engine = SearchEngine.load(self.index_dir, self.encoder, self.config, pause=_pause, second=self.second)
        engine.warm(_pause)
        return engine

    def _follow(self) -> None:
        """Load the generation on disk, if it is not the one served, and swap it in. One load at a
        time: a reload thread that saw the child's generation first is waited for, not doubled."""
        with self._reload_lock:
            pointer = self._read_pointer()
            if pointer and pointer != self._pointer:
                engine = self._load_beside_searches()
                with self._swap_lock:
                    self._engine, self._pointer = engine, engine.generation

    def _commit(self, engine: SearchEngine, store_write: Callable[[], object] | None = None,
                touched: Iterable[str] | None = ()) -> None:
        """Make ``engine`` current together with ``store_write``, or change nothing.

        The generation is written and fsynced first (a full disk fails here, with nothing
        committed), then the store commits, then two renames publish the generation. Should the
        renames fail after the commit, the store is put back (``touched`` ids; None: all records)."""
        before = self.store.bodies(None if touched is None else list(touched)) if store_write else {}
        try:
            staged = engine.stage(self.index_dir)  # removes its own temp folder if it fails
            try:
                if store_write:
                    store_write()
            except BaseException:
                staged.discard()
                raise
            try:
                staged.publish()
            except BaseException:
                if store_write:
                    self._undo_store(before, touched)
                raise
        except (OSError, sqlite3.Error) as exc:
            if disk_full(exc):
                log.warning("write refused, disk full: %s", exc)
                raise StorageFullError(self.data_dir, exc) from exc
            raise
        clear_checkpoints(self.checkpoint_dir)  # its passages are in the published generation now
        self._set(engine)

    def _undo_store(self, before: dict[str, str], touched: Iterable[str] | None) -> None:
        try:
            ids = set(before) | set(touched or ())
            if touched is None:  # the whole store was replaced: whatever is there now goes
                ids |= set(self.store.bodies())
            self.store.restore(before, ids)
        except Exception:  # the next start brings the index in line with whatever the store holds
            log.exception("could not undo a record store write after the index failed")

    def _fresh_copy(self) -> SearchEngine:
        return SearchEngine.load(self.index_dir, self.encoder, self.config, second=self.second)

    def upsert(self, records: Sequence[Organisation], progress: Progress | None = None,
               loaded: LoadResult | None = None, cancel: threading.Event | None = None) -> None:
        """Add or replace records: a new index generation and the store, together. A record whose
        languages the index has no room for is refused before anything is written (CorpusError,
        by line when ``loaded`` tells where the records came from)."""
        if not records:  # nothing to write: no new generation either
            return
        if self._writes_in_child:
            # ``cancel`` set (the client left): the write process is killed, which changes nothing
            self._child_write("upsert", progress, records=records, loaded=loaded, cancel=cancel)
            return
        with self._writing(), passage_checkpoints(self.checkpoint_dir):
            engine = self._fresh_copy()
            overflow = engine.language_overflow(records)
            if overflow:
                position, why = overflow
                source = loaded or LoadResult(list(records))
                raise source.error(position, "i18n", why)
            # a write process (delegate) encodes a small ingest itself: the build path's set-up costs
            # ~2 s and ~500 MB beside the server, more than it saves below a few hundred passages
            engine.upsert(records, progress, fast=not self.serving,
                          fast_min_texts=DELEGATE_FAST_MIN_TEXTS if self._delegate else FAST_MIN_TEXTS)
            ids = [r.id for r in records]
            self._commit(engine, lambda: self.store.upsert(records), ids)

    def ingest(self, path: str | Path, skip_invalid: bool = False, progress: Progress | None = None) -> IngestReport:
        result: LoadResult = load_records(path, skip_invalid=skip_invalid)  # raises before any write
        self.upsert(result.records, progress, loaded=result)
        return IngestReport(len(result.records), [str(e) for e in result.skipped])

    def delete(self, ids: Iterable[str]) -> list[str]:
        ids = list(ids)
        if self._writes_in_child:
            return self._child_write("delete", ids=ids)["deleted"]
        with self._writing():
            engine = self._fresh_copy()
            gone = engine.delete(ids)
            self._commit(engine, lambda: self.store.delete(ids), ids)
            return gone

    def close(self) -> None:
        self.store.close()
        self.writer_lock.release()

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
