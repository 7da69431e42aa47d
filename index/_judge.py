"""Judge: which fused hits are matches, and which are only the nearest when nothing is.

The judgement is separate from the ranking so it can be fitted and tested on its own: it sees
the hits best first and the query analysis, never the vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._candidates import Hit
from ._query import QueryAnalysis


@dataclass
class Judged:
    hits: list[Hit]  # the matches, in the order they are shown
    total: int | None  # how many there are (None: judging did not apply, the retrieval total stands)
    nearest: list[Hit] = field(default_factory=list)  # when nothing matches: the closest, which are not matches


def is_match(hit: Hit, a: QueryAnalysis, floor: dict[str, float], check_country: bool = True) -> bool:
    """Whether a hit is a partner the query asked for (see ``SearchConfig.floor``)."""
    rec = hit.record
    if check_country and a.countries and rec.country not in a.countries:
        return False  # the partner was asked for elsewhere: the asker's own side is no answer
    if (a.sectors or a.complements) and not hit.on_topic and hit.dense < floor["dense_off_sector"]:
        return False  # about another trade, and does not read close enough to say otherwise
    if not (a.sectors or a.complements) and hit.dense < floor["dense"]:
        return False  # nothing to recognise the partner by but the text, which is not close
    return hit.score >= floor["score"]


def apply_floor(hits: list[Hit], a: QueryAnalysis, floor: dict[str, float], other_side: bool = True) -> list[Hit]:
    """The hits that are matches, best first (``hits`` sorted by score)."""
    matches = [hit for hit in hits if is_match(hit, a, floor)]
    if other_side and matches and a.countries and not a.needs.split:
        # "moldes China" has answers in China: the same trade on the other side follows them,
        # as a lead to a partner of a partner. A need that said who asks gets only the side asked for.
        matches += [hit for hit in hits if hit.record.country not in a.countries
                    and is_match(hit, a, floor, check_country=False)]
    return matches


def judge_floor(hits: list[Hit], a: QueryAnalysis, floor: dict[str, float] | None, filtered: bool,
                other_side: bool = True) -> Judged:
    """The floor's judgement: ``floor`` None (off, or not hybrid) keeps every hit; searches within
    hard filters that name no topic are a browse and keep every hit too."""
    if floor is not None and filtered and not (a.sectors or a.complements or a.countries or a.places):
        floor = None  # "industrial partners" within hard filters: a browse, the filters say what is wanted
    if floor is None:
        return Judged(hits, None)
    kept = apply_floor(hits, a, floor, other_side)
    return Judged(kept, len(kept), [] if kept else hits[:3])


# -- the calibrated judgement --------------------------------------------------------------
# What a hit shares with the query. No feature says whether the query's sector was recognised:
# a question whose sector is not recognised has on_topic = off_topic = 0, judged by its text
# alone, never gated on sector (the dev sets' unrecognised questions were mostly out of corpus;
# a feature for it learnt "unrecognised = nothing fits" and hid true partners on other data).
FEATURES = (
    "dense", "keyword", "score", "gap", "dense_gap", "log_rank", "on_topic", "off_topic",
    "tagged", "country_ok", "country_off", "place", "kind", "dense_z", "use", "use_z",
)
# What the best hits of a query say about whether anything in the corpus fits it at all.
QUERY_FEATURES = (
    "top_dense", "top_keyword", "top_score", "top_on_topic", "top_off_topic", "top_country_ok", "top_country_off",
    "top_tagged", "top_kind", "top_place", "best3_dense", "best3_on_topic", "drop5", "top_dense_z", "best3_dense_z",
    "spread", "top_use", "best3_use_z",
)
POOL = 20  # the best dense scores a query's own score scale is read from (in every pool a search retrieves)


def pool_scale(hits: list[Hit], of: str = "dense") -> tuple[float, float]:
    """(mean, spread) of the ``POOL`` best dense scores among ``hits``: the query's own scale. Raw
    cosine levels differ by query, language and corpus (a fit on one corpus's levels hid true
    partners on another); how far a hit stands above the rest of what the query retrieves does not.
    ``of``: "use" for the second signal's scores (index/_second.py)."""
    return scale_of(np.fromiter((getattr(h, of) for h in hits), np.float64, len(hits)))


