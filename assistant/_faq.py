"""Questions about the alliance answered from a FAQ the staff keep, by meaning, before any search.

Why: "quanto custa este serviço?" or "what is the CPC Alliance?" read like searches to a search
engine. The entries live in the state store (so every worker and the console share them and staff
can edit them); the shipped ones in ``data/faq.json`` are stored once. Every question of every
entry, in every language, is embedded with the service's encoder; a message is answered when its
nearest question is close enough, in the reader's language. A message that comes near without
reaching it, and that talks about the alliance or the service, is logged for staff as unanswered.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ._exemplars import exemplar_vectors, query_vector

if TYPE_CHECKING:
    from ._state import StateStore

SEED = Path(__file__).parent / "data" / "faq.json"
LANGS = ("pt", "zh", "en")
# Cosine (e5, query-query) to the nearest stored question: at or above ANSWER an answer; between
# NEAR and ANSWER, an unanswered question when it is about the alliance. Measured in
# tests/test_assistant_faq.py against the shipped searches and the dialogue's small talk.
ANSWER = 0.915
NEAR = 0.87
ABOUT_US = re.compile(r"\bcpc\b|alian[cç]a|alliance|联盟|servi[cç]o|service|服务|membro|member|会员|ades[aã]o|"
                      r"pre[cç]o|custa|cost|fee|price|收费|费用|价格|privacidade|privacy|隐私|equipa|team|工作人员", re.I)


@dataclass
class FaqAnswer:
    id: int
    text: str
    lang: str  # the language of the text (the reader's, or the first the entry has)
    question: str  # the stored question that matched
    score: float


def load_seed(path: Path = SEED) -> list[dict[str, Any]]:
    return [{"questions": e["questions"], "answers": e["answers"]}
            for e in json.loads(path.read_text(encoding="utf-8"))["entries"]]


class FaqBook:
    """The FAQ as the dialogue reads it: the store's entries, embedded again whenever staff changed them."""

    def __init__(self, store: "StateStore", encoder: Callable[[], Any], seed: Path | None = SEED):
        self.store = store
        self._encoder = encoder
        self._seed = seed
        self._lock = threading.Lock()
        self._seeded = False
        self._version: tuple[int, float] | None = None
        self._entries: dict[int, dict[str, Any]] = {}
        self._owners: list[tuple[int, str]] = []  # (entry id, question) per row of _vectors
        self._vectors = np.zeros((0, 1), dtype=np.float32)

    def seed(self) -> None:
        """The shipped entries, stored once per store (later starts, and other workers, change nothing)."""
        if not self._seeded and self._seed is not None:
            self.store.seed_faq(load_seed(self._seed))
            self._seeded = True

    def _current(self) -> None:
        with self._lock:
            self.seed()
            version = self.store.faq_version()
            if version == self._version:
                return
            entries = {e["id"]: e for e in self.store.faq_entries()}
            owners = [(fid, q) for fid, e in entries.items() for lang in LANGS for q in e["questions"].get(lang, []) if q.strip()]
            vectors = exemplar_vectors(self._encoder(), [q for _, q in owners]) if owners else np.zeros((0, 1), np.float32)
            self._entries, self._owners, self._vectors, self._version = entries, owners, vectors, version

    def warm(self) -> None:
        """Store the shipped entries and embed the questions now (at start-up), not under the first message."""
        self._current()

    def nearest(self, text: str) -> tuple[int, str, float] | None:
        self._current()
        if not self._owners:
            return None
        q = query_vector(self._encoder(), text)
        sims = self._vectors @ q
        i = int(np.argmax(sims))
        return self._owners[i][0], self._owners[i][1], float(sims[i])

    def answer(self, text: str, lang: str, user: str = "", channel: str = "") -> FaqAnswer | None:
        """The entry's answer in ``lang`` when a stored question means the same; else None (and, for a
        near miss about the alliance, the question is logged for staff)."""
        found = self.nearest(text)
        if found is None:
            return None
        fid, question, score = found
        if score >= ANSWER:
            answers = self._entries[fid]["answers"]
            in_lang = lang if answers.get(lang) else next(l for l in LANGS if answers.get(l))
            return FaqAnswer(fid, answers[in_lang], in_lang, question, score)
        if score >= NEAR and ABOUT_US.search(text):
            self.store.log_unanswered(lang, text, user, channel)
        return None
