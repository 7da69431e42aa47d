"""index/_npy.py: array files are read one header at a time, from any thread."""

import re
import threading
from pathlib import Path

import numpy as np

from index import _npy

ROOT = Path(__file__).resolve().parents[1]


def test_reads_wait_for_a_header_being_read_on_another_thread(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.savez(tmp_path / "b.npz", keys=np.array([b"k1", b"k2"]), vectors=np.eye(2, dtype=np.float32))
    got: dict[str, object] = {}
    readers = [threading.Thread(target=lambda: got.update(a=_npy.load(tmp_path / "a.npy", mmap_mode="r"))),
               threading.Thread(target=lambda: got.update(b=_npy.load_npz(tmp_path / "b.npz")))]
    with _npy.AST_LOCK:  # another thread is reading a header
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout=0.3)
        assert all(reader.is_alive() for reader in readers) and not got
    for reader in readers:
        reader.join(timeout=10)
    assert not any(reader.is_alive() for reader in readers)
    assert isinstance(got["a"], np.memmap) and got["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert sorted(got["b"]) == ["keys", "vectors"] and got["b"]["vectors"].tolist() == [[1, 0], [0, 1]]


def test_every_array_file_the_service_reads_goes_through_the_header_lock():
    """numpy parses each header with ast, which CPython 3.11 cannot run on two threads at once."""
    direct = [f"{path.relative_to(ROOT)}:{n}" for package in ("corpus", "index", "assistant", "connectors")
              for path in sorted((ROOT / package).rglob("*.py")) if path.name != "_npy.py"
              for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"\b(np|numpy)\.load\(", line)]
    assert direct == []
