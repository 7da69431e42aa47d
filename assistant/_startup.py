"""What `cpc serve` does before it serves: the first index build in a child process, and the
lines that tell a newcomer where the chat and the console are.

Why a child: building embeds every record and keeps the build's memory (the model's work
buffers, every passage's vectors) in the process that did it; a server that built its own
index on its first start stayed at 888 MB resident where a restart on the same folder serves
at 252 MB. The child exits and gives it all back; the server then only loads the index.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

log = logging.getLogger("cpc.api")


def needs_first_build(settings: Any) -> bool:
    """No index generation in the data folder yet (a fresh clone, a new folder). With an external
    vector store (CPC_VECTOR_URL) the server builds as before: `cpc index build` writes FAISS."""
    from index import CURRENT_POINTER as POINTER

    return settings.vector_url is None and not (settings.data_dir / "index" / POINTER).exists()


def build_in_child(settings: Any) -> int:
    """`cpc index build` in a child process, with this server's data folder, corpus and model;
    its progress bar on this terminal. The child's exit status (0: built). A folder another
    process holds is left to it (the build refuses with status 3, the server then follows it)."""
    # the corpus seeds the records only when the folder has none (as `cpc index build` without --corpus does)
    cmd = [sys.executable, "-m", "assistant.cli", "index", "build", "--data-dir", str(settings.data_dir),
           "--model", settings.model]
    log.info("first start: building the index of %s in a separate process, then serving", settings.data_dir)
    env = {**os.environ, "CPC_THREADS": str(settings.threads), "CPC_CORPUS": str(settings.corpus)}
    child = subprocess.Popen(cmd, env=env)
    log.info("index build running as pid %d", child.pid)
    return child.wait()


def console_state(settings: Any, accounts: int) -> str:
    key = settings.admin_token is not None and bool(settings.admin_token.get_secret_value())
    if accounts and key:
        return f"on ({accounts} staff account(s), and the shared key CPC_ADMIN_TOKEN for automation)"
    if accounts:
        return f"on ({accounts} staff account(s))"
    if key:
        return "on (shared key CPC_ADMIN_TOKEN only; add named accounts with `cpc staff add NAME --role admin`)"
    return "OFF: turn it on with `cpc staff add NAME --role admin`, or set CPC_ADMIN_TOKEN"


def welcome(settings: Any, records: int) -> list[str]:
    """The lines printed once the server is about to serve."""
    from ._state import open_state_store

    try:
        store = open_state_store(settings)
        try:
            accounts = sum(1 for a in store.accounts() if not a["disabled"])
        finally:
            store.close()
    except Exception as exc:  # the state store is checked again, and reported, when the app starts
        log.warning("could not count staff accounts: %s", exc)
        accounts = 0
    host = settings.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    base = f"http://{shown}:{settings.port}"
    return [
        f"serving {records} organisations on {base}" + (f" (listening on {host})" if shown != host else ""),
        f"  chat:          {base}/",
        f"  staff console: {base}/staff  ({console_state(settings, accounts)})",
        f"  API docs:      {base}/docs",
    ]


def say_welcome(settings: Any, records: int, workers: int = 1) -> None:
    lines = welcome(settings, records)
    if workers > 1:
        lines[0] += f" with {workers} workers"
    for line in lines:
        log.info("%s", line)
