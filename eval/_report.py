"""Human output: the terminal table, and ``--report``: report.md with PNG plots and a failure list.

Plots are drawn on a bare ``matplotlib.figure.Figure`` (Agg canvas), so nothing depends on
a display or on pyplot's global state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ._metrics import ARROW, K, METRICS
from ._run import CONFIGS, DEFAULT_CONFIG, DEPTH, EvalResult

LABELS = {f"ndcg@{K}": f"nDCG@{K}", f"recall@{K}": f"Recall@{K}", f"mrr@{K}": f"MRR@{K}"}
FAILURES = 10  # worst queries of the default configuration listed in the report
TOP_ABOVE = 5


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def _rows(summary: dict) -> list[tuple[str, dict]]:
    """(group name, metrics) for the groups worth showing: all, languages and pairs with queries."""
    rows = [("all", summary["all"])]
    rows += [(g, m) for g, m in summary.items() if g not in NESTED and m["n"]]
    rows += [(p, m) for p, m in summary.get("pairs", {}).items() if m["n"]]
    rows += [(STYLE + t, m) for t, m in summary.get("styles", {}).items() if m["n"]]
    return rows


NESTED = ("all", "pairs", "styles")  # groups that hold groups
STYLE = "style:"  # a style tag's row: "style:typo"


def _group(summary: dict, group: str) -> dict:
    """One group's metrics of one configuration's summary (a pair, a style tag or a plain group)."""
    if group.startswith(STYLE):
        return summary.get("styles", {}).get(group[len(STYLE):], {})
    return (summary.get("pairs", {}) if ARROW in group else summary).get(group, {})


def _cfg_label(name: str) -> str:
    return f"{name}*" if name == DEFAULT_CONFIG else name


# -- terminal -------------------------------------------------------------------------
def format_table(data: dict) -> str:
    """The --json object as text: one block per metric, groups down, configurations across."""
    ds, configs = data["dataset"], list(data["configs"])
    lines = [
        f"dataset {ds['path']} ({ds['layout']}): {ds['records']} records, {ds['queries']} queries"
        f" (split {ds['split']}), {ds['skipped']} skipped" + (f" ({ds['skipped_reason']})" if ds["skipped"] else "")
        + f"; model {ds['model']}",
        f"* = the service default ({data['default']}); n = queries in the group; pair = query language → language of the sought documents",
    ]
    if ds.get("analyser_lang_mismatch"):
        lines.append("the query analyser reads another language for: "
                     + ", ".join(f"{q} ({lang})" for q, lang in ds["analyser_lang_mismatch"].items()))
    rows = _rows(data["configs"][data["default"]])
    width = max([len(g) for g, _ in rows] + [len(v) for v in LABELS.values()]) + 2
    cols = [max(len(_cfg_label(c)), 6) + 2 for c in configs]
    for metric in METRICS:
        lines.append("")
        lines.append(f"{LABELS[metric]:<{width}}{'n':>5}" + "".join(f"{_cfg_label(c):>{w}}" for c, w in zip(configs, cols)))
        for group, m in rows:
            vals = [_group(data["configs"][c], group).get(metric) for c in configs]
            lines.append(f"{group:<{width}}{m['n']:>5}" + "".join(f"{_fmt(v):>{w}}" for v, w in zip(vals, cols)))
    if "abstention" in data:
        a = data["abstention"][data["default"]]
        if a["out_of_corpus"]:
            lines += ["", f"nothing fits (abstained): {a['abstained']} of {a['out_of_corpus']} out-of-corpus questions got no results"]
        lines.append(f"answerable_empty: {a.get('answerable_empty', 0)} of {a['answerable']} answerable questions got no results")
        lines.append(f"first answer right: {a['first_hit_relevant']} of {a['answerable']} answerable questions"
                     " have a relevant first result")
        for tag, b in a.get("by_style", {}).items():
            lines.append(f"  style {tag}: answerable_empty {b['answerable_empty']} of {b['answerable']},"
                         f" first answer right {b['first_hit_relevant']}, abstained {b['abstained']} of {b['out_of_corpus']}")
    if "chats" in data:
        from ._chats import format_chats

        lines += ["", format_chats(data["chats"])]
    return "\n".join(lines)


# -- markdown helpers ---------------------------------------------------------------------
def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


# -- plots ----------------------------------------------------------------------------
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_grouped(path: Path, groups: list[str], series: dict[str, list[float | None]], title: str, ylabel: str,
                 ymax: float = 1.0, fmt: str = "{:.2f}") -> Path:
    """Grouped bars: one group per x position, one bar per series (configuration)."""
    import numpy as np

    fig = _figure(max(6.0, 1.1 * len(groups) * max(1, len(series)) / 3 + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        vals = [np.nan if v is None else v for v in values]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=_cfg_label(name),
                      edgecolor="black" if name == DEFAULT_CONFIG else None, linewidth=1.2 if name == DEFAULT_CONFIG else 0)
        ax.bar_label(bars, labels=["" if np.isnan(v) else fmt.format(v) for v in vals], fontsize=6, rotation=90, padding=2)
    ax.set_xticks(x, groups)
    ax.set_ylim(0, ymax * 1.12)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, bbox_inches="tight")
    return path


def plot_delta(path: Path, deltas: list[tuple[str, float]], title: str) -> Path:
    """Sorted per-query differences: green = the default is better, red = worse."""
    fig = _figure(max(6.0, min(18.0, 0.12 * len(deltas) + 3)), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    values = [d for _, d in deltas]
    colours = ["#2a9d55" if d > 0 else "#d1495b" if d < 0 else "#999999" for d in values]
    ax.bar(range(len(values)), values, color=colours, width=0.85)
    ax.axhline(0, color="black", linewidth=0.8)
    better, worse = sum(d > 0 for d in values), sum(d < 0 for d in values)
    ax.set_title(f"{title}\n{better} better, {worse} worse, {len(values) - better - worse} equal")
    ax.set_xlabel("queries, sorted by difference")
    ax.set_ylabel(f"Δ nDCG@{K}")
    ax.set_ylim(-1.05, 1.05)
    if len(values) <= 40:
        ax.set_xticks(range(len(values)), [q for q, _ in deltas], rotation=90, fontsize=6)
    else:
        ax.set_xticks([])
    fig.savefig(path, bbox_inches="tight")
    return path


# -- report ---------------------------------------------------------------------------
def _summary_tables(data: dict) -> list[str]:
    configs = list(data["configs"])
    out: list[str] = []
    rows = _rows(data["configs"][data["default"]])
    for metric in METRICS:
        body = []
        for group, m in rows:
            vals = [_group(data["configs"][c], group).get(metric) for c in configs]
            best = max((v for v in vals if v is not None), default=None)
            cells = [f"**{_fmt(v)}**" if v is not None and v == best else _fmt(v) for v in vals]
            body.append([group, m["n"], *cells])
        out += [f"### {LABELS[metric]}", ""] + _md_table(["group", "n", *[_cfg_label(c) for c in configs]], body) + [""]
    return out


def _failures(result: EvalResult, n: int = FAILURES) -> list[str]:
    ds = result.dataset
    recs = ds.by_id
    per_q = result.per_query[DEFAULT_CONFIG]
    imperfect = [q for q in per_q if per_q[q][f"ndcg@{K}"] < 1.0]
    worst = sorted(imperfect, key=lambda q: (per_q[q][f"ndcg@{K}"], per_q[q][f"recall@{K}"], q))[:n]
    out = [f"## Failure list: the {len(worst)} worst queries of `{DEFAULT_CONFIG}` by nDCG@{K}", ""]
    if not worst:
        out += [f"Every query has nDCG@{K} = 1.", ""]
    for q in worst:
        query, m = ds.queries[q], per_q[q]
        ranking = result.rankings[DEFAULT_CONFIG][q]
        judged = ds.qrels.get(q, {})
        out.append(f"### `{q}` ({query.lang}) — nDCG@{K} {m[f'ndcg@{K}']:.3f}, Recall@{K} {m[f'recall@{K}']:.3f}, MRR@{K} {m[f'mrr@{K}']:.3f}")
        out += ["", f"> {_md_cell(query.text)}", "", "Relevant documents:", ""]
        for doc, grade in sorted(judged.items(), key=lambda kv: (-kv[1], kv[0])):
            rank = ranking.index(doc) + 1 if doc in ranking else None
            where = f"rank {rank}" if rank else f"not in the top {DEPTH}"
            rec = recs.get(doc)
            out.append(f"- grade {grade}: `{ds.source_id(doc)}` {_md_cell(rec.name if rec else '?')} ({rec.lang if rec else '?'}) — {where}")
        out += ["", f"Top {TOP_ABOVE} of `{DEFAULT_CONFIG}`:", ""]
        for i, doc in enumerate(ranking[:TOP_ABOVE], start=1):
            rec = recs.get(doc)
            mark = f" ✓ grade {judged[doc]}" if doc in judged else ""
            out.append(f"{i}. `{ds.source_id(doc)}` {_md_cell(rec.name if rec else '?')} ({rec.lang if rec else '?'}){mark}")
        if not ranking:
            out.append("(no results)")
        out.append("")
    return out


def write_report(result: EvalResult, outdir: str | Path) -> Path:
    """report.md, ndcg_by_language.png, ndcg_by_pair.png and (with bm25) delta_vs_bm25.png."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    ds = data["dataset"]
    configs = result.configs
    summary = data["configs"]
    default = summary[DEFAULT_CONFIG]

    lang_groups = ["all"] + [g for g, m in default.items() if g not in NESTED and m["n"]]
    plot_grouped(outdir / "ndcg_by_language.png", [f"{g}\n(n={default[g]['n']})" for g in lang_groups],
                 {c: [summary[c][g][f"ndcg@{K}"] for g in lang_groups] for c in configs},
                 f"nDCG@{K} by query language", f"nDCG@{K}")
    pairs = [p for p, m in default["pairs"].items() if m["n"]]
    plot_grouped(outdir / "ndcg_by_pair.png", [f"{p}\n(n={default['pairs'][p]['n']})" for p in pairs],
                 {c: [summary[c]["pairs"][p][f"ndcg@{K}"] for p in pairs] for c in configs},
                 f"nDCG@{K} by language pair (query → sought documents)", f"nDCG@{K}")

    styles = [t for t, m in default.get("styles", {}).items() if m["n"]]
    if styles:
        plot_grouped(outdir / "ndcg_by_style.png", [f"{t}\n(n={default['styles'][t]['n']})" for t in styles],
                     {c: [summary[c].get("styles", {}).get(t, {}).get(f"ndcg@{K}") for t in styles] for c in configs},
                     f"nDCG@{K} by query style", f"nDCG@{K}")
    lines = [
        "# Search evaluation", "",
        f"Dataset `{ds['path']}` ({ds['layout']} layout): {ds['records']} records, {ds['queries']} queries evaluated"
        f" (split `{ds['split']}`), {ds['skipped']} skipped ({ds['skipped_reason']}). Model `{ds['model']}`.", "",
        f"Metrics at k={K}: nDCG graded (gain = grade); Recall and MRR count only grade {ds['sought_grade']} documents"
        " (what is sought) as relevant. A pair is query language → language of the sought documents (record `lang`).",
        f"`*` marks the service default (`{DEFAULT_CONFIG}`); the best value of a row is in bold.", "",
        "## Configurations", "",
    ]
    if ds.get("analyser_lang_mismatch"):
        lines[-3:-3] = ["", "The engine's query analyser reads another language than the dataset for: "
                        + ", ".join(f"`{q}` ({lang})" for q, lang in ds["analyser_lang_mismatch"].items()) + "."]
    lines += _md_table(["name", "mode", "calibrated", "what"],
                       [[_cfg_label(c), CONFIGS[c].mode, CONFIGS[c].calibrate, CONFIGS[c].about] for c in configs]) + [""]
    lines += ["## Results", ""] + _summary_tables(data)
    lines += ["![nDCG@10 by query language](ndcg_by_language.png)", "", "![nDCG@10 by language pair](ndcg_by_pair.png)", ""]
    if styles:
        lines += ["![nDCG@10 by query style](ndcg_by_style.png)", ""]
    if "abstention" in data:
        a = data["abstention"][DEFAULT_CONFIG]
        lines += ["## Empty answers", "", f"`abstained`: {a['abstained']} of {a['out_of_corpus']} out-of-corpus questions got no results;"
                  f" `answerable_empty`: {a['answerable_empty']} of {a['answerable']} answerable questions got none.", ""]
        if a.get("by_style"):
            lines += _md_table(["style", "answerable", "answerable_empty", "first hit relevant", "out of corpus", "abstained"],
                               [[t, b["answerable"], b["answerable_empty"], b["first_hit_relevant"], b["out_of_corpus"], b["abstained"]]
                                for t, b in a["by_style"].items()]) + [""]

    if "bm25" in result.per_query:
        base, ours = result.per_query["bm25"], result.per_query[DEFAULT_CONFIG]
        deltas = sorted(((q, ours[q][f"ndcg@{K}"] - base[q][f"ndcg@{K}"]) for q in ours), key=lambda t: (t[1], t[0]))
        plot_delta(outdir / "delta_vs_bm25.png", deltas, f"Per-query nDCG@{K}: {DEFAULT_CONFIG} − bm25")
        lines += [f"## Per query: `{DEFAULT_CONFIG}` against `bm25`", "", "![per-query delta](delta_vs_bm25.png)", "",
                  "<details><summary>per-query table</summary>", ""]
        lines += _md_table(["query", "lang", "bm25", DEFAULT_CONFIG, "Δ"],
                           [[q, result.dataset.queries[q].lang, f"{base[q][f'ndcg@{K}']:.3f}", f"{ours[q][f'ndcg@{K}']:.3f}", f"{d:+.3f}"]
                            for q, d in deltas])
        lines += ["", "</details>", ""]
    lines += _failures(result)
    if result.skipped:
        lines += ["## Skipped queries", "", ", ".join(f"`{q}`" for q in result.skipped), ""]
    if result.chats is not None:
        lines += chat_section(result.chats, outdir)
    path = outdir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# -- chats ----------------------------------------------------------------------------
