"""``cpc eval --posts DIR``: how well posts reach organisations and organisations are shown posts.

The folder (eval/data/posts, format in docs/opportunity-posts.md): ``profiles.jsonl`` (the
organisations, project schema), ``posts.jsonl``, ``post_qrels.tsv`` (post → organisations it should
reach) and ``org_qrels.tsv`` (organisation → posts it should be shown), grades 2 strong, 1 partial.

Both directions run the service's own calls (``index.organisations_for`` and
``PostIndex.for_organisation``) over an in-memory index of the profiles and one of the posts of
every post: a split says which posts and which profiles are the queries scored (as
eval/data/posts/README.md defines it), never which candidates exist. Closing dates are not applied (the data's posts may have closed since).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from corpus import load_records

from ._dataset import DatasetError
from ._metrics import K, evaluate_rankings

DEPTH = 50


@dataclass
class PostData:
    records: list
    posts: list  # index.Post, with their split in ``splits``
    splits: dict[str, str]
    post_qrels: dict[str, dict[str, int]]
    org_qrels: dict[str, dict[str, int]]

    def select(self, split: str) -> "PostData":
        """The queries of one half: its posts (post → organisations) and its profiles (organisation
        → posts); every post and profile stays a candidate (the split says which queries are scored)."""
        if split == "all":
            return self
        post_ids = {p.id for p in self.posts if self.splits.get(p.id) == split}
        org_ids = {r.id for r in self.records if self.splits.get(r.id, split) == split}
        return PostData(self.records, self.posts, self.splits,
                        {p: r for p, r in self.post_qrels.items() if p in post_ids},
                        {o: r for o, r in self.org_qrels.items() if o in org_ids})


def _qrels(path: Path, left: set[str], right: set[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not path.is_file():
        raise DatasetError(path, 0, "-", "missing")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise DatasetError(path, n, "-", "expected three tab-separated columns: id, id, grade")
        a, b, grade = (c.strip() for c in cols)
        if not grade.lstrip("-").isdigit():
            if n == 1:
                continue  # a header
            raise DatasetError(path, n, "grade", f"'{grade}' is not 0, 1 or 2")
        if int(grade) not in (0, 1, 2):
            raise DatasetError(path, n, "grade", f"'{grade}' is not 0, 1 or 2")
        for value, known, what in ((a, left, "first column"), (b, right, "second column")):
            if value not in known:
                raise DatasetError(path, n, what, f"unknown id '{value}'")
        out.setdefault(a, {})[b] = int(grade)
    return out


def load_posts(folder: Path) -> PostData:
    """The folder, validated before any embedding (errors name file, line and field)."""
    from index import Post

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, 0, "-", "no such folder")
    records = list(load_records(folder / "profiles.jsonl").records)
    posts, splits = [], {}
    for rec in records:  # a profile's half, when it has one (without: a query of every half)
        if rec.extra_fields().get("split") in ("tune", "test"):
            splits[rec.id] = rec.extra_fields()["split"]
    path = folder / "posts.jsonl"
    if not path.is_file():
        raise DatasetError(path, 0, "-", "missing")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            post = Post.model_validate(raw)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, n, "-", f"not JSON: {exc}") from None
        except ValidationError as exc:
            e = exc.errors()[0]
            raise DatasetError(path, n, ".".join(map(str, e["loc"])) or "-", e["msg"]) from None
        if raw.get("split") not in ("tune", "test"):
            raise DatasetError(path, n, "split", "must be \"tune\" or \"test\"")
        posts.append(post)
        splits[post.id] = raw["split"]
    org_ids, post_ids = {r.id for r in records}, {p.id for p in posts}
    return PostData(records, posts, splits, _qrels(folder / "post_qrels.tsv", post_ids, org_ids),
                    _qrels(folder / "org_qrels.tsv", org_ids, post_ids))


def evaluate_posts(data: PostData, encoder, engine=None) -> dict:
    """nDCG@10, Recall@10 and MRR@10 both ways, with per-query figures."""
    from index import PostIndex, SearchConfig, SearchEngine, organisations_for

    engine = engine or SearchEngine.build(data.records, encoder, SearchConfig())
    today = dt.date.min  # every post counts as open: the data's dates are not the test
    index = PostIndex(encoder, engine.config, engine.calibration)
    index.sync(data.posts, today)
    post_rank = {}
    for post in data.posts:
        if any(g >= 2 for g in data.post_qrels.get(post.id, {}).values()):
            post_rank[post.id] = [h.record.id for h in organisations_for(engine, post, DEPTH).hits]
    org_rank: dict[str, list[str]] = {}
    direct_rank: dict[str, list[str]] = {}
    for org_id, rel in data.org_qrels.items():
        if any(g >= 2 for g in rel.values()):
            rec = engine.records.get(org_id)
            found = index.for_organisation(rec, DEPTH, today=today, organisations=engine)  # as the service asks
            org_rank[org_id] = [h.record.id for h in found.hits] if found else []
            found = index.for_organisation(rec, DEPTH, today=today)  # the organisation as the asker only
            direct_rank[org_id] = [h.record.id for h in found.hits] if found else []
    out = {"k": K, "posts": len(data.posts), "organisations": len(data.records)}
    for name, ranks, qrels in (("post_to_org", post_rank, data.post_qrels), ("org_to_post", org_rank, data.org_qrels),
                               ("org_to_post_direct", direct_rank, data.org_qrels)):
        per = evaluate_rankings(ranks, qrels)
        mean = {m: round(sum(v[m] for v in per.values()) / len(per), 4) if per else None
                for m in ("ndcg@10", "recall@10", "mrr@10")}
        out[name] = {"queries": len(per), **mean, "per_query": {q: {m: round(x, 4) for m, x in v.items()} for q, v in per.items()},
                     "rankings": {q: r[:K] for q, r in ranks.items()}}
    return out


def format_posts(data: dict) -> str:
    lines = [f"posts {data['posts']}, organisations {data['organisations']}, split {data.get('split', 'all')}",
             f"{'direction':<20}{'queries':>8}{'nDCG@10':>10}{'Recall@10':>11}{'MRR@10':>9}"]
    for name in ("post_to_org", "org_to_post", "org_to_post_direct"):
        d = data[name]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"{name.replace('_to_', '→'):<20}{d['queries']:>8}{fmt(d['ndcg@10']):>10}{fmt(d['recall@10']):>11}"
                     f"{fmt(d['mrr@10']):>9}")
    return "\n".join(lines)


def write_posts_report(data: dict, outdir: Path) -> Path:
    """report.md with the table, the weakest queries, and posts.png (both directions' means)."""
    from ._report import plot_grouped

    outdir.mkdir(parents=True, exist_ok=True)
    names = ["post_to_org", "org_to_post", "org_to_post_direct"]
    metrics = ["ndcg@10", "recall@10", "mrr@10"]
    plot_grouped(outdir / "posts.png", [n.replace("_to_", "→") for n in names],
                 {m: [data[n][m] for n in names] for m in metrics}, "Opportunity posts: matching both ways", "score")
    md = ["# Opportunity posts: matching both ways", "", f"Split: {data.get('split', 'all')}; posts {data['posts']}, "
          f"organisations {data['organisations']}.", "", "| direction | queries | nDCG@10 | Recall@10 | MRR@10 |",
          "|---|---|---|---|---|"]
    for n in names:
        d = data[n]
        md.append(f"| {n.replace('_to_', '→')} | {d['queries']} | {d['ndcg@10']} | {d['recall@10']} | {d['mrr@10']} |")
    md += ["", "![both directions](posts.png)", ""]
    for n in names:
        worst = sorted(data[n]["per_query"].items(), key=lambda kv: kv[1]["ndcg@10"])[:10]
        md += [f"## Weakest {n.replace('_to_', '→')} queries", "", "| query | nDCG@10 | top 5 |", "|---|---|---|"]
        md += [f"| {q} | {v['ndcg@10']} | {', '.join(data[n]['rankings'][q][:5])} |" for q, v in worst]
        md.append("")
    (outdir / "report.md").write_text("\n".join(md), encoding="utf-8")
    (outdir / "posts.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return outdir / "report.md"
