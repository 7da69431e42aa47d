"""The value chain between sectors, and the partner roles users ask for, in pt, zh and en.

Data beside the taxonomy (``data/value_chain.json``): which sectors supply which, and what
flows along each link. Needs analysis reads it to point "we make cork, we look for customers"
at wine, and to say why a partner fits ("complements your cork: cork stoppers").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ._matcher import TermMatcher

DATA_DIR = Path(__file__).parent / "data"
ROLES = ("supplier", "customer", "distributor", "manufacturer", "rnd", "investor", "technology", "jv")


@dataclass(frozen=True)
class Link:
    supplier: str
    buyer: str
    what: dict[str, str]

    def label(self, lang: str) -> str:
        return self.what.get(lang) or self.what.get("en") or f"{self.supplier} → {self.buyer}"


class ValueChain:
    def __init__(self, raw: dict):
        self.links = [Link(x["supplier"], x["buyer"], dict(x.get("what", {}))) for x in raw.get("links", [])]
        self.role_labels: dict[str, dict[str, str]] = {k: v.get("labels", {}) for k, v in raw.get("roles", {}).items()}
        self._roles = TermMatcher(((t, role) for role, v in raw.get("roles", {}).items() for t in v.get("terms", [])), plurals=True)
        self._buyers: dict[str, list[Link]] = {}
        self._suppliers: dict[str, list[Link]] = {}
        for link in self.links:
            self._buyers.setdefault(link.supplier, []).append(link)
            self._suppliers.setdefault(link.buyer, []).append(link)

    @classmethod
    def load(cls, path: Path | str | None = None) -> "ValueChain":
        path = Path(path) if path else DATA_DIR / "value_chain.json"
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def buyers_of(self, sector: str) -> list[Link]:
        """Links from ``sector`` to the sectors that buy from it."""
        return self._buyers.get(sector, [])

    def suppliers_of(self, sector: str) -> list[Link]:
        """Links into ``sector`` from the sectors that supply it."""
        return self._suppliers.get(sector, [])

    def link(self, a: str, b: str) -> Link | None:
        """The link between two sectors in either direction, if any."""
        for link in self._buyers.get(a, []):
            if link.buyer == b:
                return link
        for link in self._suppliers.get(a, []):
            if link.supplier == b:
                return link
        return None

    def roles(self, text: str) -> list[str]:
        return self._roles.find_values(text)

    def role_mentions(self, text: str) -> list[tuple[str, str, int]]:
        return self._roles.find(text)

    def role_label(self, role: str, lang: str) -> str:
        return self.role_labels.get(role, {}).get(lang, role)


@lru_cache(maxsize=1)
def default_value_chain() -> ValueChain:
    return ValueChain.load()
