"""The first hour: `cpc serve` on an empty folder builds its index in another process, then says
where the chat and the console are and whether the console is on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import REPO, free_port


def test_welcome_names_the_pages_and_how_to_turn_the_console_on(tmp_path):
    from assistant import _accounts as accounts
    from assistant._startup import welcome
    from assistant._state import SQLiteStateStore
    from assistant.settings import Settings

    off = welcome(Settings(data_dir=tmp_path, admin_token=None, host="0.0.0.0", port=8123), 63)
    assert off[0] == "serving 63 organisations on http://127.0.0.1:8123 (listening on 0.0.0.0)"
    assert off[1].split() == ["chat:", "http://127.0.0.1:8123/"]
    assert "http://127.0.0.1:8123/staff" in off[2] and "OFF" in off[2] and "cpc staff add" in off[2] and "CPC_ADMIN_TOKEN" in off[2]
    assert off[3].endswith("/docs")
    keyed = welcome(Settings(data_dir=tmp_path, admin_token="k"), 63)[2]
    assert "on (shared key CPC_ADMIN_TOKEN only" in keyed
    store = SQLiteStateStore(tmp_path / "state.sqlite")
    store.add_account("ana", "admin", accounts.hash_password("a long password"))
    store.add_account("bo", "staff", accounts.hash_password("a long password"))
    store.update_account("bo", disabled=True)
    store.close()
    assert "on (1 staff account(s))" in welcome(Settings(data_dir=tmp_path, admin_token=None), 63)[2]


def test_the_first_start_builds_in_another_process_then_serves(tmp_path):
    lines = (REPO / "corpus/data/organisations.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    corpus = tmp_path / "small.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "CPC_THREADS": "1", "CPC_ADMIN_TOKEN": "",
           "CPC_STATE_URL": ""}
    env.pop("CPC_STATE_URL")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--data-dir", str(tmp_path / "var"),
                                   "--corpus", str(corpus), "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            assert server.poll() is None, log_path.read_text(errors="replace")[-3000:]
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert ready.json()["records"] == 4
        messages = [json.loads(line)["message"] for line in log_path.read_text(errors="replace").splitlines()
                    if line.startswith("{")]
        child = next(m for m in messages if m.startswith("index build running as pid"))
        child_pid = int(child.rsplit(" ", 1)[1])
        assert child_pid != server.pid
        assert not Path(f"/proc/{child_pid}").exists() or "zombie" in Path(f"/proc/{child_pid}/status").read_text()
        assert f"  chat:          http://127.0.0.1:{port}/" in messages
        assert any(m.startswith(f"  staff console: http://127.0.0.1:{port}/staff  (OFF") for m in messages)
        # a restart on the built folder builds nothing
    finally:
        server.terminate()
        server.wait(timeout=60)
    with open(log_path, "ab") as log:
        again = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--data-dir", str(tmp_path / "var"),
                                  "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            assert again.poll() is None
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert log_path.read_text(errors="replace").count("index build running as pid") == 1
    finally:
        again.terminate()
        again.wait(timeout=60)
