"""The first hour: `cpc serve` on an empty folder builds its index in another process, then says
where the chat and the console are and whether the console is on."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import httpx

from conftest import REPO, LiveServer, free_port


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


def test_routes_are_built_at_start_up_not_by_the_first_requests(shipped_catalog, tmp_path, monkeypatch):
    """FastAPI builds a router's routes when a request is first matched against it, reading builtins'
    signatures with ast, which CPython 3.11 cannot run on two threads at once: two services in one
    process, answering their first requests together, failed one with a 500 (assistant.app.build_routes)."""
    from assistant.app import create_app
    from assistant.settings import Settings

    app = create_app(Settings(data_dir=tmp_path), shipped_catalog)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        parsed_by_fastapi: list[str] = []
        parse = ast.parse

        def watched(*args, **kwargs):  # parsing while FastAPI builds a route (not an array read inside a request)
            if any(frame.name == "get_dependant" and "/fastapi/" in frame.filename for frame in traceback.extract_stack()):
                parsed_by_fastapi.append(threading.current_thread().name)
            return parse(*args, **kwargs)

        monkeypatch.setattr(ast, "parse", watched)
        assert client.get("/healthz").status_code == 200
        assert client.post("/api/v1/search", json={"query": "moldes para plásticos"}).status_code == 200
        assert client.post("/api/v1/chat", json={"text": "olá"}).status_code == 200
        assert client.get("/api/v1/organisations/none-such").status_code == 404
        assert client.get("/no-such-page").status_code == 404
        assert parsed_by_fastapi == []
