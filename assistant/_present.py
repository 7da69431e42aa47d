"""How a search hit is shown: name and snippet in the reader's language, and why it matched."""

from __future__ import annotations

import functools
import re

from corpus import default_taxonomy, has_han
from index import Hit

_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*")


@functools.lru_cache(maxsize=8192)  # the same descriptions are cut again and again
def snippet(text: str, limit: int = 200) -> str:
    """The opening of ``text`` cut at a sentence or word boundary, at most ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(cut) if m.end() > limit // 2]
    if ends:
        return cut[: ends[-1]].strip()
    if not has_han(cut):
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:，、 ") + "…"


def hit_view(hit: Hit, lang: str) -> dict:
    rec = hit.record
    desc, desc_lang = rec.description_in(lang)
    tax = default_taxonomy()
    return {
        "id": rec.id,
        "name": rec.name_in(lang),
        "kind": rec.kind,
        "country": rec.country,
        "region": rec.region,
        "city": rec.city,
        "sectors": rec.sectors,
        "score": round(hit.score, 4),
        "snippet": snippet(desc),
        "snippet_lang": desc_lang,
        "website": rec.website,
        "why": {
            "sectors": [tax.label(s, lang) for s in hit.sectors],
            "terms": hit.terms[:8],
            "boosts": hit.signals,
        },
    }
