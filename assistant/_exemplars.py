"""Labelled example messages read by meaning: the nearest exemplars per label over the service's encoder.

Why one module: the dialogue's intents (``data/intents.jsonl``), the acts of the conversation with
the team (``data/team_intents.json``) and the alert and "my requests" phrases
(``data/alert_phrases.json``, ``data/my_requests_phrases.json``) are one mechanism: embed the examples
once, score a message by the mean cosine of its ``k`` nearest examples per label, and act on a label
only when it is close enough (a threshold) and clear of its rivals (an ambiguity gap). Here the
example vectors are computed once per encoder and example set (kept for the process and cached on
disk, so workers and test servers start without re-encoding them), and a message is encoded once
per turn however many readers ask about it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from index import fixed_vectors

_RECENT: OrderedDict[tuple, np.ndarray] = OrderedDict()  # the last few one-message encodes
_RECENT_KEEP = 64
_RECENT_LOCK = threading.Lock()


def exemplar_vectors(encoder, texts: Sequence[str]) -> np.ndarray:
    """The examples' query vectors, one row per text, computed once per model and texts (kept for the
    process and on disk by ``index.fixed_vectors``: ~270 texts take ~15 s on one core)."""
    return fixed_vectors(encoder, texts, "query")


def _model(encoder) -> str | None:
    model_id = getattr(encoder, "model_id", None)
    return model_id if isinstance(model_id, str) else None


def query_vector(encoder, text: str) -> np.ndarray:
    """One message's query vector, encoded once however many readers of a turn ask (intents, team
    acts, FAQ, alerts, my requests)."""
    key = (id(encoder), _model(encoder), text)
    with _RECENT_LOCK:
        found = _RECENT.get(key)
        if found is not None:
            _RECENT.move_to_end(key)
            return found
    found = np.asarray(encoder.encode([text], "query")[0], dtype=np.float32)
    with _RECENT_LOCK:
        _RECENT[key] = found
        while len(_RECENT) > _RECENT_KEEP:
            _RECENT.popitem(last=False)
    return found


class Exemplars:
    """Example messages with labels over one encoder; a message's score per label is the mean cosine
    of its ``k`` nearest examples of that label."""

    def __init__(self, encoder, labelled: Iterable[tuple[str, str]], k: int):
        pairs = list(labelled)
        if not pairs:
            raise ValueError("no examples")
        self.encoder = encoder
        self.k = int(k)
        self.labels = [label for label, _ in pairs]
        self.vectors = exemplar_vectors(encoder, [text for _, text in pairs])
        self.names = tuple(dict.fromkeys(self.labels))  # in the order the examples first name them
        labels = np.asarray(self.labels)
        self._rows = {name: np.flatnonzero(labels == name) for name in self.names}

    def embed(self, text: str) -> np.ndarray:
        return query_vector(self.encoder, text)

    def scores(self, text: str, vector: np.ndarray | None = None) -> dict[str, float]:
        """Per label: the mean of its ``k`` nearest examples' cosine similarities to the message."""
        q = self.embed(text) if vector is None else vector
        sims = self.vectors @ q
        return {name: float(np.sort(sims[rows])[-self.k:].mean()) for name, rows in self._rows.items()}


def nearest(scores: dict[str, float], threshold: float, gap: float,
            rivals: Iterable[str] | None = None) -> tuple[str | None, float]:
    """The best label and its score, or None with the score when it is below ``threshold`` or less
    than ``gap`` ahead of its rivals (every other label, or only those named)."""
    best = max(scores, key=scores.get)
    keep = None if rivals is None else set(rivals)
    runner_up = max((v for k, v in scores.items() if k != best and (keep is None or k in keep)), default=-np.inf)
    if scores[best] < threshold or scores[best] - runner_up < gap:
        return None, scores[best]
    return best, scores[best]
