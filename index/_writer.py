"""The writes of a serving process, run in a child process.

A write done inside the server held the server's GIL for most of its length (tokenising the
new records, merging every record's columns and keyword arrays, writing a generation of
hundreds of MB), and every search of the process waited for its turns: at 100k records a
20-record ingest stalled searches up to 450 ms, and the server's memory peaked at 2.5 GB with a
second copy of the index in it. Here a child process (``_child``) does the
write as a delegate of the server, which keeps the right to write (the data folder's writer
lock) and only loads the generation the child published (``Catalog._follow``).

The protocol is JSON lines: the parent sends a header line (the operation, the encoder spec,
the search config) and, for an upsert, the records as their stored JSON, one a line; the child
answers ``{"progress": [done, total]}`` lines and ends with one ``{"result": ...}`` or
``{"error": ...}`` line. A child killed mid-write leaves its write unfinished, and the next
write repairs it (``_lock.WriteLock``) as after any killed writer.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from corpus import STORED, CorpusError, Organisation, record_json

from ._engine import SearchConfig, SearchIndexError

Progress = Callable[[int, int], None]
log = logging.getLogger("cpc.index")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
CHILD = "import sys; from index._writer import _child; sys.exit(_child())"
WRITER_NICE = 10


class WriteProcessError(SearchIndexError):
    """The child process could not do the write (it failed or was killed): nothing was changed,
    or what a killed write left is repaired by the next write."""


@dataclasses.dataclass
class Outcome:
    """What the child answered: ``result`` on success, else ``error`` ({"kind": ..., ...})."""

    result: dict | None = None
    error: dict | None = None


def config_for_child(config: SearchConfig) -> dict:
    """The search config as JSON for the child. The fitted judgement is left out: writes never judge,
    and the child reads the same judgement file if it ever needs one."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "model"}


def write_in_child(data_dir: Path, model: str, threads: int | None, config: SearchConfig, op: str, *,
                   records: Sequence[Organisation] = (), ids: Sequence[str] = (), corpus: str | None = None,
                   repair: bool = False, progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> Outcome:
    """Run one write (``upsert``, ``delete`` or ``rebuild``) on ``data_dir`` in a child process.
    Setting ``cancel`` kills the child (its client left): a killed write changes nothing."""
    data_dir = Path(data_dir).resolve()  # the child starts in the data folder: relative paths would not hold
    corpus = str(Path(corpus).resolve()) if corpus is not None else None
    header = {"op": op, "data_dir": str(data_dir), "model": model, "threads": threads,
              "config": config_for_child(config), "ids": list(ids), "corpus": corpus, "repair": repair}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env, cwd=str(data_dir))
    assert proc.stdin is not None and proc.stdout is not None
    if cancel is not None:
        def watch() -> None:
            while proc.poll() is None:
                if cancel.wait(0.2):
                    proc.kill()
                    return

        threading.Thread(target=watch, name="write-cancel", daemon=True).start()
    outcome = Outcome()
    try:
        try:
            proc.stdin.write(json.dumps(header).encode("utf-8") + b"\n")
            for rec in records:
                proc.stdin.write(record_json(rec).encode("utf-8") + b"\n")
            proc.stdin.close()
        except BrokenPipeError:  # it died at once: its exit code says more below
            pass
        for raw in proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if "progress" in message and progress is not None:
                progress(*message["progress"])
            elif "result" in message:
                outcome.result = message["result"]
            elif "error" in message:
                outcome.error = message["error"]
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if outcome.result is None and outcome.error is None:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        outcome.error = {"kind": "died", "message": f"the write process ended ({how}) before it finished"}
    return outcome


class JsonLines(logging.Formatter):
    """The write process's log lines in the shape of the server's (assistant/_observability.py)."""

    def format(self, record: logging.LogRecord) -> str:
        from datetime import datetime, timezone

        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
               "pid": record.process, "process": "writer"}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _child() -> int:
    """The child's side: read the request, do the write through a delegated Catalog, answer."""
    # a batch job beside a server answering searches on the same cores: the kernel runs the server first
    os.nice(WRITER_NICE)
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the answers
    handler = logging.StreamHandler(sys.stderr)  # the server's log stream: one JSON object a line, as its own
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.captureWarnings(True)

    def send(**message) -> None:
        answer.write(json.dumps(message, ensure_ascii=False) + "\n")

    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    records = [Organisation.model_validate_json(line, context=STORED) for line in stdin if line.strip()]

    from ._catalog import Catalog, StorageFullError
    from ._encoders import load_encoder

    try:
        encoder = load_encoder(header["model"], header["threads"])
        catalog = Catalog(Path(header["data_dir"]), encoder, SearchConfig(**header["config"]), delegate=True,
                          repair=header["repair"])
        progress = lambda done, total: send(progress=[done, total])  # noqa: E731
        try:
            op = header["op"]
            if op == "upsert":
                catalog.upsert(records, progress)
                send(result={"imported": len(records)})
            elif op == "delete":
                send(result={"deleted": catalog.delete(header["ids"])})
            elif op == "rebuild":
                catalog.rebuild(header["corpus"], progress)
                send(result={})
            else:
                raise ValueError(f"unknown write '{op}'")
        finally:
            catalog.close()
    except CorpusError as exc:  # the only one an upsert raises: a record whose languages do not fit
        first = exc.errors[0]
        send(error={"kind": "record", "position": (first.line or 1) - 1, "field": first.field, "message": first.message})
    except StorageFullError as exc:
        send(error={"kind": "full", "message": str(exc.__cause__ or exc)})
    except Exception as exc:  # the parent raises it as a WriteProcessError
        log.exception("the write failed")
        send(error={"kind": "failed", "message": f"{type(exc).__name__}: {exc}"})
    return 0


def full_disk(message: str) -> OSError:
    """The child's full-disk error as the parent raises it (``StorageFullError`` wraps it)."""
    return OSError(errno.ENOSPC, message)

