"""Normalisation: what a user typed, brought to the words the service knows, before analysis.

Real users type Traditional characters (軟木), written Cantonese (有冇…嘅), Portuguese without
accents (calcado), names and trades in pinyin (ningbo mujv), and typos (chna). Each is brought
to the form the glossary, the places and the records use, by a maintained tool where one exists:
OpenCC for the script, pypinyin for pinyin, rapidfuzz for spelling against the service's own
vocabulary, wordfreq for what counts as a common word. Only written-Cantonese function words
come from a small table (index/data/cantonese.json): no maintained package converts them.

Pure: ``normalise(text, vocabulary)`` returns the text to analyse and the list of what changed;
the vocabulary is built once per generation of the index (``vocabulary_of``), not per query.
Nothing here changes what is shown of a record: only the query is rewritten.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from corpus import default_taxonomy, detect_lang, fold

DATA = Path(__file__).parent / "data"
KINDS = ("traditional", "cantonese", "accents", "pinyin", "typo")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_COMMON_ZIPF = 2.0  # a word this frequent (wordfreq's Zipf scale: 2 = once in 10 million words) is a real word
_ACCENT_MARGIN = 0.3  # the accented form must be this much more frequent (Zipf) than the plain one
_LANGS = ("pt", "en", "es", "fr")


@dataclass(frozen=True)
class Change:
    """One rewrite: its kind (see KINDS), the words as typed and what they became."""

    kind: str
    source: str
    target: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "from": self.source, "to": self.target}


@dataclass
class Normalised:
    """The text to analyse, what was changed to get it, and what the text looks like."""

    original: str
    text: str
    changes: list[Change] = field(default_factory=list)
    script: str = "none"  # "hans", "hant" (Traditional characters were converted), "latin", "mixed" or "none"
    pinyin: bool = False  # pinyin words were read as Chinese terms

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def hints(self) -> dict[str, Any]:
        return {"script": self.script, "pinyin": self.pinyin}

    def to_list(self) -> list[dict[str, str]]:
        return [c.to_dict() for c in self.changes]


# -- tools, loaded once ----------------------------------------------------------------------

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _opencc():
    import opencc

    return opencc.OpenCC("hk2s")  # Hong Kong variants, then Traditional -> Simplified (phrases first)


@lru_cache(maxsize=1)
def _cantonese() -> tuple[re.Pattern, re.Pattern, dict[str, tuple[str, str]]]:
    raw = json.loads((DATA / "cantonese.json").read_text(encoding="utf-8"))
    markers = re.compile("|".join(map(re.escape, sorted(raw["markers"], key=len, reverse=True))))
    table = {w["from"]: (w["to"], w.get("not_after", "")) for w in raw["words"]}
    words = re.compile("|".join(map(re.escape, sorted(table, key=len, reverse=True))))
    return markers, words, table


@lru_cache(maxsize=4)
def _zipf_table(lang: str) -> dict[str, float]:
    """wordfreq's about 50k most frequent words of a language with their Zipf frequency, as a plain
    dict: a lookup per token, not a call into wordfreq. Read from its bucketed list (bucket i holds
    the words of frequency 10^(-i/100), Zipf 9 - i/100): a third of a second, where its full
    frequency dictionary takes seconds and ten times the memory."""
    import wordfreq

    out: dict[str, float] = {}
    for i, bucket in enumerate(wordfreq.get_frequency_list(lang)):
        for word in bucket:
            out.setdefault(word, round(9 - i / 100, 2))
        if len(out) >= 50_000:
            break
    return out


def zipf(word: str, lang: str) -> float:
    return _zipf_table(lang).get(word, 0.0)


def is_common(word: str) -> bool:
    """Whether ``word`` is a common word of pt, en, es or fr, as written or without its accents
    ("elétrico", "eletrico" and "aéronautiques" are words; wordfreq's lists keep the accents)."""
    lower = word.lower()
    if any(is_common_in(lower, lang) for lang in _LANGS):
        return True
    return not lower.isascii() and fold(lower) in _common_folded()


def is_common_in(word: str, lang: str) -> bool:
    """Whether ``word`` (lower case) is a common word of ``lang`` as written (False for a language
    other than pt, en, es and fr, whose lists are loaded)."""
    return lang in _LANGS and zipf(word, lang) >= _COMMON_ZIPF


@lru_cache(maxsize=1)
def _common_folded() -> frozenset[str]:
    """The common words of the four languages, accents folded: an accented word typed with other
    accents, or with its accents, is still a word."""
    return frozenset(fold(w) for lang in _LANGS for w, z in _zipf_table(lang).items() if z >= _COMMON_ZIPF)


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    """Every tone-less pinyin syllable (ü written v), from pypinyin's own dictionary."""
    from pypinyin.pinyin_dict import pinyin_dict

    out: set[str] = set()
    for readings in pinyin_dict.values():
        for r in readings.split(","):
            out.add(fold(r.replace("ü", "v").replace("ǖ", "v").replace("ǘ", "v").replace("ǚ", "v").replace("ǜ", "v")))
    # not the bare nasals (呣 m, 嗯 n/ng, 哼 hm/hng): every word would split into syllables through them
    return frozenset(s for s in out if s.isascii() and s.isalpha() and s not in ("m", "n", "ng", "hm", "hng"))


def pinyin_key(typed: str) -> str:
    """What pinyin typed by a person is compared by: lower case, no tones, no spaces or
    apostrophes, ü as v and the IME's "jv/qv/xv/yv" as the "ju/qu/xu/yu" of written pinyin."""
    s = fold(typed.replace("ü", "v").replace("Ü", "v"))
    s = re.sub(r"[\s'’-]+", "", s)
    return re.sub(r"(?<=[jqxy])v", "u", s)


def is_pinyin(word: str, min_syllables: int = 2) -> bool:
    """Whether ``word`` splits into at least ``min_syllables`` pinyin syllables ("mujv", "dianchi")."""
    key = pinyin_key(word)
    if not key.isascii() or not key.isalpha():
        return False
    syl = _syllables()
    best = [-1] * (len(key) + 1)  # fewest syllables... any split will do: the count of one split
    best[0] = 0
    for end in range(1, len(key) + 1):
        for start in range(max(0, end - 6), end):
            if best[start] >= 0 and key[start:end] in syl:
                best[end] = max(best[end], best[start] + 1)
    return best[len(key)] >= min_syllables


def _term_syllables(term: str) -> list[str]:
    """pypinyin's phrase reading of ``term``, a syllable a character (characters it cannot read
    are passed through, several at once)."""
    from pypinyin import lazy_pinyin

    return lazy_pinyin(term)


def _term_pinyin(term: str) -> str:
    return pinyin_key("".join(_term_syllables(term)))


def _quick_pinyin(term: str) -> str:
    """Pinyin by each character's first reading: 100x faster than ``lazy_pinyin``, for record
    names of a large corpus (a polyphone may read wrongly; the glossary uses ``lazy_pinyin``)."""
    from pypinyin.pinyin_dict import pinyin_dict

    out = []
    for c in term:
        r = pinyin_dict.get(ord(c))
        if r is None:
            return ""
        out.append(r.split(",")[0])
    return pinyin_key("".join(out))


PINYIN_SENTENCE_SHARE = 0.75  # of the Latin words left after the vocabulary's: all but a stray one read as pinyin


PINYIN_WORD_MIN_FREQ = 20  # jieba frequency below which a word is not offered (rare words mislead)
PINYIN_WHOLE_MIN_FREQ = 5  # ... unless it reads as a whole typed word ("fanqiejiang" is 番茄酱, not 番茄 将)
PINYIN_ALTERNATIVE_SHARE = 0.05  # another common noun this frequent (against the first) is kept beside it


@dataclass(frozen=True)
class _PinyinTable:
    """Tone-less pinyin -> Chinese, from jieba's dictionary: ``words`` the most frequent word or
    character of at least PINYIN_WORD_MIN_FREQ (what sentences and splits are read with),
    ``whole`` the most frequent of at least PINYIN_WHOLE_MIN_FREQ (a typed word read whole),
    ``alternatives`` the other common nouns that read the same and are not rare beside the first
    (jirou: 肌肉 and 鸡肉, jiangliao: 浆料 and 酱料): without tones pinyin cannot tell them apart."""

    words: dict[str, str]
    whole: dict[str, str]
    alternatives: dict[str, list[str]]


@lru_cache(maxsize=1)
def _pinyin_table() -> _PinyinTable:
    """Built once from jieba's word frequencies and parts of speech, each word by pypinyin's phrase
    reading where it has one for the word or its first or last characters (polyphones: 银行 is
    yinhang, 番茄酱 is fanqiejiang), else each character's first reading."""
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict

    from ._keywords import _cut_han

    _cut_han("预热")  # jieba loaded: its frequency table is read below
    import jieba

    toneless: dict[str, str] = {}

    def plain(reading: str) -> str:
        found = toneless.get(reading)
        if found is None:
            decomposed = unicodedata.normalize("NFD", reading).replace("u\u0308", "v")
            found = toneless[reading] = "".join(c for c in decomposed if not unicodedata.combining(c))
        return found

    first = {chr(code): plain(r.split(",")[0]) for code, r in pinyin_dict.items()}

    def chars(part: str) -> str | None:
        parts = [first.get(c) for c in part]
        return None if None in parts else "".join(parts)  # type: ignore[arg-type]

    def reading(word: str) -> str | None:
        phrase = phrases_dict.get(word)
        if phrase is not None:
            return "".join(plain(r[0]) for r in phrase)
        if len(word) >= 3:
            for head, tail in ((word[:-1], word[-1:]), (word[:1], word[1:])):
                known = phrases_dict.get(head if len(head) > 1 else tail)
                if known is not None:
                    rest = chars(tail if len(head) > 1 else head)
                    if rest is None:
                        return None
                    said = "".join(plain(r[0]) for r in known)
                    return said + rest if len(head) > 1 else rest + said
        return chars(word)

    with jieba.get_dict_file() as f:  # "word frequency tag" per line; "n" is a common noun
        nouns = set(re.findall(r"^(\S{2,4}) \d+ n$", f.read().decode("utf-8"), re.M))
    found: dict[str, list[tuple[int, str]]] = {}
    for word, freq in jieba.dt.FREQ.items():
        if freq < PINYIN_WHOLE_MIN_FREQ or len(word) > 4:
            continue
        key = reading(word)
        if key:
            found.setdefault(key, []).append((freq, word))
    words: dict[str, str] = {}
    whole: dict[str, str] = {}
    alternatives: dict[str, list[str]] = {}
    for key, ranked in found.items():
        ranked.sort(key=lambda fw: (-fw[0], fw[1]))
        top_freq, top = ranked[0]
        whole[key] = top
        if top_freq >= PINYIN_WORD_MIN_FREQ:
            words[key] = top
        if top in nouns:
            others = [w for f, w in ranked[1:3] if w in nouns and f >= PINYIN_ALTERNATIVE_SHARE * top_freq]
            if others:
                alternatives[key] = others
    return _PinyinTable(words, whole, alternatives)


def _pinyin_words() -> dict[str, str]:
    """Tone-less pinyin -> the most frequent Chinese word or character that reads so (see
    ``_pinyin_table``). What a sentence typed in pinyin is read with once its trade words were
    found ("women shi ..." -> 我们是 ...)."""
    return _pinyin_table().words


def _pinyin_word(key: str) -> str | None:
    """The Chinese of one typed pinyin word: a word reading as all of it, else its syllables read
    left to right, each the longest run that is a word (None when a part is no syllable)."""
    table = _pinyin_table()
    words = table.words
    if key in words:
        return words[key]
    if key in table.whole and is_pinyin(key):
        return table.whole[key]
    out, at = [], 0
    while at < len(key):
        for end in range(len(key), at, -1):
            hit = words.get(key[at:end])
            if hit and is_pinyin(key[at:end], 1):
                out.append(hit)
                at = end
                break
        else:
            return None
    return "".join(out)


def _with_alternatives(key: str, han: str) -> str:
    """``han`` and the other common nouns the same tone-less pinyin reads as ("肌肉/鸡肉"): the
    search then looks for both, and the encoder and keywords find the one the records hold."""
    others = _pinyin_table().alternatives.get(key, [])
    return "/".join([han, *others]) if others and _pinyin_table().whole.get(key) == han else han


def _pinyin_sentence_pass(text: str, vocab: "Vocabulary", changes: list["Change"]) -> str:
    """A message typed in pinyin whose trade words were read (``_latin_pass``): its other words
    ("women shi", "xiang zhao", "kehu") read too, so the needs analysis sees who is asked for.
    Only when nearly every Latin word left is pinyin: an English or Portuguese sentence with one
    pinyin term keeps its words."""
    latin = [m for m in _WORD.finditer(text) if not _HAN.search(m.group())]
    tokens = [(m.start(), m.end(), m.group()) for m in latin if not vocab.knows(fold(m.group()))]
    if not tokens or (len(tokens) < 2 and len(latin) > 1):
        return text  # one word left among others the vocabulary knows: a name or a word of the sentence's language
    readable = [(a, b, w) for a, b, w in tokens if is_pinyin(w, 1) and w.isascii()]
    if len(readable) < PINYIN_SENTENCE_SHARE * len(tokens):
        return text
    words = _pinyin_words()
    out, pos, i = [], 0, 0
    while i < len(readable):
        # words typed apart that make one word together ("jiang liao" is 酱料, not 将 辽)
        for size in (3, 2, 1):
            span = readable[i:i + size]
            if len(span) < size or any(text[a[1]:b[0]].strip() for a, b in zip(span, span[1:])):
                continue
            key = pinyin_key("".join(w for _, _, w in span))
            han = words.get(key) if size > 1 else _pinyin_word(key)
            if han:
                han = _with_alternatives(key, han)
                break
        else:
            i += 1
            continue
        start, end = span[0][0], span[-1][1]
        out += [text[pos:start], han]
        pos = end
        changes.append(Change("pinyin", text[start:end], han))
        i += size
    out.append(text[pos:])
    return "".join(out)


# -- the vocabulary ----------------------------------------------------------------------------


class Vocabulary:
    """The words the service knows: glossary terms in every language, places, countries, kinds and
    the loaded records' names and places. What typos are corrected towards, what pinyin is read
    as, and which accented spelling a plain one stands for."""

    PINYIN_NAMES_EXACT = 5_000  # more Chinese record names than this: first-reading pinyin (see _quick_pinyin)

    def __init__(self, terms: Iterable[str], han_terms: Iterable[str], names: Iterable[str] = (),
                 base: "Vocabulary | None" = None):
        # folded word -> the spellings the vocabulary has; pinyin key -> Chinese term (the first
        # wins: the glossary's before the records'). ``base``: the glossary's, worked out once.
        self.forms: dict[str, set[str]] = {k: set(v) for k, v in base.forms.items()} if base else {}
        self.pinyin: dict[str, str] = dict(base.pinyin) if base else {}
        for term in terms:
            for word in _WORD.findall(term):
                if _HAN.search(word) or len(word) < 3:
                    continue
                self.forms.setdefault(fold(word), set()).add(word.lower())
        # Chinese terms by the first reading of each character, for characters typed by sound
        # ("葡萄呀" for 葡萄牙, "机沟" for 机构)
        self.homophones: dict[str, str] = dict(base.homophones) if base else {}
        for term in han_terms:
            if _HAN_RUN.fullmatch(term) and len(term) >= 2:
                key = _term_pinyin(term)
                if key:
                    self.pinyin.setdefault(key, term)
                if len(term) <= 6 and (quick := _quick_pinyin(term)):
                    self.homophones.setdefault(quick, term)
        names = list(names)
        # each run of Chinese characters in a name: "中国轻纺城（绍兴柯桥）" is read from "zhongguo qingfangcheng"
        # and from "shaoxing keqiao"
        han_names = list(dict.fromkeys(run for n in names for run in _HAN_RUN.findall(n) if len(run) >= 2))
        exact = len(han_names) <= self.PINYIN_NAMES_EXACT
        # each name's reading, a syllable a character when pypinyin reads every one (exact: its phrase
        # reading, ``_term_pinyin``); a head of the name reads as its first syllables
        readings = [_term_syllables(name) if exact else None for name in han_names]
        for name, syllables in zip(han_names, readings):
            key = pinyin_key("".join(syllables)) if syllables is not None else _quick_pinyin(name)
            if key:
                self.pinyin.setdefault(key, name)
        if exact:  # and by its first words: "keda xunfei" is 科大讯飞股份有限公司 without its legal form
            for name, syllables in zip(han_names, readings):
                for head in name_heads(name):
                    whole = len(syllables) == len(name)  # a syllable a character: the head's are the first ones
                    key = pinyin_key("".join(syllables[:len(head)])) if whole else _term_pinyin(head)
                    if key and len(key) >= 4:
                        self.pinyin.setdefault(key, head)
        for name in names:
            for word in _WORD.findall(name):
                if not _HAN.search(word) and len(word) >= 4:
                    self.forms.setdefault(fold(word), set()).add(word.lower())
        # candidates for spelling correction, by first letter: a typo rarely hits the first letter,
        # and each token is compared with a few thousand words, not all of them
        self.by_initial: dict[str, list[str]] = {}
        for key in self.forms:
            if len(key) >= 3 and key.isalpha():
                self.by_initial.setdefault(key[0], []).append(key)

    def knows(self, folded: str) -> bool:
        return folded in self.forms

    def display(self, folded: str) -> str:
        """The spelling to show for a folded vocabulary word: the most frequent in Portuguese, an
        accented one before a plain one."""
        forms = self.forms.get(folded) or {folded}
        return max(sorted(forms), key=lambda f: (zipf(f, "pt"), not f.isascii()))


def _glossary_terms() -> tuple[list[str], list[str]]:
    tax = default_taxonomy()
    latin: list[str] = []
    han: list[str] = []
    for sector in tax.sectors.values():
        for term in sector.terms():
            (han if _HAN.search(term) else latin).append(term)
    raw = json.loads((Path(__file__).parents[1] / "corpus" / "data" / "lexicon.json").read_text(encoding="utf-8"))
    for group in ("countries", "kinds"):
        for item in raw[group].values():
            for term in [*item["terms"], *item["labels"].values()]:
                (han if _HAN.search(term) else latin).append(term)
    for item in raw["regions"] + raw.get("cities", []):
        for term in [item["name"], *item["terms"], *item["labels"].values()]:
            (han if _HAN.search(term) else latin).append(term)
    return latin, han


@lru_cache(maxsize=1)
def base_vocabulary() -> Vocabulary:
    """The glossary, places, countries and kinds alone (no records)."""
    latin, han = _glossary_terms()
    return Vocabulary(latin, han)


_by_columns: "weakref.WeakKeyDictionary[Any, Vocabulary]" = weakref.WeakKeyDictionary()
# Record names (all languages) read into the vocabulary: about a second for 20,000 on a quiet core,
# made again for each generation (each write). Past that, a write would wait tens of seconds for it
# (100k records: ~40 s), so a larger directory's vocabulary is the glossary and its places only.
NAMES_MAX = 20_000


def vocabulary_of(columns: Any) -> Vocabulary:
    """The vocabulary of one set of index columns (``index._records.RecordColumns``): built the
    first time, then kept as long as those columns live (a new generation or a write makes new
    columns, hence a new vocabulary)."""
    if columns is None:
        return base_vocabulary()
    vocab = _by_columns.get(columns)
    if vocab is None:
        with _lock:
            vocab = _by_columns.get(columns)
            if vocab is None:
                places = [v for f in ("region", "city") for v in columns.tables.get(f, [])]
                names = list(columns.names.flat) if hasattr(columns.names, "flat") else [n for row in columns.names for n in row]
                if len(names) > NAMES_MAX:
                    names = []  # a large directory: its names are found by keywords and embeddings alone
                # the records' own sector labels, as their sources write them ("porcelanato", "工程机械")
                labels = [v for v in columns.tables.get("sector", []) if v not in default_taxonomy().sectors]
                names += labels[:NAMES_MAX]
                vocab = Vocabulary(places, [p for p in places if _HAN.search(p)], names, base=base_vocabulary())
                _by_columns[columns] = vocab
    return vocab


def warm(columns: Any = None) -> None:
    """Load every tool and table now (OpenCC, pypinyin, wordfreq's lists, jieba, the vocabulary
    of ``columns``): a few seconds once, which no query should pay."""
    from rapidfuzz import process  # noqa: F401

    from ._keywords import _cut_han

    _opencc(), _cantonese(), _syllables(), _pt_accents(), _common_folded(), _pinyin_table()
    for lang in _LANGS:
        _zipf_table(lang)
    _cut_han("预热")
    vocabulary_of(columns)


# -- the stage ---------------------------------------------------------------------------------


def _cantonese_pass(text: str, changes: list[Change]) -> str:
    markers, words, table = _cantonese()
    if not markers.search(text):
        return text  # Mandarin: 係 in 關係 and 點 in 一點 are not Cantonese

    def repl(m: re.Match) -> str:
        target, not_after = table[m.group()]
        if not_after and m.start() > 0 and text[m.start() - 1] in not_after:
            return m.group()
        changes.append(Change("cantonese", m.group(), target))
        return target

    return words.sub(repl, text)


def _traditional_pass(text: str, changes: list[Change]) -> tuple[str, bool]:
    if not _HAN.search(text):
        return text, False
    converted = _opencc().convert(text)
    if converted == text:
        return text, False
    if len(converted) == len(text):  # the common case: one character for one; report by word
        from ._keywords import _cut_han

        for run in _HAN_RUN.finditer(converted):
            pos = run.start()
            for word in _cut_han(run.group()):
                before = text[pos: pos + len(word)]
                if before != word:
                    changes.append(Change("traditional", before, word))
                pos += len(word)
    else:
        import difflib

        sm = difflib.SequenceMatcher(a=text, b=converted, autojunk=False)
        for op, a0, a1, b0, b1 in sm.get_opcodes():
            if op != "equal":
                changes.append(Change("traditional", text[a0:a1], converted[b0:b1]))
    return converted, True


@lru_cache(maxsize=8192)
def _reading(c: str) -> str | None:
    from pypinyin.pinyin_dict import pinyin_dict

    r = pinyin_dict.get(ord(c))
    return pinyin_key(r.split(",")[0]) if r else None


def _jieba_words() -> dict[str, int]:
    from ._keywords import _cut_han

    _cut_han("预热")  # loads jieba and its dictionary once
    import jieba

    return jieba.dt.FREQ


_COMMON_CHAR = 20_000  # jieba's count above which a character is a word in its own right (是, 的, 时, 市, 之)


def _homophone_pass(text: str, vocab: Vocabulary, changes: list[Change]) -> str:
    """A vocabulary term typed with one character of the same sound ("葡萄呀的鞋子", "检测机沟"), where
    what was typed is not a word of its own (jieba's dictionary), becomes the term."""
    if not vocab.homophones or not _HAN.search(text):
        return text
    from ._keywords import _cut_han

    words = _jieba_words()
    out: list[str] = []
    pos = 0
    for run in _HAN_RUN.finditer(text):
        s = run.group()
        readings = [_reading(c) for c in s]
        bounds = {0}  # a window starts and ends between jieba's words: 中国|纺织 holds no "国纺"
        for w in _cut_han(s):
            bounds.add(max(bounds) + len(w))
        i = 0
        while i < len(s) - 1:
            for size in range(min(6, len(s) - i), 1, -1) if i in bounds else ():
                window = s[i: i + size]
                parts = readings[i: i + size]
                if None in parts or i + size not in bounds:
                    continue
                term = vocab.homophones.get("".join(parts))  # type: ignore[arg-type]
                if not term or len(term) != size or term == window:
                    continue
                wrong = [a for a, b in zip(window, term) if a != b]
                if len(wrong) != 1 or words.get(window) or words.get(wrong[0], 0) >= _COMMON_CHAR:
                    continue  # a word of its own, or a common character in its own right (宁波|是)
                start = run.start() + i
                out += [text[pos:start], term]
                pos = start + size
                changes.append(Change("typo", window, term))
                i += size
                break
            else:
                i += 1
    out.append(text[pos:])
    return "".join(out)


def _max_distance(n: int) -> int:
    """Edits tolerated in a word of ``n`` letters: none in 3 or fewer (too many real words sit
    one edit apart), one up to 12 ("chna", "moldess", "pharamceutical": a transposition is one),
    two beyond. Two edits in a shorter word mostly land on a cognate of another language
    ("integradores"/"integrados", "aeronáuticos"/"aeronautics"), not on the word meant."""
    if n <= 3:
        return 0
    if n <= 12:
        return 1
    return 2


_ENDINGS = frozenset({"", "s", "es", "a", "o", "e", "as", "os", "is", "ais", "al"})


def _inflection(key: str, cand: str) -> bool:
    """Whether ``key`` is another form of ``cand`` ("vinicolas"/"vinicola", "metalomecanico"/
    "metalomecanica"): the same stem with a plural or gender ending; "moldess" is not one."""
    p = 0
    while p < min(len(key), len(cand)) and key[p] == cand[p]:
        p += 1
    return key[p:] in _ENDINGS and cand[p:] in _ENDINGS and not key.endswith("ss")


def correct(word: str, vocab: Vocabulary, cautious: bool = False) -> str | None:
    """The vocabulary word ``word`` is a typo of, or None (also when two are equally close).
    ``cautious`` (a capitalised word inside a sentence: likely a name the vocabulary lacks):
    one edit at most, in words of five letters or more."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    key = fold(word)
    limit = _max_distance(len(key))
    if cautious:
        limit = min(limit, 1) if len(key) >= 5 else 0
    if not limit or not key.isalpha():
        return None
    pool = vocab.by_initial.get(key[0], [])
    found = process.extract(key, pool, scorer=OSA.distance, score_cutoff=limit, limit=20)
    found = [(cand, dist) for cand, dist, _ in found if abs(len(cand) - len(key)) <= limit and cand != key]
    if any(_inflection(key, cand) for cand, _ in found):
        return None  # a form of a known word: the matchers and keyword stems already meet it
    if not found:
        return None
    best = min(d for _, d in found)
    closest = [c for c, d in found if d == best]
    if len(closest) > 1:
        # "moldess": moldes before molde; otherwise the more frequent word, and refuse a coin toss
        ranked = sorted(closest, key=lambda c: -max(zipf(c, lang) for lang in _LANGS))
        top = max(zipf(ranked[0], lang) for lang in _LANGS)
        second = max(zipf(ranked[1], lang) for lang in _LANGS)
        if top - second < 0.5:
            return None
        return ranked[0]
    return closest[0]


def _accented(word: str, vocab: Vocabulary) -> str | None:
    """The accented spelling a plain Portuguese word stands for ("calcado" -> "calçado"), when
    that spelling is clearly the usual one; None when the plain word is as usual (esta/está)."""
    lower = word.lower()
    if len(lower) < 5 or not lower.isascii():
        # short words are where both spellings are common words: esta/está, pais/país, e/é
        return None
    if zipf(lower, "en") >= 3.0:
        return None  # an English word ("material", "serial") stays as it is
    forms = {f for f in vocab.forms.get(lower, ()) if not f.isascii()}
    forms |= _pt_accents().get(lower, set())
    if not forms:
        return None
    if lower in vocab.forms.get(lower, ()):
        return None  # the plain spelling is itself a term
    best = max(sorted(forms), key=lambda f: zipf(f, "pt") or 3.0)
    if (zipf(best, "pt") or 3.0) < zipf(lower, "pt") + _ACCENT_MARGIN:
        return None
    return best


@lru_cache(maxsize=1)
def _pt_accents() -> dict[str, set[str]]:
    """Plain spelling -> accented Portuguese words of wordfreq's list."""
    out: dict[str, set[str]] = {}
    for w in _zipf_table("pt"):
        if not w.isascii():
            f = fold(w)
            if f.isascii() and f != w:
                out.setdefault(f, set()).add(w)
    return out


def _case_like(typed: str, word: str) -> str:
    if typed.isupper() and len(typed) > 1:
        return word.upper()
    if typed[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _latin_pass(text: str, vocab: Vocabulary, changes: list[Change]) -> tuple[str, bool]:
    tokens = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text) if not _HAN.search(m.group())]
    if not tokens:
        return text, False
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), in order, not overlapping
    used_pinyin = False
    i = 0
    while i < len(tokens):
        done = False
        for size in (4, 3, 2, 1):
            span = tokens[i: i + size]
            if len(span) < size:
                continue
            if any(text[a[1]: b[0]].strip() for a, b in zip(span, span[1:])):
                continue  # only words separated by spaces make one name
            words = [w for _, _, w in span]
            folded = [fold(w) for w in words]
            if size == 1 and (vocab.knows(folded[0]) or is_common(words[0]) or is_common(folded[0])):
                continue  # "ningbo", "china", "men": words of their own, not pinyin
            if size > 1 and all(is_common(w) or vocab.knows(fold(w)) for w in words):
                continue
            key = pinyin_key("".join(words))
            term = vocab.pinyin.get(key)
            if term and is_pinyin(key):
                start, end = span[0][0], span[-1][1]
                edits.append((start, end, term))
                changes.append(Change("pinyin", text[start:end], term))
                used_pinyin = done = True
                i += size
                break
        if done:
            continue
        start, end, word = tokens[i]
        i += 1
        key = fold(word)
        accented = _accented(word, vocab)
        if accented and accented != word.lower():
            edits.append((start, end, _case_like(word, accented)))
            changes.append(Change("accents", word, _case_like(word, accented)))
            continue
        if vocab.knows(key) or is_common(word) or is_common(key):
            continue
        if (word.isupper() and len(word) <= 6) or is_pinyin(key):
            continue  # an acronym, or pinyin of something the vocabulary does not hold: not typos
        inside = bool(text[:start].strip()) and text[:start].rstrip()[-1] not in ".!?;:。！？；：\n"
        fixed = correct(word, vocab, cautious=inside and word[:1].isupper())
        if fixed:
            shown = _case_like(word, vocab.display(fixed))
            edits.append((start, end, shown))
            changes.append(Change("typo", word, shown))
    if not edits:
        return text, used_pinyin
    out, pos = [], 0
    for start, end, repl in edits:
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    return "".join(out), used_pinyin


