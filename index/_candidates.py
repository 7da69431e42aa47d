"""What passes between the search stages: filters in, candidates, scored hits and the result out.

Typed so each stage (``_retrieve`` → ``_fuse`` → ``_judge`` → ``_explain``) can be tested and
swapped on its own: a stage reads only what the one before it produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from corpus import Organisation

from ._encoders import QUERY_CHARS_MAX, cap_text
from ._query import QueryAnalysis

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")


@dataclass
class Filters:
    """Hard filters; a record must match every non-empty field (any value within a field)."""

    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    exclude_countries: tuple[str, ...] = ()
    exclude_regions: tuple[str, ...] = ()
    exclude_cities: tuple[str, ...] = ()
    exclude_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass
class Candidates:
    """What retrieval found: rows (dense hits first, then keyword-only ones), their dense and
    keyword scores, and how many records the filters allow (``total`` before any judgement)."""

    rows: list[int]
    dense: dict[int, float]  # row -> best dense score over its language versions
    keyword: np.ndarray  # row -> BM25 score over the best allowed one (0 for none)
    total: int
    use: dict[int, float] = field(default_factory=dict)  # row -> the second signal's score (index/_second.py)
    use_every: np.ndarray | None = None  # every row's second-signal score, filters aside, when all were scored


@dataclass
class Shown:
    """What judging and ordering need of a candidate before its record is read: most are never shown."""

    id: str
    country: str | None


@dataclass
class Hit:
    record: Organisation
    score: float
    dense: float
    keyword: float
    sectors: list[str] = field(default_factory=list)  # query sectors the record has
    terms: list[str] = field(default_factory=list)  # query keywords found in the record
    signals: list[str] = field(default_factory=list)  # "country", "kind", "place" boosts that applied
    complements: list[str] = field(default_factory=list)  # its sectors that complement the asker's
    on_topic: bool = False  # its tags or its texts name a sector the query asked for or complements
    row: int = field(default=-1, repr=False, compare=False)  # its row in the index (-1: not from an index)
    match: float | None = None  # the judgement's probability that it is a partner asked for (None: not judged)
    less_close: bool = False  # shown although not a match: nothing was, and it sits near the threshold
    use: float = 0.0  # the second dense signal's score (index/_second.py; 0: none)


@dataclass
class SearchResult:
    analysis: QueryAnalysis
    total: int
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    nearest: list[Hit] = field(default_factory=list)  # below the floor: shown only as "nearest", never as matches

    @property
    def embedded(self) -> str:
        """What was embedded of the partner description (see SearchConfig.encode_chars_max)."""
        return cap_text(self.analysis.focus, self.encode_chars_max)[0]

    @property
    def truncated(self) -> bool:
        """Whether only the start of the partner description was embedded."""
        return self.embedded != self.analysis.focus

    encode_chars_max: int = QUERY_CHARS_MAX
    # of ``total``, how many are "less close" (an answered list filled past its matches, or the
    # nearest shown when nothing matched): they are never to be counted or shown as matches
    less_close: int = 0

    @property
    def matches(self) -> int:
        """How many of ``total`` are matches (the rest are less close)."""
        return self.total - self.less_close
