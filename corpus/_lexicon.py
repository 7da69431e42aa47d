"""Countries, kinds and places named in pt, zh and en, for query understanding and display."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ._matcher import TermMatcher

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Place:
    """A region or city; ``name`` is the value used in records and filters."""

    name: str
    country: str
    level: str  # "region" | "city"
    region: str | None
    labels: dict[str, str]

    def label(self, lang: str) -> str:
        return self.labels.get(lang) or self.name


class Lexicon:
    def __init__(self, raw: dict):
        self.country_labels: dict[str, dict[str, str]] = {
            code: item["labels"] for code, item in raw["countries"].items()
        }
        self.kind_labels: dict[str, dict[str, str]] = {k: v["labels"] for k, v in raw["kinds"].items()}
        self.places: dict[str, Place] = {}
        place_terms: list[tuple[str, Place]] = []
        for level, items in (("region", raw["regions"]), ("city", raw.get("cities", []))):
            for item in items:
                place = Place(item["name"], item["country"], level, item.get("region"), item["labels"])
                self.places.setdefault(item["name"].casefold(), place)
                place_terms += [(t, place) for t in [item["name"], *item["terms"]]]  # labels are for display only
        self._countries = TermMatcher(
            (t, code) for code, item in raw["countries"].items() for t in item["terms"]
        )
        self._kinds = TermMatcher((t, kind) for kind, item in raw["kinds"].items() for t in item["terms"])
        self._places = TermMatcher(place_terms)

    @classmethod
    def load(cls, path: Path | str | None = None) -> "Lexicon":
        path = Path(path) if path else DATA_DIR / "lexicon.json"
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def countries(self, text: str) -> list[str]:
        return self._countries.find_values(text)

    def kinds(self, text: str) -> list[str]:
        return self._kinds.find_values(text)

    def find_places(self, text: str) -> list[tuple[Place, str]]:
        seen: dict[str, tuple[Place, str]] = {}
        for place, term, _ in self._places.find(text):
            seen.setdefault(place.name, (place, term))
        return list(seen.values())

    def place_mentions(self, text: str) -> list[tuple[Place, str, int]]:
        """Every place named, with the matched term and its offset in the accent-folded text."""
        return self._places.find(text)

    def country_mentions(self, text: str) -> list[tuple[str, str, int]]:
        return self._countries.find(text)

    def place(self, name: str) -> Place | None:
        return self.places.get(name.casefold())

    def country_label(self, code: str, lang: str) -> str:
        return self.country_labels.get(code, {}).get(lang, code)

    def kind_label(self, kind: str, lang: str) -> str:
        return self.kind_labels.get(kind, {}).get(lang, kind)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return Lexicon.load()
