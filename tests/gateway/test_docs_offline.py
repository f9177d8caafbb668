"""`/docs` works in a closed network: every file the page loads is served by the gateway
itself (Swagger UI from a package), none from a CDN, and that Swagger UI reads OpenAPI 3.1."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from gateway.main import create_app


def test_the_docs_page_loads_nothing_from_outside(settings) -> None:
    client = TestClient(create_app(settings))  # no lifespan: nothing but HTTP routes
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    loaded = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", page.text)
    loaded += re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)  # the schema it fetches
    assert len(loaded) >= 4, loaded  # script, stylesheet, icon, schema
    assert all(u.startswith("/") and not u.startswith("//") for u in loaded), loaded
    assert "http://" not in page.text and "https://" not in page.text
    for url in loaded:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 100, url
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "isOAS31" in bundle  # Swagger UI 5 (4.x renders FastAPI's 3.1 schema as an error)
    assert client.get("/redoc").status_code == 404  # CDN-only: gone rather than blank
