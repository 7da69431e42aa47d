"""Places in pt, zh and en: the shipped lexicon's regions and cities, widened by a gazetteer built
from maintained packages (``assistant/_gazetteer_build.py`` writes ``data/gazetteer.json``).

A refinement names a place the way its writer knows it ("só em Cantão", "只看北部", "Porto地区",
"only in the North", "Ningbo"); each mention resolves to a :class:`corpus.Place` whose ``name`` is the
value records and filters use. Places the lexicon already knows keep the lexicon's Place (its filter
value and labels); the gazetteer only adds names for them. A Portuguese district resolves to a
:class:`District`: records carry a NUTS II region and a municipality, not a district, so a district
filters by its municipalities.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from corpus import Place, TermMatcher, default_lexicon, fold, has_han

DATA = Path(__file__).with_name("data") / "gazetteer.json"
LATIN_MIN = 5  # romanised Chinese city names shorter than this collide with words ("Ali", "Dali")
# English and Portuguese words that are also pinyin of some Chinese city: never read as a place
LATIN_STOP = {"baise", "linyi", "yulin", "nanping", "sanya", "datong", "ordos"}


@dataclass(frozen=True)
class District(Place):
    """A Portuguese district, or a Chinese urban district or county: records name municipalities and
    prefecture cities, not these, so it filters by the cities it stands for (``cities``)."""

    cities: tuple[str, ...] = ()


class Gazetteer:
    def __init__(self, raw: dict, lexicon=None):
        self.lexicon = lexicon or default_lexicon()
        pairs: list[tuple[str, Place]] = []
        self.places: dict[str, Place] = {}
        for item in raw["places"]:
            known = self.lexicon.place(item["name"]) if not (item["level"] == "district" and item["country"] == "PT") else None
            if known is not None and known.country == item["country"]:
                place = known
            elif item["level"] == "district":
                place = District(item["name"], item["country"], "district", item.get("region"), item["labels"],
                                 tuple(item.get("cities", ())))
            else:
                place = Place(item["name"], item["country"], item["level"], item.get("region"), item["labels"])
            key = f"{item['level']}:{item['name']}".casefold()
            self.places.setdefault(key, place)
            for term in item["terms"]:
                if not has_han(term) and item["country"] == "CN" and item["level"] != "region" and known is None and " " not in term:
                    if len(fold(term)) < LATIN_MIN or fold(term) in LATIN_STOP:
                        continue
                pairs.append((term, self.places[key]))
        self._matcher: TermMatcher[Place] = TermMatcher(pairs)

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> "Gazetteer":
        return cls(json.loads(DATA.read_text(encoding="utf-8")))

    def mentions(self, text: str) -> list[tuple[Place, str, int]]:
        """Places named in ``text`` (longest names first), with the term and its offset in the folded text."""
        return self._matcher.find(text)

    def find(self, name: str) -> Place | None:
        """A place by its filter value (a region, district or city name)."""
        for level in ("region", "district", "city"):
            hit = self.places.get(f"{level}:{name}".casefold())
            if hit is not None:
                return hit
        return self.lexicon.place(name)

    def label(self, name: str, lang: str) -> str:
        place = self.find(name)
        return place.label(lang) if place else name


def default_gazetteer() -> Gazetteer:
    return Gazetteer.load()
