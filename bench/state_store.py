"""What the shared state store adds to each public API request: the rate-limit and encoder-budget
work a search does (check the encoder budget, take a request token, charge the encode), in memory
versus in the state store, so worker processes share the budgets.

    .venv/bin/python bench/state_store.py                 # SQLite (state.sqlite in a temp folder)
    CPC_STATE_URL=postgresql://... .venv/bin/python bench/state_store.py   # also PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant._limits import CostBudget, TokenBuckets  # noqa: E402
from assistant._state import SQLiteStateStore, StateStore  # noqa: E402


def per_request(store: StateStore | None, requests: int, clients: int) -> list[float]:
    """Microseconds of limit work for each of ``requests`` searches spread over ``clients`` addresses."""
    buckets = TokenBuckets(10**9, scope="api", store=store)  # limits high enough never to refuse
    budget = CostBudget(10**12, scope="encoder", store=store)
    times = []
    for i in range(requests):
        key = f"198.51.{i % clients // 256}.{i % clients % 256}"
        start = time.perf_counter()
        budget.wait(key)
        buckets.take(key)
        budget.charge(key, 15.0)  # a typical query's tokens
        times.append((time.perf_counter() - start) * 1e6)
    return times


def report(name: str, times: list[float]) -> None:
    times = sorted(times)
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
    print(f"{name:<12} p50 {statistics.median(times):7.1f} µs   p90 {p(0.9):7.1f} µs   p99 {p(0.99):7.1f} µs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=500)
    args = parser.parse_args()
    report("in memory", per_request(None, args.requests, args.clients))
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStateStore(Path(tmp) / "state.sqlite")
        try:
            report("SQLite", per_request(store, args.requests, args.clients))
        finally:
            store.close()
    url = os.environ.get("CPC_STATE_URL")
    if url:
        from assistant._state_pg import PostgresStateStore

        store = PostgresStateStore(url)
        try:
            report("PostgreSQL", per_request(store, args.requests, args.clients))
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
