"""Shared connector parts: mounting only when configured, splitting, de-duplication, language hints."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from conftest import LiveServer
from connectors.base import Deduplicator, TTLCache, lang_hint, split_lines, utf8_len, utf16_len, wrap_line


def test_routes_are_absent_without_settings(live_api):
    with httpx.Client(base_url=live_api.url) as c:
        assert c.post("/telegram/webhook", json={"update_id": 1}).status_code == 404
        assert c.get("/wechat", params={"signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"}).status_code == 404
        assert c.post("/wechat", content="<xml/>").status_code == 404


def test_telegram_token_without_secret_mounts_no_webhook(shipped_catalog, tmp_path):
    from assistant.app import create_app
    from assistant.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, telegram_token="1:abc"), shipped_catalog)
    with LiveServer(app) as server:
        assert httpx.post(f"{server.url}/telegram/webhook", json={"update_id": 1}).status_code == 404
    assert not hasattr(app.state, "telegram")


@pytest.mark.parametrize("code, lang", [("pt-BR", "pt"), ("pt", "pt"), ("zh-hans", "zh"), ("zh_CN", "zh"),
                                        ("en-GB", "en"), ("fr", None), ("", None), (None, None)])
def test_lang_hint(code, lang):
    assert lang_hint(code) == lang


def test_split_keeps_lines_whole_and_within_the_limit():
    lines = [f"{i}. " + "palavra " * (i % 7 + 1) for i in range(200)]
    chunks = split_lines(lines, 300, len)
    assert all(len(c) <= 300 for c in chunks) and "\n".join(chunks) == "\n".join(lines)
    assert split_lines(["só uma linha"], 300, len) == ["só uma linha"]


def test_wrap_prefers_spaces_and_measures_like_the_platform():
    line = " ".join(["moldes & ferramentas"] * 50)
    pieces = wrap_line(line, 100, lambda s: len(s.replace("&", "&amp;")))
    assert all(len(p.replace("&", "&amp;")) <= 100 for p in pieces) and " ".join(pieces) == line
    assert all(not p.endswith(" ") and p.split()[-1] in ("moldes", "&", "ferramentas") for p in pieces)
    han = "软木" * 700
    pieces = wrap_line(han, 2000, utf8_len)
    assert "".join(pieces) == han and all(utf8_len(p) <= 2000 for p in pieces)
    assert utf16_len("😀a") == 3


def test_deduplicator_runs_each_id_once():
    async def main():
        runs = []

        async def work(x):
            runs.append(x)
            await asyncio.sleep(0.05)
            return f"answer {x}"

        dedup = Deduplicator(ttl=60)
        a, new_a = dedup.start("42", lambda: work(1))
        b, new_b = dedup.start("42", lambda: work(2))  # a retry while the first runs
        assert new_a and not new_b and a is b
        assert await a.task == "answer 1"
        c, new_c = dedup.start("42", lambda: work(3))  # a retry after it finished
        assert not new_c and c.task.result() == "answer 1" and runs == [1]

    asyncio.run(main())


def test_deduplicators_of_two_workers_sharing_a_store_run_each_id_once(tmp_path):
    """Each worker process has its own Deduplicator; the state store decides which one runs an id."""
    from assistant._state import SQLiteStateStore

    async def main(first, second):
        runs = []

        async def work(x):
            runs.append(x)
            return x

        here, there = Deduplicator(ttl=60, namespace="test"), Deduplicator(ttl=60, namespace="test")
        a, new_a = here.start("42", lambda: work(1), first)
        b, new_b = there.start("42", lambda: work(2), second)  # the retry reached the other worker
        assert new_a and (b, new_b) == (None, False)
        await a.task
        c, new_c = here.start("42", lambda: work(3), first)  # and a retry reaching the first joins its result
        d, new_d = there.start("43", lambda: work(4), second)  # another id is new anywhere
        await d.task
        assert c is a and not new_c and new_d and runs == [1, 4]

    first, second = SQLiteStateStore(tmp_path / "state.sqlite"), SQLiteStateStore(tmp_path / "state.sqlite")
    try:
        asyncio.run(main(first, second))
    finally:
        first.close()
        second.close()


def test_ttl_cache_expires_and_is_bounded():
    cache: TTLCache[int] = TTLCache(ttl=0.05, max_items=3)
    for i in range(5):
        cache.put(str(i), i)
    assert len(cache) == 3 and cache.get("0") is None and cache.get("4") == 4
    time.sleep(0.08)
    assert cache.get("4") is None and len(cache) == 0
