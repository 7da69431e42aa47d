"""Fitting the judgement (eval/_judgement.py): where the answer-or-abstain cut is set, on
synthetic rankings of two corpora (pure: no encoder, no index)."""

import numpy as np
import pytest

from corpus import Organisation
from eval import _judgement as J
from index import Hit, analyse

N_HITS = 25


def _question(rng, corpus: str, n: int, top: float, answerable: bool, analysis) -> dict:
    hits = []
    for i in range(N_HITS):
        dense = top if i == 0 else top - 0.12 - 0.004 * i + rng.normal(0, 0.005)
        rec = Organisation(id=f"{corpus}-{n}-{i}", kind="company", name=f"r{i}", country="CN", description="x")
        hits.append(Hit(rec, dense, dense, 0.0))
    qrels = {hits[0].record.id: 2} if answerable else {}
    return {"id": f"{corpus}/{n}", "corpus": corpus, "group": corpus, "lang": "en", "styles": [], "qrels": qrels,
            "answerable": answerable, "analysis": analysis, "hits": hits}


@pytest.fixture(scope="module")
def two_corpora():
    """Corpus "easy": answerable questions read far closer than out-of-corpus ones. Corpus "hard":
    every score lower (other records, another language), so a cut fitted on "easy" alone hides
    some of its answerable questions."""
    rng = np.random.default_rng(7)
    a = analyse("parceiros industriais")
    items = []
    for corpus, ans_mean, spread, ooc_mean in (("easy", 0.62, 0.07, 0.36), ("hard", 0.55, 0.04, 0.30)):
        items += [_question(rng, corpus, n, rng.normal(ans_mean, spread), True, a) for n in range(40)]
        items += [_question(rng, corpus, 100 + n, rng.normal(ooc_mean, 0.04), False, a) for n in range(12)]
    return items


def test_the_cut_keeps_the_share_asked_of_the_corpora_each_left_out(two_corpora):
    keep, tried = J.choose_near_keep(two_corpora)
    assert keep in J.NEAR_KEEPS and str(keep) in tried
    answered = 0.0
    for held in ("easy", "hard"):
        model = J.fit([it for it in two_corpora if it["group"] != held], keep)
        answered += 40 * J.answered_share([it for it in two_corpora if it["group"] == held], model)
    assert answered / 80 >= J.KEEP_LEFT_OUT and tried[str(keep)]["all"] == round(answered / 80, 4)
    earlier = J.NEAR_KEEPS[: J.NEAR_KEEPS.index(keep)]
    assert earlier and all(tried[str(k)]["all"] < J.KEEP_LEFT_OUT for k in earlier)  # every higher cut hid more


def test_the_fit_on_all_corpora_answers_the_kept_share_and_shows_less_close_above_the_cut(two_corpora):
    model = J.fit(two_corpora, 0.95)
    assert model.near < model.threshold and abs(model.threshold * J.NEAR_RATIO - model.near) < 1e-9
    assert J.answered_share(two_corpora, model) >= 0.95
    out = [it for it in two_corpora if not it["answerable"]]
    report = J.score(two_corpora, model)
    assert report["out_of_corpus"] == len(out) and report["abstained"] >= len(out) // 2  # still abstains


def test_a_single_corpus_has_nothing_to_leave_out(two_corpora):
    assert J.choose_near_keep([it for it in two_corpora if it["group"] == "easy"]) == (J.KEEP_FIRST, {})
