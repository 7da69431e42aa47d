"""Index generations on disk, swapped atomically.

Each build or update writes a complete new folder ``gen-*`` (files fsynced, folder renamed
from ``*.tmp``), then replaces the one-line ``CURRENT`` pointer with ``os.replace``. A
process killed at any point leaves the previous generation intact and servable.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
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


def commit_generation(tmp_dir: Path) -> Path:
    """Make a fully written ``*.tmp`` generation the current one."""
    for child in tmp_dir.iterdir():
        with open(child, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(tmp_dir)
    final = tmp_dir.with_name(tmp_dir.name.removesuffix(".tmp"))
    os.replace(tmp_dir, final)
    root = final.parent
    fsync_dir(root)
    atomic_write_bytes(root / POINTER, final.name.encode())
    prune(root, keep={final.name})
    return final


def current_generation(root: Path) -> Path | None:
    pointer = Path(root) / POINTER
    try:
        name = pointer.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    path = Path(root) / name
    return path if name and path.is_dir() else None


def prune(root: Path, keep: set[str]) -> None:
    """Remove leftover temp folders and all but the newest older generations."""
    gens = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("gen-")), key=lambda p: p.name)
    finished = [p for p in gens if not p.name.endswith(".tmp") and p.name not in keep]
    stale_tmp = [p for p in gens if p.name.endswith(".tmp") and time.time() - p.stat().st_mtime > 3600]
    # keep the previous generation: a reader may still be loading it
    for path in finished[:-1] + stale_tmp:
        shutil.rmtree(path, ignore_errors=True)
