"""Nearest labelled examples over the real encoder: vectors computed once (process and disk), one
encode per message, the threshold and the ambiguity gap."""

import numpy as np
import pytest

from assistant._exemplars import Exemplars, exemplar_vectors, nearest, query_vector


class Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, encoder, model_id=None):
        self.inner, self.texts = encoder, []
        if model_id is not None:
            self.model_id = model_id

    def encode(self, texts, kind="query"):
        self.texts += list(texts)
        return self.inner.encode(texts, kind)


EXAMPLES = [("greet", "olá, bom dia"), ("greet", "hello there"), ("greet", "你好"),
            ("moulds", "fabricantes de moldes"), ("moulds", "mould makers in Leiria"), ("moulds", "模具制造商")]


def test_scores_are_the_mean_of_the_k_nearest_examples_per_label(encoder):
    ex = Exemplars(encoder, EXAMPLES, k=2)
    assert ex.names == ("greet", "moulds") and ex.vectors.shape == (6, encoder.dim)
    q = np.asarray(encoder.encode(["empresas de moldes para plástico"], "query")[0], np.float32)
    sims = ex.vectors @ q
    scores = ex.scores("empresas de moldes para plástico")
    assert scores["moulds"] == pytest.approx(float(np.sort(sims[3:])[-2:].mean()), abs=1e-5)
    assert scores["greet"] == pytest.approx(float(np.sort(sims[:3])[-2:].mean()), abs=1e-5)
    assert scores["moulds"] > scores["greet"]
    assert nearest(scores, 0.5, 0.0)[0] == "moulds"


def test_example_vectors_are_computed_once_per_encoder(encoder):
    counting = Counting(encoder)
    texts = ["um texto só deste teste", "a text only this test has"]
    vectors = exemplar_vectors(counting, texts)
    assert counting.texts == texts and vectors.shape == (2, encoder.dim)
    assert exemplar_vectors(counting, texts) is vectors and counting.texts == texts
    assert Exemplars(counting, [("a", texts[0]), ("b", texts[1])], k=1).vectors is vectors


def test_a_message_is_encoded_once_for_every_reader(encoder):
    counting = Counting(encoder)
    one = Exemplars(counting, EXAMPLES, k=2)
    two = Exemplars(counting, EXAMPLES[:3] + [("other", "obrigado")], k=1)
    counting.texts.clear()
    one.scores("procuro moldes em Marinha Grande")
    two.scores("procuro moldes em Marinha Grande")
    query_vector(counting, "procuro moldes em Marinha Grande")
    assert counting.texts == ["procuro moldes em Marinha Grande"]


def test_nearest_needs_the_threshold_and_the_gap_over_its_rivals():
    scores = {"subscribe": 0.90, "stop": 0.895, "other": 0.85}
    assert nearest(scores, 0.88, 0.01) == (None, 0.90)  # too close to "stop"
    assert nearest(scores, 0.88, 0.01, rivals=("other",)) == ("subscribe", 0.90)  # only "other" is a rival
    assert nearest(scores, 0.95, 0.0) == (None, 0.90)  # below the threshold
    assert nearest({"other": 0.9, "stop": 0.1}, 0.5, 0.01, rivals=("other",)) == ("other", 0.9)


def test_no_examples_is_an_error(encoder):
    with pytest.raises(ValueError):
        Exemplars(encoder, [], k=2)
