"""Start `cpc serve` on a free loopback port for the benchmarks, and wait until it is ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def start_server(data_dir: Path, log_path: Path, env: dict[str, str] | None = None,
                 timeout: float = 900) -> tuple[subprocess.Popen, str]:
    """`cpc serve` with rate limits off (``env`` adds settings); its log goes to a file (an unread
    pipe would block it). ``timeout`` allows for an empty data folder, which builds the index first."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CPC_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1",
               CPC_RATE_LIMIT_PER_MINUTE="0", CPC_CHAT_RATE_LIMIT_PER_MINUTE="0", **(env or {}))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + log_path.read_text(errors="replace")[-2000:])
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not become ready: " + log_path.read_text(errors="replace")[-2000:])
