"""One writer per data folder: an advisory lock (``flock``) on ``writer.lock`` inside it.

The process holding it is the only one that changes the record store or the index; others
read (they pick up new index generations on their own). The kernel drops the lock when the
holder exits, however it exits, so a crash never leaves the folder locked. The file keeps the
holder's pid and command line, for the message another process shows.

``cpc serve --workers N`` is one writer made of several processes: the serve's parent holds the
folder lock for its *group* (its pid, written in the lock file), and each worker of the group
may write while the lock is held by its group. Writes themselves, by whoever may write, are
serialised by a second lock held only for the length of one write (``WriteLock``): it also tells
the next writer when the previous one was killed mid-write, so that writer repairs first.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ._engine import SearchIndexError

LOCK_NAME = "writer.lock"
WRITE_LOCK_NAME = "write.lock"


class WriterBusyError(SearchIndexError):
    """Another process holds the data folder's writer lock."""

    def __init__(self, data_dir: Path, holder: str):
        self.data_dir, self.holder = data_dir, holder
        super().__init__(f"the data folder {data_dir} is held by another process ({holder}), the only one that may"
                         " change it: send the change to that server (POST /api/v1/admin/ingest, DELETE"
                         " /api/v1/admin/organisations/ID, POST /api/v1/admin/reindex) or stop it first")


class DataFolderLock:
    def __init__(self, data_dir: Path, group: int | None = None):
        """``group``: the id (the serve parent's pid) of the worker group this process belongs to."""
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self.group = group
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another process (or another Catalog) holds it."""
        if self._fd is not None:
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        try:  # who holds it, for the others' messages; the lock does not depend on it
            os.ftruncate(fd, 0)
            group = f" [group {self.group}]" if self.group is not None else ""
            os.pwrite(fd, f"pid {os.getpid()}{group}: {' '.join(sys.argv)[:300]}\n".encode(), 0)
        except OSError:
            pass
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text or "unknown process"

    def holder_group(self) -> int | None:
        """The worker group the holder wrote, if any (meaningful only while the lock is held)."""
        found = re.match(r"pid \d+ \[group (\d+)\]", self.holder())
        return int(found.group(1)) if found else None

    def held_by_my_group(self) -> bool:
        """Another process of this one's worker group holds the lock (this one may write too)."""
        return self.group is not None and not self.held and self.holder_group() == self.group

    def busy_error(self) -> WriterBusyError:
        return WriterBusyError(self.data_dir, self.holder())

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock


class WriteLock:
    """One write at a time on a data folder, among the processes allowed to write it.

    Held for the length of one write (blocking: a second admin write waits for the first). The
    file says who is writing while the lock is held and is emptied when the write ends, cleanly
    or by an exception (the catalog undoes those); text found in it on entry means its writer was
    killed mid-write, and the new writer repairs what it left before writing."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / WRITE_LOCK_NAME

    @contextmanager
    def hold(self) -> Iterator[str]:
        """Wait for the lock; yields what an unfinished write left ("" when the last one finished)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            unfinished = os.pread(fd, 400, 0).decode("utf-8", errors="replace").strip()
            try:  # the mark is best effort: on a full disk the write fails later, with its own error
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} writing\n".encode(), 0)
            except OSError:
                pass
            try:
                yield unfinished
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # drops the flock
