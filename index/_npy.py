"""Reading .npy and .npz files from any thread.

Why: numpy reads every array header with ``ast.literal_eval``, and CPython 3.11 (the version
this service runs on) keeps the AST builder's recursion counter per interpreter, not per call:
two threads parsing at once can trip it, and one of them fails with "SystemError: AST constructor
recursion depth mismatch" (python/cpython#106905). A serving process reads arrays on several
threads at once (the second encoder loading its weights on its own thread, a reload, the example
vectors a dialogue classifier reads on first use), and a test running two services in one process
got a 500 from it. Every array file this service reads goes through here, one header at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

AST_LOCK = threading.Lock()  # held while numpy parses a header, and by anything else of ours that makes ast parse


def load(path: str | Path, mmap_mode: Any = None) -> np.ndarray:
    """``np.load`` of one .npy file (memory-mapped with ``mmap_mode``)."""
    with AST_LOCK:
        return np.load(path, mmap_mode=mmap_mode)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read now (an ``NpzFile`` parses each header when it is indexed)."""
    with AST_LOCK, np.load(path) as data:
        return {name: data[name] for name in data.files}
