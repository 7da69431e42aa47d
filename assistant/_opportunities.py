"""The opportunity map and unmet demand, for staff: where to act next.

*Opportunity map*: for every member, the partners the engine finds for it on the other side
(``SearchEngine.matches``: what it seeks or does, its sectors and their value chain, judged by the
search's floor), as pairs, strongest first, without the pairs somebody already started: a lead
that names both organisations (an introduction staff proposed, or a request), or a lead about one
of them whose asker's organisation is the other. A pair found from both sides counts once, with
both directions' reasons and the better score.

*Unmet demand*: the questions that found nothing (query-log rows with zero results), grouped by
the sector sought, the side sought (country) and the language, by day, with example questions:
what the directory lacks, so staff know whom to recruit.

Pure functions over an engine and a state store; the routes are in ``_opportunities_api.py``.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rapidfuzz import fuzz

from corpus import default_taxonomy
from index import SearchEngine, analyse

from ._present import reasons

SAME_ASKER = 90  # rapidfuzz token_set_ratio at which a lead's asker organisation is taken for a member


@dataclass
class Opportunity:
    a: str  # organisation ids, a < b
    b: str
    score: float
    mutual: bool  # each was found for the other
    sectors: tuple[str, str]  # the main sector of a and of b (the map's sector pair)
    why: dict[str, list[str]] = field(default_factory=dict)  # per direction "a->b": reasons in the staff's language

    def view(self, engine: SearchEngine, lang: str) -> dict[str, Any]:
        tax = default_taxonomy()
        ra, rb = engine.records[self.a], engine.records[self.b]
        return {"a": {"id": ra.id, "name": ra.name_in(lang), "country": ra.country, "kind": ra.kind},
                "b": {"id": rb.id, "name": rb.name_in(lang), "country": rb.country, "kind": rb.kind},
                "score": round(self.score, 4), "mutual": self.mutual,
                "sectors": [tax.label(s, lang) if s in tax else s for s in self.sectors], "sector_slugs": list(self.sectors),
                "why": [{"from": k.split(">")[0], "to": k.split(">")[1], "reasons": v} for k, v in self.why.items()]}


def _main_sector(engine: SearchEngine, org_id: str) -> str:
    rec = engine.records[org_id]
    return rec.sectors[0] if rec.sectors else (sorted(engine.sectors_of(rec)) or ["other"])[0]


def started_pairs(engine: SearchEngine, leads: list[dict[str, Any]]) -> set[frozenset[str]]:
    """The pairs of members a lead already concerns (by organisation id, or by the asker's organisation name)."""
    started: set[frozenset[str]] = set()
    names: dict[str, list[str]] = {}
    for lead in leads:
        ids = [o["id"] for o in lead.get("organisations") or [] if o.get("id") in engine.records]
        for i, x in enumerate(ids):
            for y in ids[i + 1:]:
                started.add(frozenset((x, y)))
        asker = (lead.get("asker_org") or "").strip()
        if asker and ids:
            if not names:
                names = {rid: [rec.name] + [t.name for t in rec.i18n.values() if t.name] for rid, rec in _records(engine)}
            for rid, known in names.items():
                if any(fuzz.token_set_ratio(asker.casefold(), n.casefold()) >= SAME_ASKER for n in known):
                    started.update(frozenset((rid, x)) for x in ids if x != rid)
    return started


def _records(engine: SearchEngine):
    for rid in engine.vids:
        yield rid, engine.records[rid]


def candidate_pairs(engine: SearchEngine, lang: str = "en", per_member: int = 5) -> list[Opportunity]:
    """Every cross-border pair the engine finds for some member, best first (before any lead is
    looked at: this is the slow part, one search per member, cached by the routes per index generation)."""
    pairs: dict[frozenset[str], Opportunity] = {}
    for rid, rec in _records(engine):
        result = engine.matches(rid, limit=per_member, lang=lang)
        for hit in result.hits:
            other = hit.record
            if other.country == rec.country or hit.less_close:
                continue  # the map is about the other side, and about matches (never the "less close" fill)
            key = frozenset((rid, other.id))
            a, b = sorted(key)
            found = pairs.get(key)
            if found is None:
                found = pairs[key] = Opportunity(a, b, hit.score, False, (_main_sector(engine, a), _main_sector(engine, b)))
            else:
                found.mutual = True  # each was found for the other
                found.score = max(found.score, hit.score)
            found.why[f"{rid}>{other.id}"] = reasons(hit, result.analysis, lang) or []
    # a pair found from both sides is the stronger signal: a small lift in the ranking
    return sorted(pairs.values(), key=lambda o: (-(o.score + (0.05 if o.mutual else 0.0)), o.a, o.b))


def opportunity_map(engine: SearchEngine, leads: list[dict[str, Any]], lang: str = "en", per_member: int = 5,
                    limit: int = 100, pairs: list[Opportunity] | None = None) -> list[Opportunity]:
    """The strongest cross-border pairs nobody has started, best first."""
    started = started_pairs(engine, leads)
    pairs = candidate_pairs(engine, lang, per_member) if pairs is None else pairs
    return [o for o in pairs if frozenset((o.a, o.b)) not in started][:limit]


def by_sector_pair(opportunities: list[Opportunity], lang: str = "en") -> list[dict[str, Any]]:
    """The map's chart: open pairs per (sector, sector), most first."""
    tax = default_taxonomy()
    counts: Counter[tuple[str, str]] = Counter()
    for o in opportunities:
        counts[tuple(sorted(o.sectors))] += 1
    return [{"sectors": [tax.label(s, lang) if s in tax else s for s in pair], "sector_slugs": list(pair), "pairs": n}
            for pair, n in counts.most_common()]


def unmet_demand(queries: list[dict[str, Any]], lang: str = "en", examples: int = 3) -> dict[str, Any]:
    """Zero-result questions grouped by sought sector, side and language, with a daily series."""
    tax = default_taxonomy()
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    series: dict[str, Counter[str]] = defaultdict(Counter)
    for q in queries:
        a = analyse(q["query"], lang=q.get("lang") or None)
        sector = a.sector_slugs[0] if a.sector_slugs else ""
        side = ",".join(a.countries) if a.countries else ""
        key = (sector, side, q.get("lang") or a.lang)
        day = datetime.fromtimestamp(q["created"], timezone.utc).strftime("%Y-%m-%d")
        g = groups.setdefault(key, {"sector": sector, "sector_label": tax.label(sector, lang) if sector in tax else "",
                                    "side": side, "lang": key[2], "count": 0, "examples": [], "last": 0.0})
        g["count"] += 1
        g["last"] = max(g["last"], q["created"])
        if len(g["examples"]) < examples and q["query"] not in g["examples"]:
            g["examples"].append(q["query"])
        series[day][g["sector_label"] or sector or "?"] += 1
    days = sorted(series)
    return {"groups": sorted(groups.values(), key=lambda g: (-g["count"], -g["last"])),
            "days": days, "series": {d: dict(series[d]) for d in days}, "total": len(queries),
            "at": time.time()}


def propose(store, engine: SearchEngine, a: str, b: str, lang: str = "en", note: str = "") -> int:
    """A lead addressed to both organisations, for staff to carry as an introduction; its id."""
    ra, rb = engine.records[a], engine.records[b]
    message = note.strip() or f"Proposed introduction: {ra.name} ↔ {rb.name}"
    return store.add_lead(f"staff-map-{a}-{b}"[:128], "staff", a, ra.name, lang, message,
                          orgs=[[a, ra.name], [b, rb.name]], need=message)
