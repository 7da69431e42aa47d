"""Judge: which fused hits are matches, and which are only the nearest when nothing is.

The judgement is separate from the ranking so it can be fitted and tested on its own: it sees
the hits best first and the query analysis, never the vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
