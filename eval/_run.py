"""Run every ranking configuration over one in-memory engine and score it.

The engine is built once per dataset, in memory, from the dataset's own corpus with the
service's encoder and default SearchConfig: the service's data folder and index are never
read or written. Each configuration is one ``engine.search`` call per query, exactly the
call the API makes, so what is measured is what users get.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ._chats import run_chats
from ._dataset import Dataset
from ._metrics import K, score_rankings


@dataclass(frozen=True)
class RunConfig:
    mode: str  # engine.search mode: "hybrid", "dense" or "bm25"
    calibrate: bool
    about: str
    judgement: str | None = "calibrated"  # SearchConfig.judgement for this run (hybrid mode)


# The one table of configurations: adding one is one line.
CONFIGS: dict[str, RunConfig] = {
    "bm25": RunConfig("bm25", False, "keywords only (BM25 with the query analyser's expansions)"),
    "dense": RunConfig("dense", False, "embeddings only, raw vectors"),
    "dense-calibrated": RunConfig("dense", True, "embeddings only, per-language mean removed"),
    "hybrid-raw": RunConfig("hybrid", False, "dense + BM25 + boosts, raw vectors"),
    "hybrid-floor": RunConfig("hybrid", True, "as hybrid, judged by the older hand gates (floor.json)", "floor"),
    "hybrid-unjudged": RunConfig("hybrid", True, "as hybrid, every candidate shown (no judgement)", None),
    "hybrid": RunConfig("hybrid", True, "dense + BM25 + boosts, calibrated vectors, the fitted judgement (judgement.json;"
                        " the service default)", "calibrated"),
}
DEFAULT_CONFIG = "hybrid"
DEPTH = 100  # results kept per query: metrics look at the top 10, the failure list at ranks beyond


class EvalError(ValueError):
    """A bad request to the evaluation itself (e.g. an unknown configuration name)."""


def parse_configs(spec: str | None) -> list[str]:
    """Configuration names from "a,b,c" (None = all), in table order; the default is always in."""
    if not spec:
        return list(CONFIGS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise EvalError(f"unknown configuration(s) {', '.join(unknown)}: choose from {', '.join(CONFIGS)}")
    wanted = set(names) | {DEFAULT_CONFIG}
    return [n for n in CONFIGS if n in wanted]


# -- progress -------------------------------------------------------------------------
def progress_bar(desc: str, total: int | None = None, enabled: bool = True, unit: str = "it"):
    """A tqdm bar on stderr (stdout stays clean for --json)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled, dynamic_ncols=True)


def _encode_callback(enabled: bool):
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar("embedding corpus", total, enabled, "text")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


# -- running --------------------------------------------------------------------------
def default_encoder():
    """The service's encoder: CPC_MODEL (as the service reads it), else the bundled default."""
    from index import DEFAULT_MODEL, load_encoder

    return load_encoder(os.environ.get("CPC_MODEL") or DEFAULT_MODEL)


def build_engine(dataset: Dataset, encoder=None, progress: bool = True):
    """An in-memory SearchEngine over the dataset's corpus, with the service's defaults."""
    from index import SearchConfig, SearchEngine

    encoder = encoder or default_encoder()
    return SearchEngine.build(dataset.records, encoder, SearchConfig(), progress=_encode_callback(progress))


@dataclass
class EvalResult:
    dataset: Dataset
    configs: list[str]
    rankings: dict[str, dict[str, list[str]]]  # config -> query id -> record ids, best first
    per_query: dict[str, dict[str, dict[str, float]]]  # config -> query id -> metric -> value
    summary: dict[str, dict]  # config -> group -> metrics
    skipped: list[str]  # query ids without a sought document in the qrels
    model_id: str = ""
    chats: dict | None = None
    abstention: dict[str, dict] = field(default_factory=dict)  # config -> honest-answer figures
    seconds: dict[str, float] = field(default_factory=dict)
    lang_mismatch: dict[str, str] = field(default_factory=dict)  # query id -> analyser language, where it differs from the dataset's

    def to_json(self) -> dict:
        info = self.dataset.info()
        info.update({
            "queries": len(self.per_query.get(DEFAULT_CONFIG, {})),
            "skipped": len(self.skipped),
            "skipped_ids": self.skipped[:50],
            "skipped_reason": f"no document of grade {self.dataset.sought} in the qrels",
            "analyser_lang_mismatch": self.lang_mismatch,
            "k": K,
            "model": self.model_id,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        })
        out = {"default": DEFAULT_CONFIG, "configs": {name: self.summary[name] for name in self.configs}, "dataset": info}
        if self.abstention:
            out["abstention"] = self.abstention
        if self.chats is not None:
            out["chats"] = self.chats
        return out


