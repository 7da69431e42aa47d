"""Bitext retrieval: for each sentence, is its translation the nearest of all candidates?

A check of the encoder's cross-lingual alignment on human translations, beside the
published figures, independent of our corpus. Protocol (as MTEB's BitextMining task):
cosine similarity, top-1 accuracy, each line's translation is the line with the same
number in the other file. Both sides are encoded as "query" (the "query: " prefix for
E5), which is what MTEB does for bitext with E5 models.

"Calibrated" subtracts from each side the mean vector of that side (that file's first N
lines, embedded) and re-normalises: the per-language mean removal of
``index.Calibration``, with the file as the language. It removes the language's own
offset in the space, which otherwise makes same-language neighbours look closer.

Data: ``shared/data/external`` beside the repository (``CPC_EXTERNAL_DATA`` overrides),
see the README.md of each folder for sources and licences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path

import numpy as np

from ._dataset import DatasetError
from ._run import default_encoder, progress_bar

EXTERNAL_ENV = "CPC_EXTERNAL_DATA"
BATCH = 32


@dataclass(frozen=True)
class BitextSet:
    folder: str
    sides: dict[str, str]  # side key -> file name
    directions: dict[str, tuple[str, str]]  # label -> (query side, candidate side)


_NTREX_FILES = {"pt": "newstest2019-ref.por.txt", "zh": "newstest2019-ref.zho-CN.txt", "en": "newstest2019-src.eng.txt"}
SETS: dict[str, BitextSet] = {
    "tatoeba": BitextSet(
        "tatoeba-laser",
        {"por": "tatoeba.por-eng.por", "eng/por": "tatoeba.por-eng.eng",
         "cmn": "tatoeba.cmn-eng.cmn", "eng/cmn": "tatoeba.cmn-eng.eng"},
        {"por→eng": ("por", "eng/por"), "eng→por": ("eng/por", "por"),
         "cmn→eng": ("cmn", "eng/cmn"), "eng→cmn": ("eng/cmn", "cmn")},
    ),
    "ntrex": BitextSet(
        "ntrex-128", _NTREX_FILES,
        {f"{a}→{b}": (a, b) for a, b in permutations(("pt", "zh", "en"), 2)},
    ),
}

# Published top-1 accuracy (%) of multilingual-e5-small, MTEB Tatoeba, xx→en, all 1000 lines.
PUBLISHED: dict[tuple[str, str], float] = {
    ("tatoeba", "por→eng"): 91.7,
    ("tatoeba", "cmn→eng"): 92.1,
}
PUBLISHED_SOURCE = (
    "multilingual-e5-small on MTEB Tatoeba (accuracy, xx→en, 1000 lines): embeddings-benchmark/results,"
    " results/intfloat__multilingual-e5-small/e4ce9877.../Tatoeba.json, as listed in"
    " shared/data/external/tatoeba-laser/README.md"
)


def external_dir() -> Path:
    """``shared/data/external`` next to the repository, or ``$CPC_EXTERNAL_DATA``."""
    env = os.environ.get(EXTERNAL_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data" / "external"


def _read(path: Path, limit: int | None) -> list[str]:
    if not path.is_file():
        raise DatasetError(path, 0, "-", f"file not found (set {EXTERNAL_ENV} to the folder holding tatoeba-laser/ and ntrex-128/)")
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines[:limit] if limit else lines, start=1):
        if not line.strip():
            raise DatasetError(path, i, "-", "empty line: the files must hold one sentence per line")
    return lines[:limit] if limit else lines


def _top1(queries: np.ndarray, candidates: np.ndarray) -> float:
    """Share of rows whose nearest candidate (cosine) is the row with the same index."""
    best = np.argmax(queries @ candidates.T, axis=1)
    return float(np.mean(best == np.arange(len(queries))))


def calibrate_side(vectors: np.ndarray) -> np.ndarray:
    """Remove the side's own mean and re-normalise (index.Calibration with one "language")."""
    from index import Calibration

    cal = Calibration(doc_means={"side": vectors.mean(axis=0).astype(np.float32)})
    return cal.apply_docs(vectors, ["side"] * len(vectors))


