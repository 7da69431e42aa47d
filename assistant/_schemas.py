"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator

# All of a query is read (a pasted profile whose last sentence says what is sought); only what is
# embedded is capped (CPC_QUERY_CHARS_MAX), so the limit is the chat's.
QUERY_MAX = 2000
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
    409: "Not possible now: another process holds the data folder's writer lock (this server only reads), "
         "or the channel is not configured, WeChat's 48-hour window has passed, there is no e-mail to write to",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid input",
    502: "The chat platform or the SMTP server refused the message",
    429: "Too many requests from this client; see Retry-After",
    503: "Index not loaded yet",
    507: "The disk holding the data folder is full; nothing was changed",
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
    type: list[Literal["organisation", "post", "rd_partner", "tech_offer", "tech_request", "joint_venture", "distribution",
                       "supplier"]] = Field(
        default_factory=list, max_length=8,
        description="What to search: organisation and/or opportunity post types (post: every type); default organisations")

    _lists = field_validator("country", "region", "kind", "sectors", "type", mode="before")(_as_list)
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
    complements: list[str] = Field(default_factory=list,
                                   description="Its sectors that complement the asker's (value chain), or the asker's own trade")
    text: str = Field("", description="Why this partner, in the query's language")


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
    type: str | None = Field(None, description="An opportunity post's type (kind \"post\"); absent for organisations")
    type_label: str | None = Field(None, description="The post type in the reader's language")
    closes: str | None = Field(None, description="A post's closing date (YYYY-MM-DD): never shown after it")
    closes_label: str | None = Field(None, description="The deadline in the reader's language")
    side_sought: str | None = Field(None, description="The side of the alliance a post seeks partners on")
    score: float
    match: float | None = Field(None, description="The judgement's probability that this is a partner the query asked for")
    less_close: bool = Field(False, description="True: NOT a match, and never to be shown as one: it follows the matches"
                                                " (a list filled up to 10) or, when nothing matched, sits near the threshold")
    snippet: str
    snippet_lang: str
    why: Why


class Normalisation(BaseModel):
    """One rewrite of the query before it was analysed (docs/search-normalise.md)."""

    model_config = ConfigDict(populate_by_name=True)

    kind: Literal["traditional", "cantonese", "accents", "pinyin", "typo"] = Field(
        description="traditional: Traditional to Simplified characters; cantonese: a written-Cantonese word in Mandarin;"
                    " accents: a Portuguese word typed without its accents; pinyin: pinyin read as the Chinese term;"
                    " typo: a spelling corrected against the directory's own vocabulary")
    from_: str = Field(alias="from", description="As typed")
    to: str = Field(description="What was analysed and embedded instead")


class Understood(BaseModel):
    """What the service read in the query: who asks, and whom they seek."""

    asker: dict[str, Any] | None = Field(description="The asker's countries, places, sectors and kinds, when the query says")
    seeking: dict[str, Any] = Field(description="The partner sought: countries (named or implied), places, sectors,"
                                                " kinds, roles, complementary sectors")
    normalised: list[Normalisation] = Field(default_factory=list,
                                            description="What was rewritten before analysis, in order; empty when nothing was")
    hints: dict[str, Any] = Field(default_factory=dict,
                                  description="What the text looked like: script (hans, hant, latin, mixed, none) and"
                                              " pinyin (pinyin words were read as Chinese terms)")


class SearchResponse(BaseModel):
    query: str = Field(description="The text searched: the query, cut to CPC_QUERY_CHARS_MAX characters when longer "
                                   "(a Chinese, Japanese or Korean character counting two)")
    truncated: bool = Field(False, description="True when the query was longer than that and only its start was searched")
    lang: str
    total: int = Field(description="How many results there are in all (every page): ``matches`` plus ``less_close``")
    matches: int = Field(description="How many of them are matches: what the question asked for")
    less_close: int = Field(description="How many are NOT matches, each marked less_close: an answered list is filled up"
                                        " to 10 with the next organisations on the side asked for, and when nothing matches"
                                        " the few near the threshold are shown")
    limit: int
    offset: int
    understood: Understood
    results: list[SearchHit] = Field(description="Matches only; empty when nothing in the directory fits")
    nearest: list[SearchHit] = Field(default_factory=list,
                                     description="When there is no match: the closest organisations, which are NOT matches")


