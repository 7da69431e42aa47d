"""Language detection tuned for short pt/zh/en queries.

langdetect alone misreads short text ("moldes China" -> "it"), so the script decides
first (Han characters mean Chinese), then cheap marker words separate Portuguese from
English, and only ambiguous text goes to a seeded langdetect.
"""

from __future__ import annotations

import re
import threading
import unicodedata

SUPPORTED = ("pt", "zh", "en")

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\uac00-\ud7af]")

_PT_MARKERS = set(
    """de da do das dos para com em na no nas nos os as um uma uns umas que não nao e ou
    por pelo pela sobre entre empresa empresas procuro procuramos queremos quero precisamos
    fornecedores fornecedor parceiro parceiros parceria chinesa chinesas chineses chinês
    portuguesa portuguesas portugueses português moldes calçado cortiça têxtil têxteis
    fabricantes fabricante olá ola obrigado obrigada mais detalhes sim também tambem onde
    qual quais como quem há ha são sao está esta estão estao isso isto aqui só so sem
    indústria industria setor sector região regiao apenas somente mostre mostra
    ajuda adeus tchau olá oi bom dia boa tarde noite próximo proximo seguinte seguintes detalhes
    interesse interessado interessada tenho obrigados valeu até ate logo breve ver sobre""".split()
)
_EN_MARKERS = set(
    """the of for and with in on to we are is looking want need find search show me our
    a an any some companies company partners partner suppliers supplier manufacturers
    chinese portuguese moulds molds footwear cork industry which who what
    where how hello hi thanks thank you more details please only not without cluster
    clusters from about research technology help hello hi hey thanks bye goodbye next
    interested see tell info information lot good morning evening""".split()
)
_ES_MARKERS = set(
    """el los las y en del con nuestra nuestro nuestros buscamos busco proveedores proveedor
    calzado empresa fabricantes hola gracias queremos necesitamos socios españa chinos chinas""".split()
)
# French function words that are not Portuguese ones: "Fournisseurs de soie en Chine pour une
# marque" had three Portuguese markers ("de", "de", "e"-like) and none of its own
_FR_MARKERS = set(
    """nous vous pour une les des du au aux avec dans sur chez je cherche cherchons recherchons
    notre nos votre vos leur leurs est sont être entreprise entreprises fournisseur fournisseurs
    société sociétés fabricant fabricants merci bonjour chinois chinoise chinoises portugais portugaise""".split()
)
_PT_CHARS = set("ãõçâêôáéíóúàÃÕÇÂÊÔÁÉÍÓÚÀ")

_PT_ENDINGS = ("ção", "ções", "cao", "coes", "dade", "dades", "ões", "mente", "agem", "eiros", "eiras", "ores", "ário", "ários")
_EN_ENDINGS = ("ing", "tion", "tions", "ness", "ship", "ships", "ers", "ment", "ments", "ies", "ics", "ware")

_langdetect_ready = False
_langdetect_lock = threading.Lock()


def warm_langdetect() -> None:
    """Load langdetect's profiles now (about 50 MB, a second or so) rather than on the first
    ambiguous query: langdetect loads them lazily and not thread-safely, so concurrent first
    calls could see a half-loaded profile list. The service calls this at start-up."""
    global _langdetect_ready
    with _langdetect_lock:
        if _langdetect_ready:
            return
        try:
            from langdetect import DetectorFactory
            from langdetect.detector_factory import init_factory
        except ImportError:  # pragma: no cover - langdetect is a hard dependency
            return
        DetectorFactory.seed = 0
        init_factory()
        _langdetect_ready = True


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def han_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if _HAN.match(c)) / len(letters)


def _langdetect(text: str) -> str | None:
    try:
        from langdetect import detect_langs
        from langdetect.lang_detect_exception import LangDetectException
    except ImportError:  # pragma: no cover - langdetect is a hard dependency
        return None
    if not _langdetect_ready:
        warm_langdetect()
    try:
        langs = detect_langs(text)
    except LangDetectException:
        return None
    if not langs:
        return None
    code = langs[0].lang
    return "zh" if code.startswith("zh") else code


def detect_lang(text: str, default: str | None = None) -> str | None:
    """Best guess of the ISO 639-1 language of ``text``; ``default`` when unsure.

    Returns codes outside pt/zh/en too (e.g. "es"), so callers can say they don't speak it.
    """
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        return default
    if han_ratio(text) >= 0.15 or (has_han(text) and not _LATIN_WORD.search(_HAN.sub("", text))):
        return "zh"
    if _KANA_HANGUL.search(text):
        return _langdetect(text) or default
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    if not words:
        return default
    pt_chars = sum(1 for c in text if c in _PT_CHARS)
    pt = sum(1 for w in words if w in _PT_MARKERS) + 2 * pt_chars
    en = sum(1 for w in words if w in _EN_MARKERS)
    es = sum(1 for w in words if w in _ES_MARKERS and w not in _PT_MARKERS)
    fr = sum(1 for w in words if w in _FR_MARKERS and w not in _PT_MARKERS)
    if (es >= 2 or fr >= 2) and max(es, fr) > pt_chars:
        return _langdetect(text) or default  # Spanish and French look like Portuguese to word lists
    if len(words) <= 2 and pt == en:
        return default
    if pt == en:  # no stopwords to go by: sector words and word endings
        from ._taxonomy import default_taxonomy

        votes = default_taxonomy().language_votes(text)
        pt += votes["pt"] + sum(1 for w in words if w.endswith(_PT_ENDINGS))
        en += votes["en"] + sum(1 for w in words if w.endswith(_EN_ENDINGS))
    if pt >= en + 1 and pt >= 1:
        return "pt"
    if en >= pt + 1 and en >= 1:
        return "en"
    guess = _langdetect(text)
    if guess is None:
        return default
    if len(words) <= 3 and guess not in SUPPORTED:
        return default  # langdetect is unreliable on a few words
    return guess