def run_bitext(name: str, limit: int | None = None, encoder=None, progress: bool = True) -> dict:
    """Top-1 accuracy (%) per direction, raw and calibrated, with the published figure where there is one."""
    if name not in SETS:
        raise ValueError(f"unknown bitext set '{name}': choose from {', '.join(SETS)}")
    if limit is not None and limit < 1:
        raise ValueError("--limit must be at least 1")
    spec = SETS[name]
    folder = external_dir() / spec.folder
    texts = {side: _read(folder / file, limit) for side, file in spec.sides.items()}
    for label, (a, b) in spec.directions.items():
        if len(texts[a]) != len(texts[b]):
            raise DatasetError(folder / spec.sides[b], len(texts[b]), "-",
                               f"{len(texts[b])} lines but {spec.sides[a]} has {len(texts[a])}: the files must be line-aligned")
    encoder = encoder or default_encoder()
    raw: dict[str, np.ndarray] = {}
    with progress_bar(f"embedding {name}", sum(len(t) for t in texts.values()), progress, "sentence") as bar:
        for side, lines in texts.items():
            parts = []
            for start in range(0, len(lines), BATCH):
                parts.append(encoder.encode(lines[start : start + BATCH], "query"))
                bar.update(len(parts[-1]))
            raw[side] = np.vstack(parts)
    cal = {side: calibrate_side(v) for side, v in raw.items()}
    n = len(next(iter(texts.values())))
    directions = {}
    for label, (a, b) in spec.directions.items():
        published = PUBLISHED.get((name, label))
        directions[label] = {
            "raw": round(100 * _top1(raw[a], raw[b]), 2),
            "calibrated": round(100 * _top1(cal[a], cal[b]), 2),
            "published": published,
            "n": len(texts[a]),
        }
    return {
        "set": name,
        "path": str(folder),
        "lines": n,
        "model": getattr(encoder, "model_id", ""),
        "unit": "top-1 accuracy, %",
        "prefix": "query on both sides (as MTEB runs E5 models on bitext)",
        "calibration": "each side minus its own mean vector, re-normalised",
        "directions": directions,
        "published_source": PUBLISHED_SOURCE if any(d["published"] is not None for d in directions.values()) else None,
        "published_comparable": limit is None or n >= 1000 if name == "tatoeba" else None,
    }


def format_bitext(data: dict) -> str:
    lines = [f"bitext {data['set']} ({data['path']}): {data['lines']} lines per file, model {data['model']},"
             f" {data['unit']}; prefix: {data['prefix']}; calibrated: {data['calibration']}", ""]
    lines.append(f"{'direction':<10}{'n':>6}{'raw':>8}{'calibrated':>12}{'Δ':>8}{'published':>11}")
    for label, d in data["directions"].items():
        pub = "" if d["published"] is None else f"{d['published']:.1f}"
        lines.append(f"{label:<10}{d['n']:>6}{d['raw']:>8.1f}{d['calibrated']:>12.1f}{d['calibrated'] - d['raw']:>+8.1f}{pub:>11}")
    if data.get("published_source"):
        lines += ["", f"published: {data['published_source']}"]
        if data.get("published_comparable") is False:
            lines.append("(published figures use all 1000 lines; this run used fewer, so they are not directly comparable)")
    return "\n".join(lines)


def write_bitext_report(data: dict, outdir: str | Path) -> Path:
    """bitext-<set>.md with a table and bitext-<set>.png (grouped bars raw / calibrated / published)."""
    from ._report import _md_table, plot_grouped

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    labels = list(data["directions"])
    series = {key: [data["directions"][d][key] for d in labels] for key in ("raw", "calibrated", "published")}
    if all(v is None for v in series["published"]):
        del series["published"]
    png = plot_grouped(outdir / f"bitext-{data['set']}.png", labels, series,
                       f"{data['set']}: top-1 retrieval accuracy ({data['lines']} lines)", "accuracy, %", 100.0, "{:.1f}")
    lines = [f"# Bitext retrieval: {data['set']}", "", format_bitext(data).split("\n")[0], ""]
    lines += _md_table(["direction", "n", "raw %", "calibrated %", "Δ", "published %"],
                       [[k, d["n"], f"{d['raw']:.1f}", f"{d['calibrated']:.1f}", f"{d['calibrated'] - d['raw']:+.1f}",
                         "" if d["published"] is None else f"{d['published']:.1f}"] for k, d in data["directions"].items()])
    lines += ["", f"![bitext]({png.name})", ""]
    if data.get("published_source"):
        lines += [f"Published: {data['published_source']}.", ""]
    path = outdir / f"bitext-{data['set']}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