def normalise(text: str, vocabulary: Vocabulary | None = None) -> Normalised:
    """The text to analyse: Cantonese function words in Mandarin, Simplified characters, pinyin
    read as the Chinese terms it spells, plain Portuguese words with their accents and typos
    corrected against the vocabulary, each change listed."""
    vocab = vocabulary or base_vocabulary()
    original = text
    text = unicodedata.normalize("NFC", text)
    changes: list[Change] = []
    text = _cantonese_pass(text, changes)
    text, traditional = _traditional_pass(text, changes)
    text = _homophone_pass(text, vocab, changes)
    text, pinyin = _latin_pass(text, vocab, changes)
    if pinyin:
        text = _pinyin_sentence_pass(text, vocab, changes)
    has_han = bool(_HAN.search(original))
    has_latin = any(not _HAN.search(w) for w in _WORD.findall(original))
    script = "hant" if traditional else ("mixed" if has_han and has_latin else "hans" if has_han else "latin" if has_latin else "none")
    return Normalised(original, text, changes, script, pinyin)


LATIN_LANGS = ("pt", "en", "es", "fr")  # the Latin-script languages a pinyin word may sit in


def language_of(norm: Normalised, default: str | None = None) -> str | None:
    """The language the query is in (es and fr too): of the normalised text, unless pinyin was
    read as Chinese (a Latin-script query is not a Chinese one for the reply: "fornecedores de
    mujv" is Portuguese). A message whose Latin words are not one of ``LATIN_LANGS`` once pinyin
    was read is Chinese typed without characters: language guessers read pinyin as Vietnamese,
    Tagalog or Swahili, and a query's language picks its calibration."""
    if not norm.pinyin:
        return detect_lang(norm.text, default=default)
    guess = detect_lang(norm.original, default=None)
    return guess if guess in LATIN_LANGS else "zh"


def name_heads(name: str, most: int = 3) -> list[str]:
    """The first one to ``most`` words of a Chinese name (jieba's cut), short of the whole:
    科大讯飞股份有限公司 -> 科大, 科大讯, 科大讯飞, as people name it without its legal form."""
    from ._keywords import _cut_han

    words = _cut_han(name)
    heads = ["".join(words[:n]) for n in range(1, min(most, len(words) - 1) + 1)]
    return [h for h in heads if len(h) >= 2]
