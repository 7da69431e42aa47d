"""Ranking metrics with ranx, per query and per group (all, query language, language pair).

Definitions (k = 10):

- nDCG@10 is graded: gain = grade (1 = partially relevant, 2 = sought), log2 discount
  (ranx ``ndcg``, Järvelin & Kekäläinen; the same gain as pytrec_eval / BEIR).
- Recall@10 counts only documents of the "sought" grade (2 in the native layout) as
  relevant: a partial match is not what the user asked for.
- MRR@10 uses the sought grade too: the rank of the first thing the user was looking for.

Both use ranx's relevance level (``recall@10-l2``: judgements below grade 2 are dropped
before computing), which is the same as evaluating against a second, grade-2-only Qrels.
A ranking is a list of doc ids, best first; ties cannot reorder it because each id is
given a strictly decreasing score before ranx sees it.
"""

from __future__ import annotations

import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np

K = 10
METRICS = ("ndcg@10", "recall@10", "mrr@10")
NO_RESULT = "\x00no-result"  # stands in for an empty ranking: relevant to no query
BASE_LANGS = ("pt", "zh", "en")
ARROW = "→"


def _ranx_metrics(sought: int) -> dict[str, str]:
    """Our metric name -> ranx's (``-lN``: judgements below grade N are not relevant)."""
    return {f"ndcg@{K}": f"ndcg@{K}", f"recall@{K}": f"recall@{K}-l{sought}", f"mrr@{K}": f"mrr@{K}-l{sought}"}


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    sought: int = 2,
) -> dict[str, dict[str, float]]:
    """Per-query metrics: {query id: {"ndcg@10", "recall@10", "mrr@10"}}.

    Every ranked query must have at least one judgement of grade >= ``sought`` (callers
    skip the others): a query nobody can succeed on would only drag the means down.
    """
    from ranx import Qrels, Run, evaluate

    if not rankings:
        return {}
    missing = [q for q in rankings if not any(g >= sought for g in qrels.get(q, {}).values())]
    if missing:
        raise ValueError(f"no document of grade {sought} for query id(s): {', '.join(sorted(missing)[:10])}")
    # ranx types its id arrays by the longest id ("<U37"), and numba compiles (tens of seconds) once
    # per such type: every document gets a stand-in id of one fixed width, so one compiled (and
    # cached) version serves every data set. The metrics depend only on which ids are equal.
    short: dict[str, str] = {}

    def fixed(doc_id: str) -> str:
        return short.setdefault(doc_id, f"{len(short):012d}")

    q_dict = {q: {fixed(d): int(g) for d, g in qrels[q].items() if g > 0} for q in rankings}
    r_dict: dict[str, dict[str, float]] = {}
    for q, ranked in rankings.items():
        unique = list(dict.fromkeys(ranked)) or [NO_RESULT]  # an empty answer scores 0, it is not left out
        r_dict[q] = {fixed(d): float(len(unique) - i) for i, d in enumerate(unique)}
    names = _ranx_metrics(sought)
    run = Run(r_dict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64->int64 cast notice inside ranx
        evaluate(Qrels(q_dict), run, list(names.values()), return_mean=False)
    return {q: {ours: float(run.scores[theirs][q]) for ours, theirs in names.items()} for q in rankings}


def query_groups(
    query_langs: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    doc_langs: Mapping[str, str | None],
    sought: int = 2,
) -> dict[str, dict[str, list[str]] | list[str]]:
    """Query ids per group: "all", one per query language, and "pairs" {"pt→zh": [...]}.

    A pair is query language → language (record ``lang``) of a sought document; a query
    whose sought documents are in several languages counts in each of those pairs.
    """
    groups: dict = {"all": list(query_langs)}
    langs = list(BASE_LANGS) + sorted(set(query_langs.values()) - set(BASE_LANGS))
    for lang in langs:
        groups[lang] = [q for q, ql in query_langs.items() if ql == lang]
    pairs: dict[str, list[str]] = {}
    for q, ql in query_langs.items():
        targets = sorted({doc_langs.get(d) or "?" for d, g in qrels.get(q, {}).items() if g >= sought})
        for dl in targets:
            pairs.setdefault(f"{ql}{ARROW}{dl}", []).append(q)
    groups["pairs"] = dict(sorted(pairs.items()))
    return groups


def style_groups(query_styles: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Query ids per style tag (a query counts under each of its tags), tags in name order."""
    out: dict[str, list[str]] = {}
    for q, tags in query_styles.items():
        for tag in tags:
            out.setdefault(tag, []).append(q)
    return dict(sorted(out.items()))


def _mean(per_query: Mapping[str, Mapping[str, float]], ids: Iterable[str]) -> dict[str, float | int | None]:
    ids = list(ids)
    out: dict[str, float | int | None] = {}
    for m in METRICS:
        out[m] = float(np.mean([per_query[q][m] for q in ids])) if ids else None
    out["n"] = len(ids)
    return out


def summarise(per_query: Mapping[str, Mapping[str, float]], groups: Mapping[str, object]) -> dict:
    """Means per group, shaped like the --json output: {"all": {...}, "pt": {...}, "pairs": {...}}."""
    out: dict = {}
    for name, ids in groups.items():
        if name in ("pairs", "styles"):
            out[name] = {p: _mean(per_query, q) for p, q in ids.items()}  # type: ignore[union-attr]
        else:
            out[name] = _mean(per_query, ids)  # type: ignore[arg-type]
    return out


def score_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    query_langs: Mapping[str, str],
    doc_langs: Mapping[str, str | None],
    sought: int = 2,
    query_styles: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict, dict[str, dict[str, float]]]:
    """(summary per group, per-query metrics) for one configuration's rankings; with
    ``query_styles`` (query id -> style tags) also {"styles": {tag: metrics}}."""
    per_query = evaluate_rankings(rankings, qrels, sought)
    groups = query_groups({q: query_langs[q] for q in rankings}, qrels, doc_langs, sought)
    if query_styles:
        groups["styles"] = style_groups({q: query_styles.get(q, ()) for q in rankings})
    return summarise(per_query, groups), per_query
