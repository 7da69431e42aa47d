"""docs/operations.md, run: every fenced ``sh`` block of the operator's guide, in order, as one bash
script, against a PostgreSQL server of the test's own and milvus-lite's server, on loopback ports
and in a temporary folder. A command that fails (or a block that no longer works) fails the test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, HAVE_MILVUS, free_port

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def guide_script() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert len(blocks) >= 10, "the guide lost its commands"
    # background jobs (the servers the guide starts) end with the script, whatever happens
    return "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + "\n".join(blocks)


def test_the_guide_names_every_topic():
    text = GUIDE.read_text(encoding="utf-8")
    for topic in ("CREATE ROLE", "CREATE DATABASE", "milvus-lite server", "one process", "--workers", "/readyz",
                  "/metrics", "PROMETHEUS_MULTIPROC_DIR", "stderr", "application/x-ndjson", "text/csv", "415",
                  "pg_dump", "records.sqlite", "cpc index build", "about a second"):
        assert topic in text, topic


@pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus / milvus-lite not installed")
def test_every_command_of_the_operators_guide_runs(postgres_server, tmp_path):
    bindir = str(Path(sys.executable).parent)  # cpc and milvus-lite, as installed with the package
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CPC_", "PG", "PROMETHEUS_"))}
    env.update({
        "PATH": bindir + os.pathsep + env.get("PATH", ""),
        "PGHOST": "127.0.0.1", "PGPORT": str(postgres_server.port), "PGUSER": "cpc",
        "CPC_DATA_DIR": str(tmp_path / "var"), "MILVUS_DATA": str(tmp_path / "milvus"),
        "MILVUS_PORT": str(free_port()), "CPC_PORT": str(free_port()), "BACKUP_DIR": str(tmp_path / "backups"),
        "CPC_CORPUS": str(DATA / "fictional.jsonl"),  # six records: a quick first build
        "CPC_RATE_LIMIT_PER_MINUTE": "0", "CPC_ENCODER_TOKENS_PER_MINUTE": "0",
    })
    proc = subprocess.run(["bash", "-c", guide_script()], env=env, capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    log = tmp_path / "var" / "cpc.log"
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:],
                                  log.read_text(errors="replace")[-3000:] if log.exists() else "")
    assert re.search(r'"imported":\s*1\b', proc.stdout) and '"index_type": "milvus"' in proc.stdout
    ready = re.search(r'"state": \{\s*"backend": "postgresql at 127.0.0.1', proc.stdout)
    assert ready, proc.stdout  # /readyz named the database the guide created
    assert (tmp_path / "backups" / "cpc-state.dump").stat().st_size > 0
