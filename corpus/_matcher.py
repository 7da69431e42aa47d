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
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


class TermMatcher(Generic[V]):
    """Maps terms to values and finds them in text: [(value, term as written, start)]."""

    def __init__(self, pairs: Iterable[tuple[str, V]]):
        self._exact: dict[str, V] = {}
        han: list[tuple[str, V]] = []
        latin: list[tuple[str, V]] = []
        for term, value in pairs:
            key = fold(term).strip()
            if not key:
                continue
            self._exact.setdefault(key, value)
            (han if _HAN.search(term) else latin).append((key, value))
        han.sort(key=lambda t: -len(t[0]))
        latin.sort(key=lambda t: -len(t[0]))
        self._han = han
        self._latin = [(re.compile(r"(?<!\w)" + re.escape(k) + r"(?!\w)"), k, v) for k, v in latin]

    def get(self, term: str) -> V | None:
        return self._exact.get(fold(term).strip())

    def find(self, text: str) -> list[tuple[V, str, int]]:
        folded = fold(text)
        same_len = len(folded) == len(text)
        taken: list[tuple[int, int]] = []
        hits: list[tuple[int, V, str]] = []

        def claim(a: int, b: int) -> bool:
            if any(a < e and b > s for s, e in taken):
                return False
            taken.append((a, b))
            return True

        for key, value in self._han:
            start = folded.find(key)
            while start >= 0:
                if claim(start, start + len(key)):
                    hits.append((start, value, text[start : start + len(key)] if same_len else key))
                start = folded.find(key, start + 1)
        for pat, key, value in self._latin:
            for m in pat.finditer(folded):
                if claim(m.start(), m.end()):
                    hits.append((m.start(), value, text[m.start() : m.end()] if same_len else key))
        hits.sort(key=lambda h: h[0])
        return [(v, t, s) for s, v, t in hits]

    def find_values(self, text: str) -> list[V]:
        out: list[V] = []
        for value, _, _ in self.find(text):
            if value not in out:
                out.append(value)
        return out
