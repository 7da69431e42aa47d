"""One writer per data folder: an advisory lock (``flock``) on ``writer.lock`` inside it.

The process holding it is the only one that changes the record store or the index; others
read (they pick up new index generations on their own). The kernel drops the lock when the
holder exits, however it exits, so a crash never leaves the folder locked. The file keeps the
holder's pid and command line, for the message another process shows.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from ._engine import SearchIndexError

LOCK_NAME = "writer.lock"


class WriterBusyError(SearchIndexError):
    """Another process holds the data folder's writer lock."""

    def __init__(self, data_dir: Path, holder: str):
        self.data_dir, self.holder = data_dir, holder
        super().__init__(f"the data folder {data_dir} is held by another process ({holder}), the only one that may"
                         " change it: send the change to that server (POST /api/v1/admin/ingest, DELETE"
                         " /api/v1/admin/organisations/ID, POST /api/v1/admin/reindex) or stop it first")


class DataFolderLock:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
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
            os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:300]}\n".encode(), 0)
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

    def busy_error(self) -> WriterBusyError:
        return WriterBusyError(self.data_dir, self.holder())

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock
