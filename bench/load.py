"""Load test: concurrent clients mixing search and chat in pt, zh and en for a fixed time.

Starts `cpc serve` on a loopback port over a data folder (or targets --url), with rate limits
off (they would turn the load into intended 429s), and runs --clients asyncio clients for
--seconds. Half the turns are searches; the others are chat conversations: a request, then
follow-ups ("mais", "更多", "more") in its language. Reports requests per second, p50/p99
latency overall and per route, errors (any non-2xx, or no answer), and the server's resident
memory at start, before and after the measured run. "Before" is taken after a warm-up with the
same clients (--warm-up seconds), once the server has its worker threads and caches: growth
from there is what sustained load adds, which is what a leak would show as.

    python bench/load.py                       # 16 clients, 60 s, a server on the shipped corpus
    python bench/load.py --seconds 10 --clients 4 --data-dir var
    python bench/load.py --url http://127.0.0.1:8000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from _server import start_server  # bench/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
MORE = {"pt": "mais", "zh": "更多", "en": "more"}


def samples() -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = {}
    for line in (REPO / "index/data/query_samples.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("lang") in MORE:
                by_lang.setdefault(row["lang"], []).append(row["text"])
    return by_lang


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


def rss_bytes(pid: int | None, url: str) -> int:
    """Resident memory of the server: /proc when it is our child, else its /metrics."""
    if pid is not None:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    text = httpx.get(url + "/metrics", timeout=10).text
    m = re.search(r"^process_resident_memory_bytes ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


@dataclass
class Tally:
    latency: dict[str, list[float]] = field(default_factory=dict)  # route -> seconds
    errors: list[str] = field(default_factory=list)
    throttled: int = 0

    def add(self, route: str, seconds: float, status: int | None, note: str = "") -> None:
        self.latency.setdefault(route, []).append(seconds)
        if status == 429:
            self.throttled += 1
        if status is None or not 200 <= status < 300:
            self.errors.append(f"{route} {status} {note}"[:300])


async def client_loop(n: int, url: str, until: float, texts: dict[str, list[str]], tally: Tally) -> None:
    rng = random.Random(n)
    langs = sorted(texts)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def call(route: str, body: dict) -> dict | None:
            t0 = time.perf_counter()
            try:
                r = await http.post(route, json=body)
            except httpx.HTTPError as exc:
                tally.add(route, time.perf_counter() - t0, None, repr(exc))
                return None
            tally.add(route, time.perf_counter() - t0, r.status_code, r.text[:200])
            return r.json() if r.status_code == 200 else None

        while time.monotonic() < until:
            lang = rng.choice(langs)
            query = rng.choice(texts[lang])
            if rng.random() < 0.5:
                await call("/api/v1/search", {"query": query, "limit": 10})
                continue
            reply = await call("/api/v1/chat", {"text": query, "channel": "web"})  # the server issues the session
            for _ in range(rng.randint(1, 2)):
                if reply is None or time.monotonic() >= until:
                    break
                reply = await call("/api/v1/chat", {"session_id": reply["session_id"], "text": MORE[lang], "channel": "web"})


async def run_load(url: str, clients: int, seconds: float, texts: dict[str, list[str]]) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    await asyncio.gather(*(client_loop(n, url, start + seconds, texts, tally) for n in range(clients)))
    return tally, time.monotonic() - start


def warm_up(url: str, texts: dict[str, list[str]]) -> None:
    """One search and one conversation per language: loads the tokenisers' dictionaries."""
    with httpx.Client(base_url=url, timeout=120) as http:
        for lang, pool in texts.items():
            for text in pool[:3]:
                http.post("/api/v1/search", json={"query": text}).raise_for_status()
            first = http.post("/api/v1/chat", json={"text": pool[0]})
            first.raise_for_status()
            http.post("/api/v1/chat", json={"session_id": first.json()["session_id"], "text": MORE[lang]}).raise_for_status()


def report(tally: Tally, elapsed: float, clients: int, rss: tuple[int, int, int]) -> dict:
    every = [s for values in tally.latency.values() for s in values]
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    out = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "rps": round(len(every) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": ms(statistics.median(every)) if every else 0.0,
        "p99_ms": ms(pct(every, 0.99)),
        "errors": len(tally.errors),
        "throttled_429": tally.throttled,
        "routes": {route: {"requests": len(v), "p50_ms": ms(statistics.median(v)), "p99_ms": ms(pct(v, 0.99))}
                   for route, v in sorted(tally.latency.items())},
        "rss_start_mb": round(rss[0] / 2**20, 1),
        "rss_before_mb": round(rss[1] / 2**20, 1),
        "rss_after_mb": round(rss[2] / 2**20, 1),
        "rss_growth_pct": round(100 * (rss[2] - rss[1]) / rss[1], 1) if rss[1] else None,
        "first_errors": tally.errors[:5],
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="target a running server instead of starting one (use its /metrics for memory)")
    ap.add_argument("--data-dir", type=Path, help="data folder for the started server (default: a temp folder)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--warm-up", type=float, default=5, help="seconds of unmeasured load before 'before'")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    texts = samples()

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="cpc-load-")
    url = args.url
    if not url:
        proc, url = start_server(args.data_dir or Path(tmp.name) / "var", Path(tmp.name) / "serve.log")
    pid = proc.pid if proc else None
    try:
        rss_start = rss_bytes(pid, url)
        warm_up(url, texts)
        if args.warm_up > 0:
            asyncio.run(run_load(url, args.clients, args.warm_up, texts))
        rss_before = rss_bytes(pid, url)
        tally, elapsed = asyncio.run(run_load(url, args.clients, args.seconds, texts))
        rss_after = rss_bytes(pid, url)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
        tmp.cleanup()

    out = report(tally, elapsed, args.clients, (rss_start, rss_before, rss_after))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"{out['clients']} clients for {out['seconds']} s against {url}")
        print(f"  {out['requests']} requests, {out['rps']} req/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
        for route, r in out["routes"].items():
            print(f"  {route:<16} {r['requests']:>6} requests  p50 {r['p50_ms']:>8} ms  p99 {r['p99_ms']:>8} ms")
        print(f"  errors {out['errors']} (429: {out['throttled_429']})")
        print(f"  server RSS: {out['rss_start_mb']} MB at start, {out['rss_before_mb']} MB after the warm-up, "
              f"{out['rss_after_mb']} MB after the load ({out['rss_growth_pct']}%)")
        for e in out["first_errors"]:
            print(f"  error: {e}")
    return 0 if not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
