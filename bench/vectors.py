"""Exact FAISS vs HNSW32-SQ8 on clustered 384-d vectors: build time, search p50 (unfiltered, and
under filters leaving 50% and 1% of the vectors), recall@10 against brute force, bytes on disk, and the
time and memory to open a saved store (memory-mapped) and serve the queries from it.

    .venv/bin/python bench/vectors.py                       # 10k, 100k, 300k (a few minutes on 2 cores)
    .venv/bin/python bench/vectors.py --sizes 10000 --queries 50
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index._vectors import FaissVectorStore, VectorFilter, open_vector_store  # noqa: E402

DIM, CITIES = 384, 100  # a city filter leaves ~1% of the vectors


def rss_mb() -> tuple[float, float]:
    """(private, file-backed) resident MB: mapped index pages are file-backed, shared between the
    processes serving one generation and dropped by the kernel under pressure."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["RssAnon"].split()[0]) / 1e3, int(fields["RssFile"].split()[0]) / 1e3


def clustered(n: int, rng: np.random.Generator, clusters: int = 200) -> np.ndarray:
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.7 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run(n: int, n_queries: int, kind: str, efs: list[int], ef_construction: int) -> dict:
    rng = np.random.default_rng(n)
    x = clustered(n, rng)
    city = rng.integers(0, CITIES, n)
    columns = [{"record": f"r{i // 3}", "country": ("pt", "cn")[i % 2], "city": f"c{c}", "sector": [f"s{i % 40}"]}
               for i, c in enumerate(city.tolist())]
    # a query reads like some stored vector: moved by noise ~30% of its length (noise of the vectors'
    # own scale per dimension; unscaled noise would make every query a random direction with no near neighbour)
    q = x[rng.integers(0, n, n_queries)] + (0.3 / np.sqrt(DIM)) * rng.standard_normal((n_queries, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact_max = n + 1 if kind == "flat" else 0
    store = FaissVectorStore(DIM, exact_max=exact_max, ef_construction=ef_construction)
    t = time.perf_counter()
    store.upsert(np.arange(n, dtype=np.int64) * 16, x, columns)
    build = time.perf_counter() - t
    out = {"n": n, "kind": store.kind, "build_s": build, "ef": efs if store.kind != "flat" else ["-"]}
    sims = x @ q.T
    half = np.arange(n) % 2 == 0
    for label, flt, allowed in (("all", None, None), ("50%", VectorFilter(include=(("country", ("pt",)),)), half),
                                ("1%", VectorFilter(include=(("city", ("c7",)),)), city == 7)):
        truth = sims if flt is None else np.where(allowed[:, None], sims, -9)
        best = [set((np.argsort(-truth[:, j])[:10] * 16).tolist()) for j in range(n_queries)]
        for ef in efs if store.kind != "flat" and flt is None else [store.ef_search]:
            store.ef_search = ef
            times, recalls = [], []
            for j in range(n_queries):
                t = time.perf_counter()
                _, ids = store.search(q[j], 10, flt)
                times.append(time.perf_counter() - t)
                recalls.append(len(best[j] & set(ids.tolist())) / 10)
            out.setdefault(f"p50_ms_{label}", []).append(1000 * float(np.median(times)))
            out.setdefault(f"recall_{label}", []).append(float(np.mean(recalls)))
        store.ef_search = FaissVectorStore(DIM).ef_search
    with tempfile.TemporaryDirectory() as tmp:
        store.save(Path(tmp), "dense")
        out["bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
        np.save(Path(tmp) / "queries.npy", q)
        del store
        # opened in a fresh process: memory freed here would otherwise hide what opening costs
        child = subprocess.run([sys.executable, __file__, "--open", tmp], capture_output=True, text=True, check=True)
        out.update(json.loads(child.stdout))
    return out


def open_and_serve(folder: Path) -> None:
    """Open the store saved in ``folder`` and run its queries; print time and memory as JSON."""
    q = np.load(folder / "queries.npy")
    before = rss_mb()
    t = time.perf_counter()
    opened = open_vector_store(folder, "dense")
    open_s = time.perf_counter() - t
    for j in range(len(q)):
        opened.search(q[j], 10)
        opened.search(q[j], 10, VectorFilter(include=(("city", ("c7",)),)))
    after = rss_mb()
    print(json.dumps({"open_s": open_s, "open_rss_mb": [after[0] - before[0], after[1] - before[1]]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw-sq8"])
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256], help="efSearch values to try unfiltered (HNSW)")
    parser.add_argument("--ef-construction", type=int, default=FaissVectorStore(DIM).ef_construction)
    parser.add_argument("--open", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.open:
        return open_and_serve(args.open)
    print(f"{'n':>8} {'kind':>9} {'build s':>8} {'ef':>4} {'p50 ms':>7} {'recall':>6} {'50% ms':>6} {'50% rec':>7}"
          f" {'1% ms':>6} {'1% rec':>6} {'MB':>6}"
          f" {'open s':>6} {'RSS MB (private+mapped)':>23}")
    for n in args.sizes:
        for kind in args.kinds:
            r = run(n, args.queries, kind, args.ef, args.ef_construction)
            for i, ef in enumerate(r["ef"]):
                print(f"{r['n']:>8} {r['kind']:>9} {r['build_s']:>8.1f} {ef:>4} {r['p50_ms_all'][i]:>7.2f}"
                      f" {r['recall_all'][i]:>6.3f} {r['p50_ms_50%'][0]:>6.2f} {r['recall_50%'][0]:>7.3f}"
                      f" {r['p50_ms_1%'][0]:>6.2f} {r['recall_1%'][0]:>6.3f}"
                      f" {r['bytes'] / 1e6:>6.1f} {r['open_s']:>6.2f}"
                      f" {r['open_rss_mb'][0]:>11.1f} + {r['open_rss_mb'][1]:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
