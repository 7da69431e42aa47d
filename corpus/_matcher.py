"""Find known terms in free text in pt, zh and en.

Chinese has no spaces, so Han terms match as substrings; Latin terms match whole words
after accent folding. Longer terms win over the shorter ones they contain.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Generic, Iterable, TypeVar

V = TypeVar("V")

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def fold(text: str) -> str:
    """Lowercase and strip accents, so 'Cortiça' matches 'cortica'."""
    if text.isascii():  # nothing to strip: the common case, and a hot path of every query
        return text.lower()
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


class TermMatcher(Generic[V]):
    """Maps terms to values and finds them in text: [(value, term as written, start)]."""

    def __init__(self, pairs: Iterable[tuple[str, V]], plurals: bool = False):
        self._exact: dict[str, V] = {}
        han: list[tuple[str, V]] = []
        latin: list[tuple[str, V]] = []
        for term, value in pairs:
            key = fold(term).strip()
            if not key:
                continue
            self._exact.setdefault(key, value)
            (han if _HAN.search(term) else latin).append((key, value))
        # one alternation per script, longest terms first, so a text is scanned once
        self._values: dict[str, V] = {}
        for key, value in han + latin:
            self._values.setdefault(key, value)
        han_keys = sorted({k for k, _ in han}, key=len, reverse=True)
        latin_keys = sorted({k for k, _ in latin}, key=len, reverse=True)
        self._han_re = re.compile("|".join(map(re.escape, han_keys))) if han_keys else None
        # with ``plurals``, a plural ending is tolerated ("placas eletrónicas" names "eletrónica"); not for
        # names of places ("portos" is not Porto)
        ending = r"(?:s|es)?" if plurals else ""
        self._latin_re = (
            re.compile(r"(?<!\w)(" + "|".join(map(re.escape, latin_keys)) + r")" + ending + r"(?!\w)") if latin_keys else None
        )

    def get(self, term: str) -> V | None:
        return self._exact.get(fold(term).strip())

    def find(self, text: str) -> list[tuple[V, str, int]]:
        folded = fold(text)
        same_len = len(folded) == len(text)
        hits: list[tuple[int, V, str]] = []
        spans: list[tuple[int, int]] = []
        for pattern in (self._han_re, self._latin_re):
            for m in pattern.finditer(folded) if pattern is not None else ():
                if any(m.start() < end and m.end() > start for start, end in spans):
                    continue
                spans.append(m.span())
                term = text[m.start() : m.end()] if same_len else m.group()
                hits.append((m.start(), self._values[m.group(1) if m.lastindex else m.group()], term))
        hits.sort(key=lambda h: h[0])
        return [(v, t, s) for s, v, t in hits]

    def find_values(self, text: str) -> list[V]:
        out: list[V] = []
        for value, _, _ in self.find(text):
            if value not in out:
                out.append(value)
        return out