def scale_of(scores: np.ndarray) -> tuple[float, float]:
    """``pool_scale`` of a score array."""
    best = np.sort(scores)[::-1][:POOL]
    if not len(best):
        return 0.0, 1.0
    return float(best.mean()), max(float(best.std()), 0.005)


def _hit_columns(hits: list[Hit], countries: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(dense, keyword, score, use) as floats and (on_topic, tagged, in_country, place, kind) as booleans,
    one row a hit, read in one pass over the hits (a column at a time took nine)."""
    values = np.array([(h.dense, h.keyword, h.score, h.use) for h in hits], np.float64).reshape(len(hits), 4)
    flags = np.array([(bool(h.on_topic), bool(h.sectors or h.complements), h.record.country in countries,
                       "place" in h.signals, "kind" in h.signals) for h in hits], bool).reshape(len(hits), 5)
    return values, flags


def features(hits: list[Hit], a: QueryAnalysis, ignore_country: bool = False,
             scale: tuple[float, float] | None = None, use_scale: tuple[float, float] | None = None) -> np.ndarray:
    """One row of ``FEATURES`` a hit (``hits`` best first). ``ignore_country``: as if no
    country had been asked for (the other side of a plain query). ``scale``, ``use_scale``: the
    query's ``pool_scale`` of dense and second-signal scores over all it retrieved (default: over ``hits``)."""
    n = len(hits)
    if not n:
        return np.zeros((0, len(FEATURES)), np.float64)
    countries = () if ignore_country else tuple(a.countries)
    values, flags = _hit_columns(hits, countries)
    dense = values[:, 0]
    in_country = flags[:, 2]
    asked = bool(countries)
    return feature_rows(
        dense, values[:, 1], values[:, 2], flags[:, 0], flags[:, 1], asked & in_country, asked & ~in_country,
        flags[:, 3], flags[:, 4], float(bool(a.sectors or a.complements)), scale or scale_of(dense),
        values[:, 3], use_scale or scale_of(values[:, 3]))


def feature_rows(dense: np.ndarray, keyword: np.ndarray, score: np.ndarray, on_topic: np.ndarray, tagged: np.ndarray,
                 country_ok: np.ndarray, country_off: np.ndarray, place: np.ndarray, kind: np.ndarray,
                 topic: float, scale: tuple[float, float], use: np.ndarray | None = None,
                 use_scale: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``FEATURES`` rows from per-hit columns (best first, booleans as bool arrays): the one layout
    both the search's judgement (``features``) and alert matching (``_standing``) fill."""
    x = np.zeros((len(dense), len(FEATURES)), np.float64)
    if not len(dense):
        return x
    mean, spread = scale
    x[:, 0], x[:, 1], x[:, 2] = dense, keyword, score
    x[:, 3], x[:, 4] = score[0] - score, dense.max() - dense
    x[:, 5] = np.log1p(np.arange(len(dense)))
    x[:, 6], x[:, 7] = topic * on_topic, topic * ~on_topic
    x[:, 8], x[:, 9], x[:, 10], x[:, 11], x[:, 12] = tagged, country_ok, country_off, place, kind
    x[:, 13] = (dense - mean) / spread
    if use is not None:  # the second signal (index/_second.py), its level and against the query's own scale
        x[:, 14] = use
        x[:, 15] = (use - use_scale[0]) / use_scale[1]
    return x


def query_features(x: np.ndarray, spread: float = 0.0) -> np.ndarray:
    """``QUERY_FEATURES`` from the hit features of a query's hits (best first; at least one)."""
    col = {f: i for i, f in enumerate(FEATURES)}
    top = x[0]
    best3 = x[:3]
    return np.array([
        top[col["dense"]], top[col["keyword"]], top[col["score"]], top[col["on_topic"]], top[col["off_topic"]],
        top[col["country_ok"]], top[col["country_off"]], top[col["tagged"]], top[col["kind"]], top[col["place"]],
        best3[:, col["dense"]].max(), best3[:, col["on_topic"]].max(), top[col["score"]] - x[min(4, len(x) - 1), col["score"]],
        top[col["dense_z"]], best3[:, col["dense_z"]].max(), spread,
        top[col["use"]], best3[:, col["use_z"]].max(),
    ])


@dataclass
class Logistic:
    """P = 1 / (1 + exp(-(((x - mean) / scale) · coef + intercept)))."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(((x - self.mean) / self.scale) @ self.coef + self.intercept)))

    @classmethod
    def from_dict(cls, body: dict) -> "Logistic":
        arr = lambda k: np.asarray(body[k], np.float64)  # noqa: E731
        return cls(arr("mean"), np.where(arr("scale") > 0, arr("scale"), 1.0), arr("coef"), float(body["intercept"]))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}


@dataclass
class JudgementModel:
    """Two fitted logistic models (``eval/_judgement.py``, ``cpc eval --fit-judgement``, shipped as
    index/data/judgement.json): ``answerable``, P(something in the corpus fits the question) from
    its best hits; ``hit``, P(this hit is a partner asked for). A question is answered when
    ``answerable`` reaches ``threshold``; its matches are the hits whose ``hit`` probability
    reaches ``hit_threshold`` (the best one at least). From ``near`` up to ``threshold`` the best
    hits are shown labelled "less close"; below ``near``, nothing."""

    answerable: Logistic
    hit: Logistic
    threshold: float
    hit_threshold: float
    near: float

    def probabilities(self, hits: list[Hit], a: QueryAnalysis, ignore_country: bool = False,
                      scale: tuple[float, float] | None = None, use_scale: tuple[float, float] | None = None) -> np.ndarray:
        """``scale``, ``use_scale``: ``pool_scale(hits)`` of dense and second-signal scores, when the
        caller has them (they are the same for every call of a query)."""
        return self.hit(features(hits, a, ignore_country, scale, use_scale))

    def answerable_probability(self, hits: list[Hit], a: QueryAnalysis, scale: tuple[float, float] | None = None,
                               use_scale: tuple[float, float] | None = None) -> float:
        row = answer_features(hits, a, scale, use_scale)
        return 0.0 if row is None else float(self.answerable(row))

    @classmethod
    def from_dict(cls, body: dict) -> "JudgementModel":
        if list(body.get("features", ())) != list(FEATURES) or list(body.get("query_features", ())) != list(QUERY_FEATURES):
            raise ValueError("the judgement model's features are not this version's: refit it (cpc eval --fit-judgement)")
        return cls(Logistic.from_dict(body["answerable"]), Logistic.from_dict(body["hit"]), float(body["threshold"]),
                   float(body["hit_threshold"]), float(body["near"]))

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "query_features": list(QUERY_FEATURES), "answerable": self.answerable.to_dict(),
                "hit": self.hit.to_dict(), "threshold": self.threshold, "hit_threshold": self.hit_threshold, "near": self.near}


QUERY_HITS = 5  # the best hits the answerable model reads


def answer_features(hits: list[Hit], a: QueryAnalysis, scale: tuple[float, float] | None = None,
                    use_scale: tuple[float, float] | None = None) -> np.ndarray | None:
    """The ``QUERY_FEATURES`` row of a query (``hits``: all it retrieved, best first), or None when
    nothing is on the side asked for. Whether anything fits is asked of the side the partner was
    asked for ("Portuguese ceramics makers" is not answered by Chinese ones; they follow a
    Portuguese match, or are the nearest); the scale is that of everything retrieved."""
    sided = [hit for hit in hits if hit.record.country in a.countries] if a.countries else hits
    if not sided:
        return None
    scale = scale or pool_scale(hits)
    use_scale = use_scale or pool_scale(hits, of="use")
    return query_features(features(sided[:QUERY_HITS], a, scale=scale, use_scale=use_scale), scale[1])


NEAR_SHOWN = 3  # at most this many "less close" hits when the question is not answered
# An answered question's list is filled up to this many with the next hits (on the side asked for,
# or either side: judge_calibrated), labelled "less close": a hidden partner is worse than an
# extra, labelled result (the user never learns it exists), and on corpora nobody fitted on the
# match threshold cut true partners.
FILL_SHOWN = 10
MIN_SHOWN = 1  # an answered question shows at least its best this many on the side asked for


def asks_something(a: QueryAnalysis) -> bool:
    """Whether the question says what it wants (a sector, complement, country or place): a search
    within filters that does not is a browse, and is not judged."""
    return bool(a.sectors or a.complements or a.countries or a.places)


def judge_calibrated(hits: list[Hit], a: QueryAnalysis, model: JudgementModel, filtered: bool,
                     other_side: bool = True, fill: bool = True,
                     scales: tuple[tuple[float, float], tuple[float, float]] | None = None) -> Judged:
    """The question is answered when the answerable probability reaches the threshold: its
    matches are the hits whose match probability reaches the hit threshold, in the order fused
    (the best hit always). Just below, the best are shown labelled less close; further below,
    nothing is shown and the closest are only ``nearest``."""
    if filtered and not asks_something(a):
        return Judged(hits, None)  # a browse within hard filters: the filters say what is wanted
    if not hits:
        return Judged([], 0)
    # the query's scales: read once, every call below uses them
    scale, use_scale = scales if scales is not None else (pool_scale(hits), pool_scale(hits, of="use"))
    answerable = model.answerable_probability(hits, a, scale, use_scale)
    p = model.probabilities(hits, a, scale=scale, use_scale=use_scale)
    for hit, prob in zip(hits, p.tolist()):
        hit.match = prob * answerable
    if answerable < model.threshold:
        near = hits[:NEAR_SHOWN] if answerable >= model.near else []
        for hit in near:
            hit.less_close = True
        return Judged(near, len(near), [] if near else hits[:3])
    # the side asked for: a partner asked for elsewhere is not on the asker's own side
    sided = np.array([not a.countries or hit.record.country in a.countries for hit in hits])
    kept = (p >= model.hit_threshold) & sided
    on_its_own = bool(kept.any())
    kept[np.flatnonzero(sided)[:MIN_SHOWN]] = True  # the question is answered: its best on the side asked for are shown
    matches = [hit for hit, k in zip(hits, kept.tolist()) if k]
    # A question that named a country without saying who asks may be answered from the other side
    # too; a need that said who asks gets its side only.
    either_side = other_side and bool(a.countries) and not a.needs.split
    if either_side and on_its_own:
        # "moldes China" has answers in China: the same trade on the other side follows them
        # (judged as if no country had been asked for)
        other = model.probabilities(hits, a, ignore_country=True, scale=scale, use_scale=use_scale)
        matches += [hit for hit, prob, k in zip(hits, other.tolist(), kept.tolist())
                    if not k and hit.record.country not in a.countries and prob >= model.hit_threshold]
    if not matches:
        return Judged([], 0, hits[:3])
    # The fill follows the fused ranking, from either side when the question allows it: for
    # "葡萄牙 汽车零部件" China's car cities rank above Portugal's furniture cluster
    shown = {id(hit) for hit in matches}
    for hit, side_ok in zip(hits, sided.tolist()):
        if not fill or len(matches) >= FILL_SHOWN:
            break
        if (side_ok or either_side) and id(hit) not in shown:
            hit.less_close = True
            matches.append(hit)
    return Judged(matches, len(matches))


def judge(hits: list[Hit], a: QueryAnalysis, cfg, mode: str, enabled: bool, filtered: bool, other_side: bool,
          fill: bool = True, scales: tuple[tuple[float, float], tuple[float, float]] | None = None) -> Judged:
    """The configured judgement (``SearchConfig.judgement``) of hybrid-mode hits; other modes and
    ``enabled`` False keep every hit. ``scales``: the query's (dense, second-signal) scale when it
    is not to be read from ``hits`` (a filtered search: from the unfiltered candidates)."""
    if mode != "hybrid" or not enabled or cfg.judgement is None:
        return Judged(hits, None)
    if cfg.judgement == "calibrated" and cfg.model is not None:
        return judge_calibrated(hits, a, cfg.model, filtered, other_side, fill, scales)
    return judge_floor(hits, a, cfg.floor_for(a.lang), filtered, other_side)
