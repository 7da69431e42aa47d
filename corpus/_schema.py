"""The organisation record: one cluster, firm or institution, with its translations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ._lang import SUPPORTED, detect_lang
from ._taxonomy import default_taxonomy

KINDS = ("cluster", "company", "institution")
Kind = Literal["cluster", "company", "institution"]

# ISO 3166-1 alpha-2, officially assigned codes.
ISO_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW""".split()
)
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
_LANG = re.compile(r"^[a-z]{2}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")

# Limits, checked before anything is written: a record over them is refused with its line and
# field. The index keeps one vector slot per language (index/_engine.py SLOTS, 16), the first
# three always held by pt, zh and en; a place or tag is also a filter value (100 characters at
# most in a search request), and anything longer only costs time in every later step.
MAX_LANGUAGES = 16
MAX_OTHER_LANGUAGES = MAX_LANGUAGES - len(SUPPORTED)
PLACE_MAX = 100
TAG_MAX = 100
TAGS_MAX = 30
URL_MAX = 2_000
SOURCES_MAX = 30
EXTRA_FIELDS_MAX = 30
EXTRA_KEY_MAX = 100
EXTRA_DEPTH_MAX = 4  # a list of objects of lists of strings: deeper structures are refused
EXTRA_ITEMS_MAX = 200  # strings, numbers, lists and objects in one extra field, all levels together
EXTRA_TEXT_MAX = 2_000  # characters of one string inside an extra field


def _extra_problem(value: Any) -> str | None:
    """Why one extra field's value is too deep or too big, or None. Iterative: a value nested
    deeper than Python's recursion limit is measured without recursing."""
    stack = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > EXTRA_ITEMS_MAX:
            return f"more than {EXTRA_ITEMS_MAX} values"
        if isinstance(node, (dict, list)):
            if depth > EXTRA_DEPTH_MAX:
                return f"lists or objects nested deeper than {EXTRA_DEPTH_MAX} levels"
            if isinstance(node, dict):
                for key in node:
                    if len(str(key)) > EXTRA_KEY_MAX:
                        return f"a key longer than {EXTRA_KEY_MAX} characters"
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str) and len(node) > EXTRA_TEXT_MAX:
            return f"a text longer than {EXTRA_TEXT_MAX} characters"
    return None


def check_extra_fields(extra: dict[str, Any] | None, prefix: str = "") -> None:
    """Bound the unknown fields ``extra="allow"`` keeps; the error names the field."""
    if not extra:
        return
    if len(extra) > EXTRA_FIELDS_MAX:
        raise PydanticCustomError("extra_fields", "more than {limit} extra fields",
                                  {"field": prefix.rstrip(".") or "-", "limit": EXTRA_FIELDS_MAX})
    for key, value in extra.items():
        field = f"{prefix}{key}"[:EXTRA_KEY_MAX + 20]
        if len(key) > EXTRA_KEY_MAX:
            raise PydanticCustomError("extra_field", "field name longer than {limit} characters",
                                      {"field": field, "limit": EXTRA_KEY_MAX})
        problem = _extra_problem(value)
        if problem:
            raise PydanticCustomError("extra_field", "extra field with {problem}", {"field": field, "problem": problem})


def _split_tags(text: str) -> list[str]:
    return [t for t in re.split(r"[;|,]", text) if t.strip()]


def _too_long(field: str, limit: int, what: str = "characters") -> PydanticCustomError:
    return PydanticCustomError("too_long", "at most {limit} " + what, {"field": field, "limit": limit})


def check_limits(data: dict[str, Any]) -> None:
    """Lengths of the known string and list fields of an incoming record, by field name."""
    for name in ("region", "city"):
        if isinstance(data.get(name), str) and len(data[name]) > PLACE_MAX:
            raise _too_long(name, PLACE_MAX)
    if isinstance(data.get("website"), str) and len(data["website"]) > URL_MAX:
        raise _too_long("website", URL_MAX)
    sectors = data.get("sectors")
    if isinstance(sectors, str):
        if len(sectors) > TAGS_MAX * (TAG_MAX + 1):
            raise _too_long("sectors", TAGS_MAX * (TAG_MAX + 1))
        sectors = _split_tags(sectors)
    for name, items, each in (("sectors", sectors, TAG_MAX), ("sources", data.get("sources"), URL_MAX)):
        if not isinstance(items, list):
            continue
        most = TAGS_MAX if name == "sectors" else SOURCES_MAX
        if len(items) > most:
            raise _too_long(name, most, "items")
        for i, item in enumerate(items):
            if isinstance(item, str) and len(item.strip()) > each:
                raise _too_long(f"{name}.{i}", each)
    i18n = data.get("i18n")
    if isinstance(i18n, dict) and len(i18n) > MAX_LANGUAGES:
        raise _too_long("i18n", MAX_LANGUAGES, "languages (the index holds no more)")


