"""Start `cpc serve` on a free loopback port for the benchmarks, and wait until it is ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


LIMIT_SETTINGS = ("CPC_RATE_LIMIT_PER_MINUTE", "CPC_CHAT_RATE_LIMIT_PER_MINUTE", "CPC_ENCODER_TOKENS_PER_MINUTE")


def start_server(data_dir: Path, log_path: Path, env: dict[str, str] | None = None,
                 timeout: float = 900, limits: bool = False, args: tuple[str, ...] = (),
                 poll: float = 0.5, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`cpc serve` (``args`` added to its command line) with rate limits off, or at their defaults
    with ``limits``; ``env`` adds settings. Its log goes to a file (an unread pipe would block it).
    ``timeout`` allows for an empty data folder, which builds the index first; ``/readyz`` is asked
    every ``poll`` seconds (bench/scale.py times the start-up with a short one). With ``workers``
    > 1, returns once every worker has started (each logs its startup)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if k not in LIMIT_SETTINGS}
    if not limits:
        base.update({name: "0" for name in LIMIT_SETTINGS})
    env = {**base, "CPC_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **(env or {})}
    if workers > 1:
        args = ("--workers", str(workers), *args)
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port), *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + log_path.read_text(errors="replace")[-2000:])
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200 and (workers == 1 or started(log_path, log_start) >= workers):
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    proc.kill()
    raise RuntimeError("server did not become ready: " + log_path.read_text(errors="replace")[-2000:])


def started(log_path: Path, offset: int = 0) -> int:
    """How many server processes logged their startup in the log since ``offset``."""
    with open(log_path, "rb") as log:
        log.seek(offset)
        return log.read().count(b"Application startup complete.")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's workers, its write process); one that ends meanwhile is passed over."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # it ended meanwhile
            pass
    return out
