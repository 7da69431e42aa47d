"""Alert matching off the serving process: a niced child process, resumed from a durable marker.

Why a child: matching a large ingest against every subscription is seconds of numpy and Python
(bench/alerts.py: 10,000 subscriptions x 1,000 records). Run in the serving process it shared the
interpreter with every search (searches during it: p99 241 ms). The child loads the current index
generation read-only and opens the same state store; niced as the write process is
(index/_writer.py), so the kernel runs the server's searches first.

Exactly once, across workers and restarts:
- an ingest first writes its record ids as "to match" markers in the state store (durable), then
  starts the child and waits for it (the search loop never does: only a thread waits on a pipe);
- the child claims a lease in the state store (one matcher at a time across workers), reads the
  markers, matches them against the newest generation, and writes the notices and removes the
  markers it answered in one transaction; it goes on while markers remain, releases the lease and
  looks once more, so a marker written while it held the lease is not left behind;
- a notice is unique per (subscription, record): matching a record again after a crash between
  the two writes cannot announce it twice;
- markers a restart left (killed between the ingest and the matching) are matched at start-up and
  by the periodic delivery loop (``_alerts_api``).
A catalog that writes in its own process (no write process: tests, a milvus-lite file one process
opens) matches in a thread of its own process, the same way.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable

from index import SearchEngine, current_generation

from ._alerts import MatchStats, match_new

log = logging.getLogger("cpc.alerts")

LOCK = "alerts:matching"
# The matcher's lease, renewed after each batch: a matcher killed mid-run holds the others off this
# long at most (its markers stay and are matched after it).
LOCK_TTL = 300.0
NICE = 10
CHILD = "import sys; from assistant._alerts_worker import _child; sys.exit(_child())"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _add(total: MatchStats, part: MatchStats) -> None:
    for f in fields(MatchStats):  # subscriptions: the same ones each batch, not a sum
        merge = max if f.name == "subscriptions" else (lambda x, y: x + y)
        setattr(total, f.name, merge(getattr(total, f.name), getattr(part, f.name)))


def match_pending(engine: Callable[[], SearchEngine], store, lock_ttl: float = LOCK_TTL) -> MatchStats | None:
    """Match every record marked "to match", as one matcher across processes; None when another
    holds the lease (it will match what is marked). ``engine``: the newest generation, asked again
    for each batch (a marker may be for a record a later generation holds)."""
    total, ran = MatchStats(), False
    while store.claim(LOCK, lock_ttl):
        ran = True
        try:
            while True:
                ids, last = store.to_match()
                if last is None:
                    break
                _add(total, match_new(engine(), store, ids, matched=last))
                store.put(LOCK, True, lock_ttl)  # still alive: renew the lease
        finally:
            store.pop(LOCK)
        if store.to_match()[1] is None:  # none was written while the lease was held
            break
    return total if ran else None


# -- the parent's side ----------------------------------------------------------------------------
def store_spec(store) -> dict[str, Any] | None:
    """How the child opens the same state store, or None when it cannot (an in-memory store)."""
    url = getattr(store, "_url", None)
    if url:
        return {"postgres": url, "ttl": store.ttl}
    path = getattr(store, "path", None)
    return {"sqlite": str(Path(path).resolve()), "ttl": store.ttl} if path is not None else None


def run(catalog, store, timeout: float | None = None) -> tuple[MatchStats | None, float]:
    """Match what is marked, in a child process when the catalog writes through one, else here
    (blocking: call it from a thread). (stats or None when another matcher was at it, wall seconds)."""
    t0 = time.perf_counter()
    spec = store_spec(store)
    if catalog.write_process is None or spec is None:
        return match_pending(lambda: catalog.engine, store), time.perf_counter() - t0
    from index import config_for_child

    model, _threads = catalog.write_process
    header = {"store": spec, "data_dir": str(Path(catalog.data_dir).resolve()), "model": model,
              "config": config_for_child(catalog.config)}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    for knob in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[knob] = "1"  # one core: the other is the server's
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(header).encode(), stdout=subprocess.PIPE,
                          env=env, cwd=str(Path(catalog.data_dir).resolve()), timeout=timeout)
    answer = None
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            answer = json.loads(line)
        except ValueError:
            continue
    if not isinstance(answer, dict) or "error" in answer or proc.returncode:
        why = answer.get("error") if isinstance(answer, dict) else f"exit code {proc.returncode}"
        raise RuntimeError(f"the alert matching process failed: {why}")
    stats = answer.get("result")
    return (None if stats is None else MatchStats(**stats)), time.perf_counter() - t0


# -- the child's side -----------------------------------------------------------------------------
class _Newest:
    """The newest published generation, loaded again only when a newer one was published."""

    def __init__(self, data_dir: Path, model: str, config) -> None:
        from index import load_encoder

        self.root = data_dir / "index"
        self.encoder = load_encoder(model, 1)
        self.config = config
        self.path: Path | None = None
        self.engine: SearchEngine | None = None

    def __call__(self) -> SearchEngine:
        path = current_generation(self.root)
        if self.engine is None or path != self.path:
            self.engine = SearchEngine.load(self.root, self.encoder, self.config)
            self.path = path
        return self.engine


def _open_store(spec: dict[str, Any]):
    if "postgres" in spec:
        from ._state_pg import PostgresStateStore

        return PostgresStateStore(spec["postgres"], ttl_seconds=spec["ttl"])
    from ._state import SQLiteStateStore

    return SQLiteStateStore(spec["sqlite"], ttl_seconds=spec["ttl"])


def _child() -> int:
    """Read the header, match what is marked, answer one JSON line: {"result": stats or null} or {"error": ...}."""
    os.nice(NICE)
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to the server's log stream, not into the answer
    from index import WriterLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(WriterLogFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    header = json.loads(sys.stdin.buffer.read())
    store = None
    try:
        from index import SearchConfig

        store = _open_store(header["store"])
        newest = _Newest(Path(header["data_dir"]), header["model"], SearchConfig(**header["config"]))
        stats = match_pending(newest, store)
        answer.write(json.dumps({"result": None if stats is None else asdict(stats)}) + "\n")
    except Exception as exc:
        log.exception("alert matching failed; the records stay marked and are matched on the next run")
        answer.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
    finally:
        if store is not None:
            store.close()
    return 0
