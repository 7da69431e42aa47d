"""The two web pages (chat at /, staff console at /staff), their static files, and the
filter vocabulary both pages label things with. Plain files, no build step, no CDN.

Every page shares its <head> basics, its header (brand and PT/中文/EN switch) and, on the staff
pages, the sign-in form: each is written once in static/_<name>.html and a page names it with a
line ``<!--#name slot="value"-->``. Pages are put together once, on first use, and kept; a missing
part or slot fails loudly instead of serving a half page.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from corpus import KINDS, default_lexicon, default_taxonomy

from ._schemas import Facets, error_responses
from ._sessions import keep_browser

STATIC = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(js|css|svg|ico)$")  # bounded: no ENAMETOOLONG
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml",
          "ico": "image/x-icon"}
# Everything the pages load comes from this server; nothing inline, nothing framed.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()


_PART = re.compile(r'^[ \t]*<!--#([a-z]+)((?: [a-z]+="[^"]*")*)-->$', re.MULTILINE)
_SLOT = re.compile(r"\{([a-z]+)\}")
_VALUE = re.compile(r'([a-z]+)="([^"]*)"')


def _fill(match: re.Match) -> str:
    """One ``<!--#name slot="value"-->`` line: the part's text with each {slot} filled (values are ours)."""
    part = (STATIC / f"_{match[1]}.html").read_text(encoding="utf-8").removesuffix("\n")
    values = dict(_VALUE.findall(match[2]))
    slots = set(_SLOT.findall(part))
    if slots != set(values):
        raise ValueError(f"part '{match[1]}' has slots {sorted(slots)}, the page gives {sorted(values)}")
    return _SLOT.sub(lambda slot: values[slot[1]], part)


@functools.cache
def render_page(name: str) -> bytes:
    """A page of static/ with its shared parts put in."""
    return _PART.sub(_fill, (STATIC / name).read_text(encoding="utf-8")).encode()


def _page(name: str) -> HTMLResponse:
    return HTMLResponse(render_page(name), headers=_PAGE_HEADERS)


@router.get("/", include_in_schema=False)
def chat_page(request: Request) -> HTMLResponse:
    """With the browser cookie, so even the first chat turn's session is bound to this browser."""
    page = _page("chat.html")
    keep_browser(request, page)
    return page


@router.get("/staff", include_in_schema=False)
def staff_page() -> HTMLResponse:
    return _page("staff.html")


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    """Only plain file names of known types from the package's static folder."""
    path = STATIC / name
    if not _STATIC_NAME.match(name) or not path.is_file():
        raise HTTPException(404, f"no static file '{name}'")
    return FileResponse(path, media_type=_TYPES[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/api/v1/facets", response_model=Facets, tags=["search"],
            responses=error_responses(429, 503))
def facets(request: Request) -> dict:
    """Filter values present in the index, with display labels in pt, zh and en."""
    catalog = getattr(request.app.state, "catalog", None)
    if catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    engine, lex, tax = catalog.engine, default_lexicon(), default_taxonomy()
    regions = []
    for name in engine.values("region"):
        place = lex.place(name)
        regions.append({"value": name, "labels": dict(place.labels) if place else {},
                        "country": place.country if place else None})
    return {
        "countries": [{"value": c, "labels": lex.country_labels.get(c, {})} for c in engine.values("country")],
        "regions": regions,
        "kinds": [{"value": k, "labels": lex.kind_labels.get(k, {})} for k in KINDS],
        "sectors": [{"value": s, "labels": dict(tax.sectors[s].labels) if s in tax else {}}
                    for s in engine.values("sector")],
    }
