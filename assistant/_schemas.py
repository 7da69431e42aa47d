"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator

QUERY_MAX = 1000
FILTER_VALUES_MAX = 20
FILTER_VALUE_MAX = 100
# C0 controls other than tab, line feed and carriage return; DEL; and lone UTF-16 surrogates,
# which JSON can carry ("\ud800") but UTF-8 cannot, so neither SQLite nor a reply could hold them.
_UNWANTED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def clean_text(v: str) -> str:
    """Refuse (422) text that no later step could store or echo back."""
    if isinstance(v, str) and _UNWANTED.search(v):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return v


_ERROR_TEXT = {
    400: "The body could not be read (not JSON, or not UTF-8)",
    401: "No staff key",
    403: "Wrong staff key, or staff access disabled",
    404: "Not found",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid input",
    429: "Too many requests from this client; see Retry-After",
    503: "Index not loaded yet",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route really gives, all with an ErrorBody."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorBody, "description": _ERROR_TEXT[code]}
        if code == 429:
            out[code]["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return out


FilterValue = Annotated[str, Field(min_length=1, max_length=FILTER_VALUE_MAX)]


def _as_list(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return v


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: list[FilterValue] = Field(default_factory=list, max_length=FILTER_VALUES_MAX,
             description="ISO 3166-1 alpha-2 codes, e.g. PT or CN")
    region: list[FilterValue] = Field(default_factory=list, max_length=FILTER_VALUES_MAX,
            description="Region as in the records (any language)")
    kind: list[FilterValue] = Field(default_factory=list, max_length=FILTER_VALUES_MAX,
          description="cluster, company or institution")
    sectors: list[FilterValue] = Field(default_factory=list, max_length=FILTER_VALUES_MAX,
             description="Sector slugs or synonyms in pt, zh or en")

    _lists = field_validator("country", "region", "kind", "sectors", mode="before")(_as_list)
    _clean = field_validator("country", "region", "kind", "sectors")(lambda v: [clean_text(x) for x in v])


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "我们想找葡萄牙的软木合作伙伴"},
                {"query": "fabricantes de moldes na China", "filters": {"country": "CN"}, "limit": 5},
            ]
        },
    )

    query: str = Field(min_length=1, max_length=QUERY_MAX)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    limit: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        v = clean_text(v).strip()
        if not v:
            raise ValueError("query must not be empty")
        return v


class Why(BaseModel):
    sectors: list[str] = Field(description="Sectors of the query the organisation works in (labels)")
    terms: list[str] = Field(description="Query keywords found in the organisation's texts")
    boosts: list[str] = Field(description="Soft preferences that applied: country, kind, place")


class OrganisationSummary(BaseModel):
    """What a result list shows of an organisation; the name is in the reader's language."""

    id: str
    name: str
    kind: str
    country: str
    region: str | None = None
    city: str | None = None
    sectors: list[str] = Field(default_factory=list)
    website: str | None = None


class SearchHit(OrganisationSummary):
    score: float
    snippet: str
    snippet_lang: str
    why: Why


class SearchResponse(BaseModel):
    query: str = Field(description="The text searched: the query, cut to CPC_QUERY_CHARS_MAX characters when longer "
                                   "(a Chinese, Japanese or Korean character counting two)")
    truncated: bool = Field(False, description="True when the query was longer than that and only its start was searched")
    lang: str
    total: int
    limit: int
    offset: int
    results: list[SearchHit]


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class ApiError(HTTPException):
    """An HTTPException whose JSON body also carries a ``detail`` (the message goes to ``error``)."""

    def __init__(self, status_code: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status_code, error, headers)
        self.body_detail = detail


CHAT_MAX = 2000


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"session_id": "web-3f2a9c", "text": "我们想找葡萄牙的软木合作伙伴", "channel": "web"}]},
    )

    session_id: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="Conversation id chosen by the client; a new one is made when absent",
    )
    text: str = Field("", max_length=CHAT_MAX, description="The user's message; empty gives the help reply")
    channel: str = Field("web", min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")

    _clean = field_validator("text")(clean_text)


class ChatResult(OrganisationSummary):
    number: int = Field(description="Its number in the conversation's list, for follow-ups like 'details of 2'")
    reason: str = ""


class ChatResponse(BaseModel):
    session_id: str
    reply: str
    lang: str
    intent: str
    results: list[ChatResult]
    suggestions: list[str]
    handoff: bool = False
    lead_id: int | None = None


class Lead(BaseModel):
    id: int
    created: float
    session_id: str
    channel: str
    org_id: str
    org_name: str
    lang: str
    message: str
    status: str


class LeadStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "contacted"}]})

    status: Literal["new", "contacted"]


class QueryLogEntry(BaseModel):
    created: float = Field(description="Unix time")
    channel: str = Field(description="web, telegram, wechat, api or staff")
    lang: str
    query: str
    results: int
    user_hash: str = Field(description="A salted hash of the user or client address; no personal data is stored")


class QueryStats(BaseModel):
    by_lang: dict[str, int]
    by_channel: dict[str, int]
    totals: dict[str, int] = Field(description="all and zero_results")
    zero_rate: float = Field(description="Share of logged queries that found nothing (0 when none logged)")


class Facet(BaseModel):
    value: str = Field(description="The value to send as a filter")
    labels: dict[str, str] = Field(default_factory=dict, description="Display labels by language (pt, zh, en)")
    country: str | None = Field(None, description="For regions: the country they are in")


class Facets(BaseModel):
    countries: list[Facet]
    regions: list[Facet]
    kinds: list[Facet]
    sectors: list[Facet]


class IngestProblem(BaseModel):
    line: int = Field(description="Line of the body (for CSV, the header is line 1)")
    field: str = Field(description="The record field at fault, or '-' for the line as a whole")
    message: str


class IngestReport(BaseModel):
    imported: int = Field(description="Records added or updated")
    skipped: list[IngestProblem] = Field(description="Invalid records left out (only with skip_invalid)")
    records: int = Field(description="Organisations in the index now")
    vectors: int = Field(description="Dense vectors in the index now")


class OrgDeleted(BaseModel):
    deleted: str
    records: int = Field(description="Organisations in the index now")


class IndexManifest(BaseModel):
    """What the new index generation was built from and with."""

    model_config = ConfigDict(extra="allow")

    model_id: str
    dim: int
    records: int
    vectors: int
    corpus_hash: str
    built_at: str
    updated_at: str
    index_type: str | None = None