def plot_chats(path: Path, chats: dict) -> Path:
    """Pass rate of chat turns per split, language, channel, style and act, one panel each."""
    from ._chats import GROUPS

    panels = [(g, chats.get(f"by_{g}") or {}) for g in GROUPS]
    panels = [(g, cells) for g, cells in panels if cells and list(cells) != ["-"]]
    fig = _figure(max(7.0, 0.45 * sum(len(c) for _, c in panels) + 2), 2.6 * max(1, len(panels)))
    for i, (group, cells) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, i)
        keys = list(cells)
        vals = [cells[k]["rate"] for k in keys]
        bars = ax.bar(range(len(keys)), vals, color="#3b75af")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=6, padding=1)
        ax.set_xticks(range(len(keys)), [f"{k}\n(n={cells[k]['turns']})" for k in keys], fontsize=6)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel(f"by {group}", fontsize=8)
    fig.suptitle(f"Chat turns passed: {chats['passed']} of {chats['turns']}")
    fig.savefig(path, bbox_inches="tight")
    return path


def chat_section(chats: dict, outdir: Path) -> list[str]:
    from ._chats import format_chats

    plot_chats(outdir / "chats_by_group.png", chats)
    return ["## Chats", "", "![chat pass rates](chats_by_group.png)", "", "```", format_chats(chats), "```", "",
            "<details><summary>all figures (JSON)</summary>", "", "```json", json.dumps(chats, ensure_ascii=False, indent=2),
            "```", "", "</details>", ""]
