"""`/docs` without the internet: Swagger UI's own files, served from the swagger-ui-bundle-v2
package instead of FastAPI's default CDN (a gateway in a closed network showed a blank page).
ReDoc has no packaged copy, so `/redoc` (CDN only) is taken away rather than left blank; the
schema itself is always at `/openapi.json`."""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.staticfiles import StaticFiles

DOCS_URL, REDOC_URL, ASSETS_URL = "/docs", "/redoc", "/docs/assets"


def install_offline_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed `/docs` and `/redoc` with Swagger UI served from here."""
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in (DOCS_URL, REDOC_URL)
    ]
    bundle = importlib.import_module("swagger_ui_bundle")  # swagger-ui-bundle-v2 (untyped)
    directory = Path(str(bundle.swagger_ui_path))
    app.mount(ASSETS_URL, StaticFiles(directory=directory), name="docs-assets")
    title = f"{app.title} - API"
    openapi_url = app.openapi_url or "/openapi.json"

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )

    app.router.routes.insert(0, APIRoute(DOCS_URL, docs, include_in_schema=False))
