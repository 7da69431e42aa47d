"""The organisation record: one cluster, firm or institution, with its translations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._lang import detect_lang
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


class Translation(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)


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
        if v and not re.match(r"^https?://[^\s/$.?#][^\s]*$", v):
            raise ValueError("must be an http(s) URL")
        return v or None

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        for url in v:
            if not re.match(r"^https?://[^\s/$.?#][^\s]*$", url):
                raise ValueError(f"'{url}' is not an http(s) URL")
        return v

    @field_validator("sectors", mode="before")
    @classmethod
    def _split_sectors(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [t for t in re.split(r"[;|,]", v) if t.strip()]
        return v

    @model_validator(mode="after")
    def _derive(self) -> "Organisation":
        self.sectors = default_taxonomy().normalise_tags(self.sectors)
        if not self.lang:
            self.lang = detect_lang(self.description, default="en")
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

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
