"""Sector taxonomy: labels and synonyms in pt, zh and en.

One place turns free tags and query words into sector slugs, so filters, query
understanding and display agree across languages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ._matcher import TermMatcher

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Sector:
    slug: str
    labels: dict[str, str]
    synonyms: dict[str, tuple[str, ...]]

    def label(self, lang: str) -> str:
        return self.labels.get(lang) or self.labels.get("en") or self.slug

    def terms(self, lang: str | None = None) -> list[str]:
        langs = [lang] if lang else sorted(set(self.labels) | set(self.synonyms))
        out: list[str] = [] if lang else [self.slug, self.slug.replace("-", " ")]
        for code in langs:
            if code in self.labels:
                out.append(self.labels[code])
            out.extend(self.synonyms.get(code, ()))
        return list(dict.fromkeys(t for t in out if t))


class Taxonomy:
    def __init__(self, sectors: dict[str, Sector]):
        self.sectors = sectors
        self._matcher: TermMatcher[str] = TermMatcher(
            ((term, slug) for slug, sector in sectors.items() for term in sector.terms()), plurals=True
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> "Taxonomy":
        path = Path(path) if path else DATA_DIR / "sectors.json"
        raw = json.loads(path.read_text(encoding="utf-8"))
        sectors = {}
        for item in raw:
            syn = {lang: tuple(words) for lang, words in item.get("synonyms", {}).items()}
            sectors[item["slug"]] = Sector(item["slug"], dict(item.get("labels", {})), syn)
        return cls(sectors)

    def __contains__(self, slug: str) -> bool:
        return slug in self.sectors

    def link(self, tag: str) -> str | None:
        """The sector slug a free tag stands for, or None for an unknown tag."""
        return self._matcher.get(tag)

    def normalise_tags(self, tags: list[str]) -> list[str]:
        """Known tags become slugs; unknown tags are kept as written; order kept, no repeats."""
        out: list[str] = []
        for tag in tags:
            tag = tag.strip()
            value = (self.link(tag) or tag) if tag else None
            if value and value not in out:
                out.append(value)
        return out

    def find(self, text: str) -> list[tuple[str, str]]:
        """Sectors named in ``text``: [(slug, term as written)], in order of appearance."""
        seen: dict[str, str] = {}
        for slug, term, _ in self._matcher.find(text):
            seen.setdefault(slug, term)
        return list(seen.items())

    def language_votes(self, text: str, langs: tuple[str, ...] = ("pt", "en")) -> dict[str, int]:
        """How many sector words of each language ``text`` uses (words shared by both don't vote).

        Keyword queries ("ceramic tiles distributors China") carry no stopwords, but their
        sector words still tell Portuguese from English.
        """
        if not hasattr(self, "_by_lang"):
            terms = {lang: {t for sector in self.sectors.values() for t in sector.terms(lang)} for lang in langs}
            self._by_lang = {
                lang: TermMatcher((t, lang) for t in terms[lang] - set().union(*(terms[o] for o in langs if o != lang)))
                for lang in langs
            }
        return {lang: len(m.find(text)) for lang, m in self._by_lang.items()}

    def label(self, slug: str, lang: str) -> str:
        sector = self.sectors.get(slug)
        return sector.label(lang) if sector else slug


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    return Taxonomy.load()