class Translation(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    offers: str | None = Field(default=None, max_length=2_000)
    seeks: str | None = Field(default=None, max_length=2_000)
    machine: list[str] = Field(default_factory=list, description="Fields of this translation made by a machine, not curated")

    @model_validator(mode="after")
    def _bounded_extras(self, info: ValidationInfo) -> "Translation":
        if not (info.context or {}).get("stored"):
            check_extra_fields(self.model_extra)
        return self


class Organisation(BaseModel):
    """A partner candidate. Unknown extra fields are kept (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str
    kind: Kind
    name: str = Field(min_length=1, max_length=300)
    country: str
    region: str | None = None
    city: str | None = None
    sectors: list[str] = Field(default_factory=list)
    lang: str | None = None
    description: str = Field(min_length=1, max_length=10_000)
    website: str | None = None
    i18n: dict[str, Translation] = Field(default_factory=dict)
    offers: str | None = Field(default=None, max_length=2_000)
    seeks: str | None = Field(default=None, max_length=2_000)
    sources: list[str] = Field(default_factory=list)
    updated: dt.date | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any, info: ValidationInfo) -> Any:
        """The size limits, checked on what comes in (not on records already stored, which were
        accepted under the limits of their day and must stay readable). Before the field
        validators: a 200,000-character tag is refused before any work is spent on it."""
        if isinstance(data, dict) and not (info.context or {}).get("stored"):
            check_limits(data)
        return data

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("must be a slug: lowercase letters, digits and '-', 1-100 characters")
        return v

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().upper()
            if v not in ISO_COUNTRIES:
                raise ValueError(f"'{v}' is not an ISO 3166-1 alpha-2 country code (e.g. PT, CN)")
        return v

    @field_validator("lang")
    @classmethod
    def _lang(cls, v: str | None) -> str | None:
        if v is not None and not _LANG.match(v.lower()):
            raise ValueError("must be an ISO 639-1 code such as pt, zh or en")
        return v.lower() if v else v

    @field_validator("i18n")
    @classmethod
    def _i18n_keys(cls, v: dict[str, Translation]) -> dict[str, Translation]:
        for key in v:
            if not _LANG.match(key):
                raise ValueError(f"key '{key}' is not an ISO 639-1 language code")
        return v

    @field_validator("website")
    @classmethod
    def _website(cls, v: str | None) -> str | None:
        if v and not _URL.match(v):
            raise ValueError("must be an http(s) URL")
        return v or None

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        for url in v:
            if not _URL.match(url):
                raise ValueError(f"'{url}' is not an http(s) URL")
        return v

    @field_validator("sectors", mode="before")
    @classmethod
    def _split_sectors(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = _split_tags(v)
        return v

    @model_validator(mode="after")
    def _derive(self, info: ValidationInfo) -> "Organisation":
        stored = (info.context or {}).get("stored")
        if not stored:
            check_extra_fields(self.model_extra)
        self.sectors = default_taxonomy().normalise_tags(self.sectors)
        if not self.lang:
            self.lang = detect_lang(self.description, default="en")
        languages = {self.lang, *self.i18n}
        others = sorted(languages - set(SUPPORTED))
        if not stored and (len(languages) > MAX_LANGUAGES or len(others) > MAX_OTHER_LANGUAGES):
            raise PydanticCustomError(
                "too_many_languages",
                "{count} languages ({others} besides pt, zh and en): the index holds at most {limit}, "
                "of which at most {other_limit} besides pt, zh and en",
                {"field": "i18n", "count": len(languages), "others": len(others), "limit": MAX_LANGUAGES,
                 "other_limit": MAX_OTHER_LANGUAGES})
        return self

    # -- views -------------------------------------------------------------------------
    def versions(self) -> dict[str, tuple[str, str]]:
        """(name, description) per language: the original plus every translation."""
        out: dict[str, tuple[str, str]] = {self.lang or "en": (self.name, self.description)}
        for lang, tr in self.i18n.items():
            if lang == self.lang and lang in out:
                continue
            if tr.description or tr.name:
                out[lang] = (tr.name or self.name, tr.description or "")
        return out

    def name_in(self, lang: str) -> str:
        tr = self.i18n.get(lang)
        return (tr.name if tr and tr.name else None) or self.name

    def description_in(self, lang: str) -> tuple[str, str]:
        """(description, its language): the translation when there is one, else the original."""
        tr = self.i18n.get(lang)
        if tr and tr.description:
            return tr.description, lang
        return self.description, self.lang or "en"

    def field_in(self, name: str, lang: str) -> tuple[str | None, str]:
        """(``offers`` or ``seeks`` in ``lang``, its language): the translation when there is one, else
        the original with the record's language, for the reader to be told it is the original."""
        tr = self.i18n.get(lang)
        value = getattr(tr, name, None) if tr else None
        if value:
            return value, lang
        return getattr(self, name), self.lang or "en"

    def untranslated(self, langs: tuple[str, ...] = ("pt", "zh", "en")) -> list[str]:
        """"field:lang" for every description, offers or seeks shown to readers of ``lang`` in another language."""
        out = []
        for name in ("description", "offers", "seeks"):
            if not getattr(self, name):
                continue
            for lang in langs:
                if lang != (self.lang or "en") and not getattr(self.i18n.get(lang), name, None):
                    out.append(f"{name}:{lang}")
        return out

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
