"""The benchmark scripts run end to end (a few seconds) against a live server."""

import json
import shutil
import subprocess
import sys
import time

from conftest import REPO, LiveServer


def test_load_script_smoke(shipped_catalog, tmp_path):
    from assistant.app import create_app
    from assistant.settings import Settings

    with LiveServer(create_app(Settings(data_dir=tmp_path, metrics_public=True), shipped_catalog)) as live:
        out = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), "--url", live.url, "--seconds", "3",
                              "--clients", "2", "--warm-up", "1", "--json"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    report = json.loads(out.stdout)
    assert report["errors"] == 0 and report["requests"] >= 4 and report["rps"] > 0
    assert set(report["routes"]) <= {"/api/v1/search", "/api/v1/chat"} and report["routes"]
    assert report["rss_before_mb"] > 10 and report["p99_ms"] >= report["p50_ms"] > 0


def test_latency_script_smoke(shipped_catalog, tmp_path):
    """bench/search_latency.py against a live server: a few queries, both sides timed, a ratio out."""
    from assistant.app import create_app
    from assistant.settings import Settings

    with LiveServer(create_app(Settings(data_dir=tmp_path), shipped_catalog)) as live:
        out = subprocess.run([sys.executable, str(REPO / "bench" / "search_latency.py"), "--url", live.url, "-n", "12",
                              "--block", "4", "--json"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    report = json.loads(out.stdout)
    assert report["queries"] == 12 and report["api_p99_ms"] >= report["api_p50_ms"] > 0
    assert report["encoder_p50_ms"] > 0 and report["ratio_p50"] == round(report["api_p50_ms"] / report["encoder_p50_ms"], 3)


def test_load_script_abuse_mode_smoke(shipped_catalog, tmp_path):
    """--abuse against a live server with limits on: normal clients alone, then beside one client
    sending maximum-length Chinese messages, which are searched until its encoder budget is spent."""
    from assistant.app import create_app
    from assistant.settings import Settings

    # The server's default token budget holds a normal client's request a second (two encodes of
    # 10-40 tokens each); the abuser sends ten long messages a second (~60 tokens each, as capped),
    # so its 500-token burst is spent within the first second. The request limit is raised so that
    # the abuser's 429s come from the token budget. (At 1,200 tokens a minute a normal client ran
    # out within the six seconds of the two phases: a flaky test, not an abuser's effect.)
    settings = Settings(data_dir=tmp_path, rate_limit_per_minute=1200, encoder_tokens_per_minute=3000)
    server = LiveServer(create_app(settings, shipped_catalog))
    server.server.config.proxy_headers = True  # each bench client names its own address
    server.server.config.forwarded_allow_ips = "127.0.0.1"
    with server as live:
        out = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), "--abuse", "--url", live.url,
                              "--seconds", "3", "--clients", "2", "--warm-up", "0", "--abuser-per-minute", "600",
                              "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    report = json.loads(out.stdout)
    assert report["mode"] == "abuse" and report["normal_clients"] == 2 and report["errors"] == 0
    (pair,) = report["pairs"]
    assert pair["searches_without"] > 0 and pair["searches_with"] > 0
    assert report["ratio"] == round(report["search_p50_with_ms"] / report["search_p50_without_ms"], 2)
    abuser = pair["abuser"]
    assert abuser["answered"] >= 1 and abuser["intents"].get("search", 0) == abuser["answered"]
    assert abuser["throttled_429"] >= 1 and abuser["failed"] == 0


def test_load_script_starts_a_server_with_two_workers(shipped_data_dir, tmp_path):
    """--workers 2 --threads 1: `cpc serve --workers 2` over a copy of a built folder, both workers
    up before the load starts, memory summed over the parent and its workers."""
    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), "--data-dir", str(data_dir), "--workers", "2",
                          "--threads", "1", "--seconds", "3", "--clients", "2", "--warm-up", "0", "--json"],
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    report = json.loads(out.stdout)
    assert report["workers"] == 2 and report["threads"] == 1
    assert report["errors"] == 0 and report["requests"] >= 4 and report["rps"] > 0
    assert report["rss_before_mb"] > 300  # three processes, two of them each holding the model and the index


def test_lean_client_reads_what_httpx_reads_and_counts_failures(shipped_catalog, tmp_path):
    """bench/load.py's lean HTTP client against a live server: the same status and JSON body as
    httpx for a search, a refused request counted as an error with its status, and a server that
    is gone counted as an error (no answer), not raised."""
    import asyncio

    import httpx

    sys.path.insert(0, str(REPO / "bench"))
    import load

    from assistant.app import create_app
    from assistant.settings import Settings

    body = {"query": "cortiça", "limit": 3}
    with LiveServer(create_app(Settings(data_dir=tmp_path), shipped_catalog)) as live:
        expected = httpx.post(live.url + "/api/v1/search", json=body, timeout=60)

        async def exchange() -> list:
            http = load.LeanHTTP(live.url)
            try:
                return [await http.post("/api/v1/search", body), await http.post("/api/v1/search", {"query": ""}),
                        await http.post("/api/v1/search", body)]  # the same connection after a refusal
            finally:
                await http.close()

        (status, answer, _), (refused, error, _), (again, _, _) = asyncio.run(exchange())
        assert (status, answer) == (expected.status_code, expected.json()) and status == again == 200
        assert refused == 422 and set(error) == {"error", "detail"}

        tally = load.Tally()
        asyncio.run(load.client_loop(0, live.url, time.monotonic() + 1.0, {"en": ["cork stoppers"]}, tally))
        assert tally.latency and not tally.errors
        url = live.url
    tally = load.Tally()  # the server has stopped
    asyncio.run(load.client_loop(0, url, time.monotonic() + 0.5, {"en": ["cork stoppers"]}, tally))
    assert tally.errors and all(" None " in e for e in tally.errors)


def test_paired_script_compares_two_checkouts(shipped_data_dir, tmp_path):
    """bench/paired.py with this checkout on both sides, over copies of a built folder: both servers
    answer every query, the paired figures and the plot are written, and a folder that is not a
    checkout is refused before anything starts."""
    old_data, new_data = tmp_path / "old", tmp_path / "new"
    shutil.copytree(shipped_data_dir, old_data)
    shutil.copytree(shipped_data_dir, new_data)
    out_json = tmp_path / "paired.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "paired.py"), "--old-tree", str(REPO), "--old-data", str(old_data),
                          "--new-data", str(new_data), "--queries", "24", "--rounds", "2", "--threads", "1",
                          "--log-dir", str(tmp_path), "--out", str(out_json), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out_json.read_text())
    assert result["old"]["n"] == result["new"]["n"] == 48 and len(result["diffs_ms"]) == 48
    assert len(result["rounds"]) == 2 and result["encoder_p50_ms"] > 0 and result["new"]["ratio_to_encoder"] > 0
    assert (tmp_path / "paired.png").stat().st_size > 1000 and "new/old p50" in run.stdout
    refused = subprocess.run([sys.executable, str(REPO / "bench" / "paired.py"), "--old-tree", str(tmp_path),
                              "--old-data", str(old_data)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "not a checkout" in refused.stderr
