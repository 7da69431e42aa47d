"""Index generations on disk, swapped atomically.

Each build or update writes a complete new folder ``gen-*`` (files fsynced, folder renamed
from ``*.tmp``), then replaces the one-line ``CURRENT`` pointer with ``os.replace``. A
process killed at any point leaves the previous generation intact and servable; a write that
fails (a full disk) removes what it wrote at once. Writing is split in two (``stage_generation``,
then ``StagedGeneration.publish``) so a caller can commit the record store in between.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

POINTER = "CURRENT"


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def new_generation_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    tmp = root / f"{name}.tmp"
    tmp.mkdir()
    return tmp


@dataclass
class StagedGeneration:
    """A generation written in full and fsynced, with its pointer text ready beside ``CURRENT``:
    what is left to make it current are two renames, which need no free space."""

    tmp_dir: Path
    pointer_tmp: Path

    def publish(self) -> Path:
        final = self.tmp_dir.with_name(self.tmp_dir.name.removesuffix(".tmp"))
        root = final.parent
        try:
            os.replace(self.tmp_dir, final)
        except BaseException:
            self.discard()
            raise
        fsync_dir(root)
        try:
            os.replace(self.pointer_tmp, root / POINTER)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            self.discard()
            raise
        fsync_dir(root)
        prune(root, keep={final.name})
        return final

    def discard(self) -> None:
        """Remove what was written (a failed or abandoned write): nothing of it stays on disk."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.pointer_tmp.unlink(missing_ok=True)


def stage_generation(tmp_dir: Path) -> StagedGeneration:
    """fsync a written ``*.tmp`` generation and write its pointer text; on failure remove both."""
    root = tmp_dir.parent
    final = tmp_dir.name.removesuffix(".tmp")
    staged = StagedGeneration(tmp_dir, root / f".{POINTER}.{final}.tmp")
    try:
        for child in tmp_dir.iterdir():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp_dir)
        with open(staged.pointer_tmp, "wb") as fh:
            fh.write(final.encode())
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        staged.discard()
        raise
    return staged


def commit_generation(tmp_dir: Path) -> Path:
    """Make a fully written ``*.tmp`` generation the current one."""
    return stage_generation(tmp_dir).publish()


def current_generation(root: Path) -> Path | None:
    pointer = Path(root) / POINTER
    try:
        name = pointer.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    path = Path(root) / name
    return path if name and path.is_dir() else None


def prune(root: Path, keep: set[str], tmp_older_than: float = 3600) -> None:
    """Remove leftover temp folders and all but the newest older generations.

    Temp folders younger than ``tmp_older_than`` seconds are left alone unless the caller holds
    the data folder's writer lock (then 0: no one else can be writing one)."""
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return
    gens = sorted((p for p in entries if p.is_dir() and p.name.startswith("gen-")), key=lambda p: p.name)
    finished = [p for p in gens if not p.name.endswith(".tmp") and p.name not in keep]
    now = time.time()
    stale_tmp = [p for p in gens if p.name.endswith(".tmp") and now - p.stat().st_mtime >= tmp_older_than]
    stale_tmp += [p for p in entries if p.is_file() and p.name.startswith(f".{POINTER}.")
                  and p.name.endswith(".tmp") and now - p.stat().st_mtime >= tmp_older_than]
    # keep the previous generation: a reader may still be loading it
    removed = finished[:-1] + stale_tmp
    _drop_unreferenced_collections([p for p in removed if p.is_dir()], [p for p in gens if p not in removed])
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _drop_unreferenced_collections(removed: list[Path], remaining: list[Path]) -> None:
    """Milvus collections live outside the generation folders: drop those only removed generations
    referred to. A failure here is logged, never a failed publish (the collection just stays)."""
    from ._milvus import drop_collections, referenced_collections

    gone: set[tuple[str, str]] = set()
    for path in removed:
        gone |= referenced_collections(path)
    if not gone:
        return
    for path in remaining:
        gone -= referenced_collections(path)
    try:
        drop_collections(gone)
    except Exception:  # noqa: BLE001 - the server may be away; the index is already published
        logging.getLogger("cpc.index").exception("could not drop old Milvus collections %s", sorted(gone))
