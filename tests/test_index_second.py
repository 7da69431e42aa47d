"""The second dense signal (index/_second.py): USE multilingual vectors kept by row in the generation."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from conftest import fictional_engine, private_copy
from corpus import Organisation

from index import SearchEngine
from index._second import FILE_PTR, FILE_VECTORS, SecondVectors, second_encoder

# A fictional Portuguese maker of socks, written in Portuguese only: the product word (meias,
# peúgas) is not in any question below; e5-small alone ranks it below the footwear and cork records.
SOCKS = {"id": "test-meias-barcelos", "kind": "company", "name": "Malhas Barcelos (teste)", "country": "PT",
         "region": "Norte", "city": "Barcelos", "sectors": ["textiles"], "lang": "pt",
         "description": "Empresa fictícia de teste que fabrica meias de algodão e peúgas desportivas para marcas europeias.",
         "sources": ["https://example.org/test"]}


def test_merged_keeps_old_rows_and_places_new_ones():
    old = SecondVectors(np.eye(4, 3, dtype=np.float32), np.array([0, 1, 3, 4]))  # rows: 1, 2 and 1 vectors
    new = [np.full((2, 3), 0.5, np.float32)]
    merged = old.merged(np.array([0, -1, 2]), new)  # row 1 dropped, a new row in the middle
    assert merged.ptr.tolist() == [0, 1, 3, 4]
    assert np.allclose(merged.flat[0], [1, 0, 0]) and np.allclose(merged.flat[1:3], 0.5) and np.allclose(merged.flat[3], 0)
    q = np.array([0.0, 0.0, 1.0], np.float32)
    assert np.allclose(old.all_rows(q), [0, 1, 0])  # a row scores by its best vector
    assert np.allclose(old.rows(q, [1, 2]), [1, 0])


def test_a_large_matrix_stays_in_its_file_and_merges_as_a_small_one(tmp_path, monkeypatch):
    """Above EXACT_MAX the saved float16 matrix is memory-mapped, not read into memory, and a merge
    over it (in blocks) gives the rows an in-memory merge gives."""
    import index._second as second

    rng = np.random.default_rng(7)
    flat = rng.standard_normal((40, 8)).astype(np.float16)
    ptr = np.array([0, 3, 3, 10, 25, 40])  # five rows, one without vectors
    SecondVectors(flat, ptr).save(tmp_path)
    monkeypatch.setattr(second, "EXACT_MAX", 20)
    big = SecondVectors.load(tmp_path)
    assert isinstance(big.flat, np.memmap) and not big.exact
    monkeypatch.setattr(second, "EXACT_MAX", 1000)
    small = SecondVectors.load(tmp_path)
    assert small.exact and not isinstance(small.flat, np.memmap)
    plan, new = np.array([4, -1, 0, 2, -1]), [rng.standard_normal((2, 8)), rng.standard_normal((1, 8))]
    merged_big, merged_small = big.merged(plan, new, block=7), small.merged(plan, new)
    assert merged_big.ptr.tolist() == merged_small.ptr.tolist()
    assert np.allclose(np.asarray(merged_big.flat, np.float32), merged_small.flat, atol=1e-2)
    q = rng.standard_normal(8).astype(np.float32)
    assert np.allclose(merged_big.rows(q, range(5)), merged_small.rows(q, range(5)), atol=5e-2)
    assert np.allclose(big.rows(q, [0, 1, 2, 3, 4]), small.all_rows(q), atol=5e-2)
    # a generation folder is renamed when it is published and removed when it is old: rows still read
    monkeypatch.setattr(second, "EXACT_MAX", 20)
    held = SecondVectors.load(tmp_path)
    assert isinstance(held.flat, np.memmap)
    moved = tmp_path.parent / (tmp_path.name + "-published")
    tmp_path.rename(moved)
    assert np.allclose(held.rows(q, [0, 1, 2, 3, 4]), small.all_rows(q), atol=5e-2)
    shutil.rmtree(moved)
    assert np.allclose(held.rows(q, [3, 4]), small.all_rows(q)[3:], atol=5e-2)


def test_a_cross_language_product_word_is_found_by_the_second_signal(shipped_data_dir, tmp_path, encoder):
    catalog = private_copy(shipped_data_dir, tmp_path / "data", encoder)
    try:
        catalog.upsert([Organisation.model_validate(SOCKS)])
        engine = catalog.engine
        assert engine._second is not None and len(engine._second) == len(engine._rows)

        def rank(query: str) -> int | None:
            ids = [h.record.id for h in engine.search(query, limit=10).hits]
            return ids.index(SOCKS["id"]) if SOCKS["id"] in ids else None

        with_second = rank("socks manufacturer")
        held, engine.second = engine.second, None  # the same index, the first signal alone
        try:
            without = rank("socks manufacturer")
        finally:
            engine.second = held
        assert with_second is not None and with_second <= 1, with_second
        assert without is None or without > with_second + 1, (without, with_second)
    finally:
        catalog.close()


def test_ingest_and_delete_keep_the_vectors_in_step(fictional_index_dir, tmp_path, encoder):
    engine = fictional_engine(fictional_index_dir, tmp_path / "index", encoder)
    rec = Organisation.model_validate(SOCKS)
    engine.upsert([rec])
    row = engine._columns.row_of[rec.id]
    sv = engine._second
    assert len(sv) == len(engine._rows)
    mine = sv.flat[sv.ptr[row]:sv.ptr[row + 1]]
    expected = second_encoder().encode(SearchEngine.second_passages(rec), "passage")
    assert np.allclose(mine, expected, atol=1e-3)
    other = engine._rows[0] if engine._rows[0] != rec.id else engine._rows[1]
    before = engine._second.rows(expected[0], [engine._columns.row_of[other]])
    engine.save(tmp_path / "index")
    loaded = SearchEngine.load(tmp_path / "index", encoder)
    assert loaded._second.ptr.tolist() == sv.ptr.tolist()
    assert np.allclose(loaded._second.flat, sv.flat, atol=1e-3)  # float16 on disk
    loaded.delete([other])
    assert len(loaded._second) == len(loaded._rows)
    row = loaded._columns.row_of[rec.id]
    assert np.allclose(loaded._second.rows(expected[0], [row]), 1.0, atol=1e-2)
    assert before < 0.99


def test_a_generation_without_second_vectors_encodes_them_at_load(fictional_index_dir, tmp_path, encoder, caplog):
    root = tmp_path / "index"
    shutil.copytree(fictional_index_dir, root)
    reference = SearchEngine.load(root, encoder)._second
    gen = next(p for p in root.iterdir() if p.is_dir() and (p / FILE_VECTORS).exists())
    (gen / FILE_VECTORS).unlink()
    (gen / FILE_PTR).unlink()
    with caplog.at_level(logging.WARNING, logger="cpc.index"):
        engine = SearchEngine.load(root, encoder)
    assert any("vectors: encoding" in r.getMessage() for r in caplog.records)
    assert engine._second.ptr.tolist() == reference.ptr.tolist()
    assert np.allclose(engine._second.flat, reference.flat, atol=1e-3)
    assert engine.search("cork stoppers", limit=3).hits


def test_the_second_signal_can_be_off_or_injected(fictional_index_dir, tmp_path, encoder):
    from index import SearchConfig

    off = SearchEngine.load(shutil.copytree(fictional_index_dir, tmp_path / "a"), encoder, SearchConfig(second=None))
    assert off.second is None and off._second is None
    hits = off.search("cork stoppers", limit=3).hits
    assert hits and all(h.use == 0.0 for h in hits)

    class Constant:  # what a bench passes instead of the real model
        model_id, dim = "constant-test", 8

        def encode(self, texts, kind):
            return np.ones((len(texts), 8), np.float32) / np.sqrt(8)

    injected = SearchEngine.load(shutil.copytree(fictional_index_dir, tmp_path / "b"), encoder, second=Constant())
    assert injected._second.flat.shape[1] == 8  # another second model than the one written: encoded anew
    assert all(h.use == pytest.approx(1.0) for h in injected.search("cork stoppers", limit=3).hits)


def test_many_queries_at_once_score_as_one_at_a_time():
    rng = np.random.default_rng(3)
    flat = rng.normal(size=(7, 5)).astype(np.float16)
    vectors = SecondVectors(flat, np.array([0, 2, 2, 5, 7]))  # row 1 has no passage
    queries = rng.normal(size=(3, 5)).astype(np.float32)
    many = vectors.all_rows_many(queries, chunk=2)
    assert np.allclose(many, np.stack([vectors.all_rows(q) for q in queries]), atol=1e-2)
    assert np.allclose(many[:, [0, 3]], np.stack([vectors.rows(q, [0, 3]) for q in queries]), atol=1e-2)
