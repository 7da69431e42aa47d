"""Fit the relevance floor (``index.SearchConfig.floor``) per query language.

Every labelled query of the chosen split is ranked once with the floor off; then a small grid
of floors is scored on those rankings: nDCG@10 of what is left, plus how often an out-of-corpus
question gets no results and an answerable one gets a relevant first hit. The best floor per
language is written to index/data/floor.json (temp file, then rename).
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from ._dataset import Dataset
from ._metrics import evaluate_rankings
from ._run import build_engine, progress_bar

GRID = {
    "score": (0.15, 0.18, 0.2, 0.22, 0.25, 0.28, 0.3, 0.33),
    "dense": (0.1, 0.15, 0.2, 0.25, 0.3),
    "dense_off_sector": (0.2, 0.25, 0.3, 0.35, 0.4, 1.0),
}
# An honest "nothing fits" weighs a little more than a perfect answer: every question can be
# answered badly, but only a few out-of-corpus questions are in a dev set.
WEIGHTS = {"ndcg": 1.0, "abstained": 2.0, "first_hit": 0.5}


def _collect(datasets: list[Dataset], encoder, progress: bool) -> list[dict[str, Any]]:
    """One unfloored ranking per query: [{lang, qrels, answerable, analysis, hits}]."""
    items = []
    for ds in datasets:
        engine = build_engine(ds, encoder, progress)
        engine.config.floor = None
        engine.config.judgement = "floor"  # the floor, off: every hit, to fit it on
        with progress_bar(f"ranking {ds.root.name}", len(ds.queries), progress, "query") as bar:
            for q in ds.queries.values():
                qrels = ds.qrels.get(q.id, {})
                if q.answerable and not any(g >= ds.sought for g in qrels.values()):
                    bar.update(1)
                    continue
                result = engine.search(q.text, limit=100)
                items.append({"id": f"{ds.root.name}/{q.id}", "lang": q.lang, "qrels": qrels,
                              "answerable": q.answerable, "analysis": result.analysis, "hits": result.hits})
                bar.update(1)
    return items


def score_floor(items: list[dict[str, Any]], floor: dict[str, float]) -> dict[str, float]:
    from index import SearchEngine

    ranked, qrels = {}, {}
    abstained = ooc = first = answerable = 0
    for it in items:
        kept = [h.record.id for h in SearchEngine.apply_floor(it["hits"], it["analysis"], floor)]
        if not it["answerable"]:
            ooc += 1
            abstained += not kept
            continue
        answerable += 1
        first += bool(kept) and it["qrels"].get(kept[0], 0) >= 1
        ranked[it["id"]], qrels[it["id"]] = kept, it["qrels"]
    ndcg = evaluate_rankings(ranked, qrels) if ranked else {}
    mean = sum(m["ndcg@10"] for m in ndcg.values()) / len(ndcg) if ndcg else 0.0
    out = {"ndcg@10": mean, "abstained": abstained / ooc if ooc else 1.0, "first_hit": first / answerable if answerable else 1.0,
           "queries": answerable, "out_of_corpus": ooc}
    # per question, so a handful of out-of-corpus questions cannot outweigh many answerable ones
    gained = (WEIGHTS["ndcg"] * mean + WEIGHTS["first_hit"] * out["first_hit"]) * answerable + WEIGHTS["abstained"] * abstained
    out["objective"] = gained / max(1, answerable + ooc)
    return out


def _best(items: list[dict[str, Any]], grid: dict[str, tuple], fixed: dict[str, float]) -> tuple[dict[str, float], dict]:
    best = None
    for values in itertools.product(*grid.values()):
        floor = {**fixed, **dict(zip(grid, values))}
        fig = score_floor(items, floor)
        key = (round(fig["objective"], 6), *(-floor[k] for k in GRID))  # ties: the lowest floor
        if best is None or key > best[0]:
            best = (key, floor, fig)
    assert best is not None
    return best[1], best[2]


def fit_floor(datasets: list[Dataset], encoder=None, progress: bool = True) -> dict[str, Any]:
    """The best floor per query language on these datasets, with its figures and the unfloored ones.

    The gates (dense and keyword thresholds for off-sector and topic-less hits) are fitted on all
    languages together, as each language has only a few out-of-corpus questions; then the score
    floor alone per language, where the score distributions differ."""
    items = _collect(datasets, encoder, progress)
    langs = sorted({it["lang"] for it in items})
    gates = {k: v for k, v in GRID.items() if k != "score"}
    shared, _ = _best(items, GRID, {})
    gate_values = {k: shared[k] for k in gates}
    chosen: dict[str, dict[str, float]] = {}
    figures: dict[str, Any] = {}
    off = {k: -9.0 for k in GRID}
    for lang in langs:
        mine = [it for it in items if it["lang"] == lang]
        chosen[lang], fig = _best(mine, {"score": GRID["score"]}, gate_values)
        figures[lang] = {"floor": fig, "no_floor": score_floor(mine, off)}
    chosen["*"] = dict(shared)  # languages the dev sets do not have get the pooled floor
    return {"languages": chosen, "figures": figures}


def write_floor(fitted: dict[str, Any], path: Path, sources: list[str], split: str) -> Path:
    body = {
        "about": "Relevance floor per query language, fitted by `cpc eval --fit-floor` on the datasets below; "
                 "see index.SearchConfig.floor",
        "fitted_on": {"datasets": sources, "split": split, "date": time.strftime("%Y-%m-%d")},
        "languages": fitted["languages"],
        "figures": fitted["figures"],
    }
    from index import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return path
