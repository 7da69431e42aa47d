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


def hit_view(hit: Hit, lang: str, analysis=None) -> dict:
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
        "match": None if hit.match is None else round(hit.match, 4),
        "less_close": hit.less_close,
        "snippet": snippet(desc),
        "snippet_lang": desc_lang,
        "website": rec.website,
        "why": {
            "sectors": [tax.label(s, lang) for s in hit.sectors],
            "terms": hit.terms[:8],
            "boosts": hit.signals,
            "complements": [tax.label(s, lang) for s in hit.complements],
            "text": "; ".join(reasons(hit, analysis, lang)),
        },
    }


# -- why this partner -------------------------------------------------------------------
_REASONS = {
    "sector": {"pt": "{what}: o que procura", "zh": "{what}：符合您的需求", "en": "{what}: what you asked for"},
    "complement": {"pt": "complementa a sua atividade ({own}): {what}", "zh": "与您的{own}互补：{what}",
                   "en": "complements your {own}: {what}"},
    "peer": {"pt": "mesmo setor que o seu ({what}), do outro lado", "zh": "与您同属{what}行业，位于对方国家",
             "en": "same trade as yours ({what}), on the other side"},
    "invest": {"pt": "apoia o investimento e a instalação", "zh": "提供投资和落地支持", "en": "supports investment and setting up"},
    "country": {"pt": "{what}, como pediu", "zh": "位于您要求的{what}", "en": "in {what}, as you asked"},
    "place": {"pt": "em {what}", "zh": "位于{what}", "en": "in {what}"},
    "kind": {"pt": "é um(a) {what}", "zh": "属于{what}", "en": "a {what}"},
    "text": {"pt": "descrição próxima do que procura", "zh": "简介与您的需求相近", "en": "description close to your request"},
    "less_close": {"pt": "menos próximo: não é uma correspondência", "zh": "相关度较低，并非匹配结果",
                   "en": "less close: not a match"},
}


def reasons(hit: Hit, analysis, lang: str) -> list[str]:
    """Why this partner, in the reader's language: sought sector, complement of the asker's,
    the country or place asked for. Short phrases, most telling first."""
    from corpus import default_lexicon, default_value_chain

    tax, lex, chain = default_taxonomy(), default_lexicon(), default_value_chain()
    lang = lang if lang in ("pt", "zh", "en") else "en"
    if hit.less_close:  # shown past or instead of the matches: never presented as one
        return [_REASONS["less_close"][lang]]
    out = [_REASONS["sector"][lang].format(what=tax.label(s, lang)) for s in hit.sectors[:2]]
    needs = getattr(analysis, "needs", None)
    own = needs.asker.sectors if needs else []
    for s in hit.complements[:2]:
        if s == "investment-promotion":
            out.append(_REASONS["invest"][lang])
            continue
        link = next((found for o in own if (found := chain.link(o, s)) is not None), None)
        if link is not None:
            own_sector = link.supplier if link.supplier in own else link.buyer
            out.append(_REASONS["complement"][lang].format(own=tax.label(own_sector, lang), what=link.label(lang)))
        elif s in own:
            out.append(_REASONS["peer"][lang].format(what=tax.label(s, lang)))
    rec = hit.record
    if analysis is not None and rec.country in (analysis.countries or []) and len(analysis.countries) == 1:
        where = lex.country_label(rec.country, lang)
        if lang == "pt":  # "na China", "em Portugal"
            where = ("na " if rec.country == "CN" else "em ") + where
        out.append(_REASONS["country"][lang].format(what=where))
    if "place" in hit.signals:
        place = lex.place(rec.city or "") or lex.place(rec.region or "")
        out.append(_REASONS["place"][lang].format(what=place.label(lang) if place else (rec.city or rec.region)))
    if "kind" in hit.signals:
        out.append(_REASONS["kind"][lang].format(what=lex.kind_label(rec.kind, lang)))
    if not out:
        out.append(_REASONS["text"][lang])
    return out
