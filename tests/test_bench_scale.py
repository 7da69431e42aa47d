"""bench/scale.py and its generator: fictional organisations through the real schema, vectors
composed from the real model's, and the whole benchmark end to end on a tiny corpus."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

from _synthetic import (LANGS, MARKER, ComposedEncoder, FragmentBudgetExceeded, SyntheticCorpus,  # noqa: E402
                        region_counts, region_near)


def test_generated_organisations_are_fictional_valid_and_deterministic(tmp_path):
    from corpus import load_records

    corpus = SyntheticCorpus(seed=3)
    path = tmp_path / "orgs.jsonl"
    corpus.write_jsonl(path, 400)
    records = load_records(path).records  # the importer validates every line
    assert len(records) == 400 and len({r.id for r in records}) == 400
    assert [r.model_dump() for r in records[:50]] == [r.model_dump() for r in SyntheticCorpus(seed=3).organisations(50)]
    assert records[7].model_dump() == SyntheticCorpus(seed=3).organisation(7).model_dump()  # independent of the size
    assert records[7].model_dump() != SyntheticCorpus(seed=4).organisation(7).model_dump()
    for rec in records:
        assert rec.id.startswith("syn-") and rec.country in ("PT", "CN") and rec.region
        assert not rec.website and not rec.sources and rec.sectors
        assert set(rec.versions()) == set(LANGS)
        for lang, (name, description) in rec.versions().items():
            assert name.startswith(MARKER[lang]) and description
    assert {r.kind for r in records} == {"company", "cluster", "institution"}
    region, count = region_near(region_counts(records), 0.01)
    assert 2 <= count <= 8  # some region holds about 1% of the records: the benchmark's filter


def test_composed_vectors_are_close_to_the_model_and_queries_are_the_model(encoder):
    from index import passage_text

    corpus = SyntheticCorpus(seed=3)
    records = list(corpus.organisations(4))
    texts = [passage_text(r, lang, name, desc) for r in records for lang, (name, desc) in r.versions().items()]
    composed = ComposedEncoder(encoder, corpus)
    assert (composed.model_id, composed.dim) == (encoder.model_id, encoder.dim)
    vectors = composed.encode(texts, "passage")
    assert vectors.shape == (len(texts), encoder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, composed.encode(texts, "passage"))  # deterministic
    assert np.all((vectors @ vectors.T)[np.triu_indices(len(texts), 1)] < 0.9999)  # no two alike
    real = encoder.encode(texts, "passage")
    assert float(np.mean(np.sum(vectors * real, axis=1))) > 0.8  # measured ~0.9: a proxy of the model
    assert composed.unregistered > 0 and len(composed.vectors) > 10  # heads split, fragments encoded once
    query = ["fornecedores de moldes na China"]
    assert np.array_equal(composed.encode(query, "query"), encoder.encode(query, "query"))


def test_sector_passages_are_composed_from_shared_fragments(encoder):
    """The per-record sector passage (names, kind, places, sector labels) costs no model call per
    record: its names resolve to the generator's fragments (no record number is one), so the
    second 200 records add a fraction of the first 200's fragments; its composed vector stays a
    proxy of the model's; query texts of the build (sector labels) go to the model once each; a
    passage of fragments unique to each record is refused."""
    from index._sectors import SectorMapper, sector_passage

    corpus = SyntheticCorpus(seed=3)
    mapper = SectorMapper(None)
    passages = [sector_passage(r, [d.sector for d in mapper.map_record(r) if d.usable]) for r in corpus.organisations(400)]
    assert all(passages)
    composed = ComposedEncoder(encoder, corpus)
    assert " / " in passages[0].split(". ")[0]
    vectors = composed.encode(passages[:200], "passage")
    first = len(composed.vectors)
    composed.encode(passages[200:], "passage")
    assert composed.passages == 400 and len(composed.vectors) - first < first / 4, (first, len(composed.vectors))
    assert not any(ch.isdigit() for fragment in composed.vectors for ch in fragment)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    real = encoder.encode(passages[:6], "passage")
    assert float(np.mean(np.sum(vectors[:6] * real, axis=1))) > 0.8
    labels = ["Indústria de moldes", "高端装备制造", "Indústria de moldes"]
    assert np.array_equal(composed.encode(labels, "query"), encoder.encode(labels, "query"))
    assert composed.queries_encoded == 2
    tight = ComposedEncoder(encoder, corpus, max_fragments=50)
    with pytest.raises(FragmentBudgetExceeded, match="distinct fragments"):
        tight.encode([f"Unregistered clause number {chr(0x4e00 + i)}" for i in range(60)], "passage")


def test_scale_script_end_to_end_on_a_tiny_corpus(tmp_path):
    """300 organisations, composed vectors: built, served by `cpc serve`, searched, filtered,
    ingested into while searching; JSON and plot written."""
    out = tmp_path / "scale.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--sizes", "300", "--queries", "12",
                          "--build-sample", "2", "--ingest", "2", "--work-dir", str(tmp_path / "work"),
                          "--out", str(out), "--json"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(run.stdout) == result
    r = result["sizes"]["300"]
    # three language versions a record, and its sector passage (index/_sectors.py: sector_passage)
    assert r["vectors_mode"] == "composed" and r["build"]["records"] == 300 and r["build"]["vectors"] == 1200, r["build"]
    assert r["build"]["passages_composed"] in (900, 1200) and r["build"]["fragments_encoded"] > 0, r["build"]
    recall = r["recall"]
    assert recall["vectors"] == 1200 and recall["queries"] == 12
    if recall["store"] == "flat":  # an exact store must agree with exact search
        assert recall["recall_at_10"] == 1.0
    assert 0.9 <= recall["recall_at_10"] <= 1.0
    assert 0.005 <= r["filter"]["selectivity"] <= 0.02
    assert r["startup_s"] > 0 and r["rss_warm"]["VmRSS"] > 50 and r["rss_after_ingest"]["VmHWM"] >= r["rss_warm"]["VmRSS"]
    for key in ("search", "filtered_search"):
        assert r[key]["n"] == 12 and r[key]["max_ms"] >= r[key]["p99_ms"] >= r[key]["p50_ms"] > 0
    ingest = r["ingest"]
    assert ingest["records"] == 2 and ingest["records_after"] == 302 and ingest["searches_during"] >= 1
    assert ingest["max_ms"] >= ingest["p99_ms"] > 0
    rate = result["build_rate"][0]
    assert rate["organisations"] == 2 and rate["texts"] == 6 and rate["texts_per_s"] > 0
    assert rate["build_paths"] and set(rate["build_paths"]) <= {"onnxruntime-int8", "onnxruntime-int4", "encoder"}
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(r["headline"]) == set(result["targets"])


@pytest.mark.parametrize("bad", ["0", "abc"])
def test_scale_script_refuses_bad_sizes(bad, tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), "--sizes", bad, "--build-sample", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--sizes" in run.stderr