def evaluate_dataset(
    dataset: Dataset,
    configs: list[str] | None = None,
    encoder=None,
    engine=None,
    progress: bool = True,
) -> EvalResult:
    """Build the engine (unless given), rank every evaluable query under each configuration, score."""
    configs = parse_configs(",".join(configs) if configs else None)
    seconds: dict[str, float] = {}
    evaluable = [q for q in dataset.queries if any(g >= dataset.sought for g in dataset.qrels.get(q, {}).values())]
    out_of_corpus = [q for q in dataset.queries if not dataset.queries[q].answerable]
    keep = set(evaluable) | set(out_of_corpus)
    skipped = [q for q in dataset.queries if q not in keep]
    if not evaluable:
        raise EvalError(f"{dataset.root}: no query has a document of grade {dataset.sought} in the qrels; nothing to evaluate")
    if engine is None:
        t = time.perf_counter()
        engine = build_engine(dataset, encoder, progress)
        seconds["build"] = time.perf_counter() - t
    rankings: dict[str, dict[str, list[str]]] = {c: {} for c in configs}
    analysed: dict[str, str] = {}  # query id -> the language the engine's analyser saw
    asked = evaluable + out_of_corpus
    with progress_bar("running queries", len(asked) * len(configs), progress, "query") as bar:
        for name in configs:
            cfg = CONFIGS[name]
            t = time.perf_counter()
            engine.config.judgement = cfg.judgement
            for qid in asked:
                result = engine.search(dataset.queries[qid].text, limit=DEPTH, mode=cfg.mode, calibrate=cfg.calibrate)
                rankings[name][qid] = [h.record.id for h in result.hits]
                analysed.setdefault(qid, result.analysis.lang)
                bar.update(1)
            seconds[name] = time.perf_counter() - t
        engine.config.judgement = CONFIGS[DEFAULT_CONFIG].judgement  # the chats run with the service's
    abstention = {name: abstention_figures(rankings[name], dataset, evaluable, out_of_corpus) for name in configs}
    scored = set(evaluable)  # out-of-corpus questions count in the abstention figures, not in the means
    rankings = {name: {q: r for q, r in ranked.items() if q in scored} for name, ranked in rankings.items()}
    query_langs = {q: dataset.queries[q].lang for q in evaluable}
    query_styles = {q: dataset.queries[q].styles for q in evaluable if dataset.queries[q].styles}
    doc_langs = {r.id: r.lang for r in dataset.records}
    summary, per_query = {}, {}
    for name in configs:
        summary[name], per_query[name] = score_rankings(rankings[name], dataset.qrels, query_langs, doc_langs, dataset.sought,
                                                        query_styles)
    chats = run_chats(dataset, engine)
    mismatch = {q: analysed[q] for q in evaluable if analysed.get(q) != dataset.queries[q].lang}
    return EvalResult(dataset, configs, rankings, per_query, summary, skipped,
                      getattr(engine.encoder, "model_id", ""), chats, abstention, seconds, mismatch)


def abstention_figures(ranked: dict[str, list[str]], dataset: Dataset, answerable: list[str],
                       out_of_corpus: list[str]) -> dict:
    """What the service says when nothing fits, and whether its first answer is right when something does.

    ``abstained``: out-of-corpus questions answered with no results; ``answerable_empty``:
    answerable questions answered with no results (a hidden partner: the worse failure);
    ``first_hit_relevant``: answerable questions whose first result is relevant (grade 1 or
    more), as a user sees it. ``by_style``: the same counts per style tag of the questions.
    """
    out = _abstention(ranked, dataset, answerable, out_of_corpus)
    tags = sorted({t for q in answerable + out_of_corpus for t in dataset.queries[q].styles})
    if tags:
        out["by_style"] = {}
        for tag in tags:
            mine = _abstention(ranked, dataset, [q for q in answerable if tag in dataset.queries[q].styles],
                               [q for q in out_of_corpus if tag in dataset.queries[q].styles])
            out["by_style"][tag] = {k: v for k, v in mine.items() if not isinstance(v, list)}
    return out


def _abstention(ranked: dict[str, list[str]], dataset: Dataset, answerable: list[str], out_of_corpus: list[str]) -> dict:
    empty = [q for q in out_of_corpus if not ranked[q]]
    good = [q for q in answerable if ranked[q] and dataset.qrels.get(q, {}).get(ranked[q][0], 0) >= 1]
    silent = [q for q in answerable if not ranked[q]]
    return {
        "out_of_corpus": len(out_of_corpus),
        "abstained": len(empty),
        "abstained_rate": round(len(empty) / len(out_of_corpus), 4) if out_of_corpus else None,
        "answered_out_of_corpus": sorted(set(out_of_corpus) - set(empty)),
        "answerable": len(answerable),
        "answerable_empty": len(silent),
        "answerable_empty_rate": round(len(silent) / len(answerable), 4) if answerable else None,
        "first_hit_relevant": len(good),
        "first_hit_relevant_rate": round(len(good) / len(answerable), 4) if answerable else None,
        "answerable_without_results": silent,
    }
