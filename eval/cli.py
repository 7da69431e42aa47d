"""``cpc eval``: ranking quality on a labelled dataset, or encoder alignment on bitext.

    cpc eval --data DIR [--configs bm25,dense,...] [--split tune|test|all] [--json] [--report OUT]
    cpc eval --bitext tatoeba|ntrex [--limit N] [--json] [--report OUT]
    cpc eval --fit-floor DIR [DIR ...] [--split tune] [--write index/data/floor.json]
    cpc eval --chats FILE|DIR [--split tune|test|all] [--json] [--report OUT]
    cpc eval --fit-judgement DIR [DIR ...] [--validate DIR ...] [--split tune] [--write index/data/judgement.json]
    cpc eval --posts DIR [--split tune|test|all] [--json] [--report OUT]

stdout carries the result only (one JSON object with --json); progress bars and errors
go to stderr. Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._run import CONFIGS, DEFAULT_CONFIG


def cmd_eval(args: argparse.Namespace) -> int:
    from ._dataset import DatasetError
    from ._run import EvalError

    try:
        if args.limit is not None and args.limit < 1:
            raise EvalError("--limit must be at least 1")
        if args.bitext:
            return _bitext(args)
        if args.fit_floor:
            return _fit_floor(args)
        if args.chats:
            return _chats_only(args)
        if args.fit_judgement:
            return _fit_judgement(args)
        if args.posts:
            return _posts(args)
        return _data(args)
    except (DatasetError, EvalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _encoder(args: argparse.Namespace):
    from index import load_encoder

    from ._run import default_encoder

    return load_encoder(args.model) if getattr(args, "model", None) else default_encoder()


def _show(args: argparse.Namespace, data: dict, as_text, write_report) -> int:
    """What every run ends with: the report files when --report asks (``write_report(folder)`` says
    where it wrote), then the figures on stdout, one JSON object with --json, else ``as_text(data)``."""
    if args.report:
        print(f"report written to {write_report(args.report)}", file=sys.stderr)
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else as_text(data))
    return 0


def _data(args: argparse.Namespace) -> int:
    from ._dataset import load_dataset
    from ._report import format_table, write_report
    from ._run import evaluate_dataset, parse_configs

    configs = parse_configs(args.configs)
    if args.report and "bm25" not in configs:
        configs = parse_configs(",".join(configs + ["bm25"]))  # the report compares the default with bm25
    dataset = load_dataset(args.data).select(args.split, args.limit)
    result = evaluate_dataset(dataset, configs, encoder=_encoder(args), progress=not args.quiet)
    return _show(args, result.to_json(), format_table, lambda folder: write_report(result, folder))


def _chats_only(args: argparse.Namespace) -> int:
    """Conversations only (a chats.jsonl, or a folder holding one), over the folder's corpus.jsonl
    when it has one, else over the shipped corpus."""
    from corpus import load_records

    from ._chats import format_chats, load_chats, run_conversations, select_chats
    from ._dataset import DatasetError
    from ._run import EvalError

    path = args.chats / "chats.jsonl" if args.chats.is_dir() else args.chats
    if not path.is_file():
        raise EvalError(f"{path}: no such chats file")
    corpus_path = path.parent / "corpus.jsonl"
    if not corpus_path.is_file():
        from corpus import DEFAULT_CORPUS as corpus_path  # the shipped records
    records = list(load_records(corpus_path).records)
    chats = select_chats(load_chats(path, {r.id for r in records}), args.split)
    if args.limit:
        chats = chats[: args.limit]
    if not chats:
        raise DatasetError(str(path), 0, "split", f"no conversation has \"split\": \"{args.split}\"")
    from index import SearchConfig, SearchEngine

    engine = SearchEngine.build(records, _encoder(args), SearchConfig())
    data = run_conversations(chats, engine)
    data["path"], data["split"] = str(path), args.split
    if args.report:
        from ._report import plot_chats

        args.report.mkdir(parents=True, exist_ok=True)
        plot_chats(args.report / "chats_by_group.png", data)
        (args.report / "chats.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"report written to {args.report}", file=sys.stderr)
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else format_chats(data))
    return 0


def _posts(args: argparse.Namespace) -> int:
    """Opportunity posts matched both ways (eval/_posts.py)."""
    from ._posts import evaluate_posts, format_posts, load_posts, write_posts_report

    data = load_posts(args.posts).select(args.split)
    if not data.post_qrels and not data.org_qrels:
        from ._dataset import DatasetError

        raise DatasetError(str(args.posts), 0, "split", f"no post or profile has \"split\": \"{args.split}\"")
    result = evaluate_posts(data, _encoder(args))
    result["path"], result["split"] = str(args.posts), args.split
    return _show(args, result, format_posts, lambda folder: write_posts_report(result, folder))


def _fit_floor(args: argparse.Namespace) -> int:
    from ._dataset import load_dataset
    from ._floor import fit_floor, write_floor

    datasets = [load_dataset(path).select(args.split, args.limit) for path in args.fit_floor]
    fitted = fit_floor(datasets, _encoder(args), progress=not args.quiet)
    if args.write:
        path = write_floor(fitted, args.write, [str(p) for p in args.fit_floor], args.split)
        print(f"floor written to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(fitted, ensure_ascii=False, indent=2))
    else:
        for lang, floor in fitted["languages"].items():
            fig = fitted["figures"].get(lang)
            line = f"{lang}: {floor}"
            if fig:
                f, o = fig["floor"], fig["no_floor"]
                line += (f"  nDCG@10 {f['ndcg@10']:.3f} (no floor {o['ndcg@10']:.3f}), nothing-fits {f['abstained']:.2f}"
                         f" of {f['out_of_corpus']}, first hit right {f['first_hit']:.2f} (no floor {o['first_hit']:.2f})")
            print(line)
    return 0


def _fit_judgement(args: argparse.Namespace) -> int:
    from ._dataset import load_dataset
    from ._judgement import fit_and_validate, write_judgement

    fit_sets = [load_dataset(path).select(args.split, args.limit) for path in args.fit_judgement]
    validate_sets = [load_dataset(path).select(args.split, args.limit) for path in args.validate or []]
    fitted = fit_and_validate(fit_sets, validate_sets, _encoder(args), progress=not args.quiet)
    if args.write:
        path = write_judgement(fitted, args.write, [str(p) for p in args.fit_judgement],
                               [str(p) for p in args.validate or []], args.split)
        print(f"judgement written to {path}", file=sys.stderr)
    body = {**fitted["model"].to_dict(), "figures": fitted["report"]}
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        m = fitted["model"]
        keep = fitted["report"]["near_keep"]
        held = fitted["report"]["near_keeps_tried"].get(str(keep), {})
        print(f"threshold {m.threshold:.4f}, less close from {m.near:.4f} (the cut keeps {keep} of the fit's answerable"
              f" questions; answered of each corpus left out at that share: {held or 'one corpus, none left out'})")
        for where, figs in [("fitted", {"(fit sets)": fitted["report"]["fitted"]}), ("validated", fitted["report"]["validated"]),
                            ("left out", fitted["report"]["left_out"])]:
            for name, f in figs.items():
                print(f"{where} {name}: nDCG@10 {f['ndcg@10']}, Recall@10 {f['recall@10']}, first relevant kept"
                      f" {f['first_relevant_kept']}, answerable_empty {f['answerable_empty']} of {f['answerable']},"
                      f" abstained {f['abstained']} of {f['out_of_corpus']}")
    return 0


def _bitext(args: argparse.Namespace) -> int:
    from ._bitext import format_bitext, run_bitext, write_bitext_report
    from ._run import EvalError

    if args.configs or args.split != "all":
        raise EvalError("--configs and --split apply to --data, not to --bitext")
    try:
        data = run_bitext(args.bitext, args.limit, _encoder(args), progress=not args.quiet)
    except ValueError as exc:
        if type(exc) is ValueError:
            raise EvalError(str(exc)) from None
        raise
    return _show(args, data, format_bitext, lambda folder: write_bitext_report(data, folder))


def add_commands(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``cpc eval`` (found through the ``cpc.extensions`` entry point, pyproject.toml)."""
    e = subparsers.add_parser(
        "eval", parents=[common], help="evaluate search on a labelled dataset, or the encoder on bitext",
        description="Builds an in-memory index of the dataset's corpus (the service's data folder is not used)"
        " and scores every configuration with nDCG@10, Recall@10 and MRR@10.",
    )
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="dataset folder: corpus.jsonl, queries.jsonl, qrels.tsv (or the BEIR layout)")
    src.add_argument("--bitext", choices=["tatoeba", "ntrex"], help="top-1 translation retrieval on shared/data/external")
    src.add_argument("--chats", type=Path, metavar="PATH", help="conversations only: a chats.jsonl or a folder with one"
                     " (over its corpus.jsonl, else the shipped corpus); --split picks the tune or test half")
    src.add_argument("--fit-floor", nargs="+", type=Path, metavar="DIR",
                     help="fit the relevance floor per query language on these datasets (use --split tune)")
    src.add_argument("--fit-judgement", nargs="+", type=Path, metavar="DIR",
                     help="fit the relevance judgement on these datasets (use --split tune), see eval/_judgement.py")
    src.add_argument("--posts", type=Path, metavar="DIR", help="opportunity posts matched both ways: profiles.jsonl,"
                     " posts.jsonl, post_qrels.tsv, org_qrels.tsv (eval/data/posts); --split picks the posts' half")
    e.add_argument("--validate", nargs="+", type=Path, metavar="DIR",
                   help="with --fit-judgement: also score the fitted judgement on these datasets (not fitted on)")
    e.add_argument("--write", type=Path, metavar="FILE", help="with --fit-floor or --fit-judgement: write the fit here"
                   " (the service reads index/data/floor.json and index/data/judgement.json)")
    e.add_argument("--configs", help=f"comma-separated subset of {', '.join(CONFIGS)} (default: all; {DEFAULT_CONFIG} always runs)")
    e.add_argument("--split", choices=["tune", "test", "all"], default="all", help="queries of one split only (default all)")
    e.add_argument("--limit", type=int, help="first N lines per bitext file, or first N queries of a dataset")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--report", type=Path, metavar="OUTDIR", help="write report.md and PNG plots into OUTDIR")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_eval)
    return e