class MatchesResponse(BaseModel):
    organisation: str
    lang: str
    total: int = Field(description="How many results in all: ``matches`` plus ``less_close``")
    matches: int = Field(description="How many of them are matches")
    less_close: int = Field(description="How many are NOT matches (each marked less_close), shown after the matches")
    understood: Understood
    results: list[SearchHit]
    nearest: list[SearchHit] = Field(default_factory=list)


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
        json_schema_extra={"examples": [{"text": "我们想找葡萄牙的软木合作伙伴"},
                                        {"session_id": "web-Jm3V0kq8cXbF2yR7tL9wAa.q0Xc7Yb2N4mT1sVe8RfLk9u", "text": "更多"}]},
    )

    session_id: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="The session_id of the previous reply, to continue that conversation. Absent, or not "
        "one this server issued (or issued to another browser): a new conversation starts.",
    )
    text: str = Field("", max_length=CHAT_MAX, description="The user's message; empty gives the help reply")
    channel: Literal["web"] = Field(
        "web", description="Always web here: Telegram and WeChat reach the assistant only through their signed webhooks")

    _clean = field_validator("text")(clean_text)


class ChatResult(OrganisationSummary):
    number: int = Field(description="Its number in the conversation's list, for follow-ups like 'details of 2'")
    reason: str = ""


class ChatResponse(BaseModel):
    session_id: str = Field(description="Send this back as session_id to continue the conversation (a signed "
                            "token; from a browser it works only together with that browser's cookie)")
    new_session: bool = Field(description="True when this turn started a new conversation (no session_id, or "
                              "one this server did not issue)")
    reply: str
    lang: str
    intent: str = Field(description="The act the reply performs: search, refine, more, details, back, interest, contact,"
                        " lead, to_team, human, status, faq, smalltalk, clarify, language, out_of_scope, erase, help")
    step: str = Field("", description="The finer step behind the act (greeting, contact_name, privacy_erased ...)")
    posts: list[SearchHit] = Field(default_factory=list, description="Open opportunity posts that fit the search (kind \"post\"),"
                                   " with their type and deadline labelled in the reply's language")
    results: list[ChatResult]
    suggestions: list[str]
    handoff: bool = False
    lead_id: int | None = None
    form: dict[str, Any] | None = Field(None, description="A contact-request step the chat can show as a form: "
                                        "{step, fields: {name, org, contact, need}, channel_identity}")


LeadStatus = Literal["new", "contacted", "introduced", "closed"]
LeadOutcome = Literal["partnership", "in_contact", "declined", "no_response", "not_a_fit", "withdrawn", "spam"]


class LeadOrganisation(BaseModel):
    id: str
    name: str


class LeadNote(BaseModel):
    at: float
    by: str = ""
    text: str


class Lead(BaseModel):
    id: int
    created: float
    updated: float
    session_id: str
    channel: str
    org_id: str = Field(description="The first organisation of interest (all of them are in organisations)")
    org_name: str
    lang: str
    message: str = Field(description="What the user said when they showed interest")
    status: LeadStatus | str
    organisations: list[LeadOrganisation]
    name: str | None = Field(None, description="The asker's name (given with consent)")
    asker_org: str | None = Field(None, description="The asker's own organisation")
    contact: str | None = Field(None, description="E-mail, phone, WeChat ID, or the channel itself (telegram, wechat)")
    contact_kind: str | None = Field(None, description="email, phone, wechat_id, telegram or wechat")
    need: str | None = Field(None, description="One line on what the asker is looking for")
    conversation: list[list[Any]] | None = Field(None, description="[time, user text, reply's first line] turns, "
                                                 "only when the user agreed to share them")
    consent_at: float | None = None
    outcome: str | None = None
    notes: list[LeadNote] = Field(default_factory=list)
    assignee: str | None = None
    last_inbound: float | None = Field(None, description="The user's last message (WeChat replies allowed for 48 hours after it)")
    closed_at: float | None = None
    messages: list["StaffMessage"] = Field(default_factory=list, description="The thread: what staff sent and what the "
                                           "user answered (sender), oldest first")
    unread: int = Field(0, description="User messages in the thread staff have not opened yet")
    last_user_message_at: float = Field(0, description="When the user last wrote to the thread (0: never): the inbox's \"user replied\" marker")


class LeadStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "contacted"},
                                                                              {"status": "closed", "outcome": "partnership"}]})

    status: LeadStatus
    outcome: LeadOutcome | None = Field(None, description="Required when the status is closed")


class LeadUpdate(BaseModel):
    """Any of: a status (closed needs an outcome), an assignee ("" clears it), a note to add."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "contacted", "assignee": "Rita"},
                                                                              {"note": "Called, sends catalogue on Monday"}]})

    status: LeadStatus | None = None
    outcome: LeadOutcome | None = None
    assignee: str | None = Field(None, max_length=80)
    note: str | None = Field(None, min_length=1, max_length=2000)

    _clean = field_validator("assignee", "note")(lambda v: clean_text(v) if v is not None else v)


class StaffReply(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "Olá Ana, falámos com a APCOR."}]})

    text: str = Field(min_length=1, max_length=2000, description="Reaches the user on the channel they asked from")
    author: str = Field("", max_length=80)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        v = clean_text(v).strip()
        if not v:
            raise ValueError("text must not be empty")
        return v


class StaffMessage(BaseModel):
    id: int
    lead_id: int
    created: float
    text: str
    delivery: str = Field(description="sent (Telegram, WeChat), waiting (web: shown when the user returns), e-mail; "
                          "for the user's answers unread or read")
    author: str = ""
    sender: Literal["staff", "user"] = "staff"


FAQ_LANGS = ("pt", "zh", "en")


class FaqEntryIn(BaseModel):
    """A FAQ entry as staff write it: questions (any number per language) and one answer per language."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "questions": {"pt": ["quanto custa?"], "en": ["how much does it cost?"], "zh": ["收费吗？"]},
        "answers": {"pt": "Pesquisar aqui não tem custo.", "en": "Searching here costs nothing.", "zh": "在这里搜索不收费。"}}]})

    questions: dict[Literal["pt", "zh", "en"], list[Annotated[str, Field(min_length=1, max_length=300)]]]
    answers: dict[Literal["pt", "zh", "en"], Annotated[str, Field(min_length=1, max_length=2000)]]

    @field_validator("questions")
    @classmethod
    def _some_question(cls, v: dict) -> dict:
        cleaned = {lang: [q for q in (clean_text(x).strip() for x in qs) if q][:20] for lang, qs in v.items()}
        cleaned = {lang: qs for lang, qs in cleaned.items() if qs}
        if not cleaned:
            raise ValueError("at least one question is needed")
        return cleaned

    @field_validator("answers")
    @classmethod
    def _some_answer(cls, v: dict) -> dict:
        cleaned = {lang: clean_text(a).strip() for lang, a in v.items()}
        cleaned = {lang: a for lang, a in cleaned.items() if a}
        if not cleaned:
            raise ValueError("at least one answer is needed")
        return cleaned


class FaqEntry(BaseModel):
    id: int
    updated: float
    questions: dict[str, list[str]]
    answers: dict[str, str]
    missing: list[str] = Field(default_factory=list, description="Languages without an answer (users there get another language)")


class UnansweredQuestion(BaseModel):
    id: int
    created: float
    lang: str
    text: str


Lead.model_rebuild()


class ChatMessages(BaseModel):
    session_id: str
    messages: list[StaffMessage] = Field(description="Messages from the CPC Alliance team to this conversation, oldest first")


class Introduction(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "partner_email": "contact@partner.example", "partner_name": "APCOR",
        "text": "Ana Silva (Moldes Lda) would like to discuss cork stoppers with you."}]})

    partner_email: str = Field(min_length=3, max_length=254, description="The partner contact staff obtained (records hold none)")
    partner_name: str = Field("", max_length=200)
    text: str = Field(min_length=1, max_length=5000, description="The introduction; the asker's details are added below it")
    author: str = Field("", max_length=80)

    _clean = field_validator("partner_name", "text", "author")(clean_text)

    @field_validator("partner_email")
    @classmethod
    def _email(cls, v: str) -> str:
        from ._contact import valid_email

        email = valid_email(v.strip())
        if email is None:
            raise ValueError("not a valid e-mail address")
        return email


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
    skipped: list[IngestProblem] = Field(description="Invalid records left out (only with skip_invalid): the first 50")
    skipped_total: int = Field(0, description="How many records were left out in all")
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
