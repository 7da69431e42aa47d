"""/docs (Swagger UI) from the files the fastapi-offline package installs, never from a CDN.

FastAPI's own pages load their scripts from jsDelivr: blank on a machine without internet (an
air-gapped office, a laptop on a train). The same pages, pointing at this server. The package's
Swagger UI is 5.x, which reads OpenAPI 3.1 (what FastAPI writes); swagger-ui-bundle's 4.x cannot.
Only its static files are used, not its app class. No /redoc: ReDoc's page still fetches its
logo from cdn.redoc.ly.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
          "favicon.png": "image/png"}


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """Call on an app made with ``docs_url=None`` and ``redoc_url=None``."""
    spec = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=spec, title=f"{app.title} · API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, f"no docs asset '{name}'")
        return FileResponse(assets_dir() / name, media_type=ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
