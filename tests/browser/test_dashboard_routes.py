"""The dashboard's HTTP routes through the local server: `/`, `/ui/{file}`, and nothing else claimed.

No browser and no AWS here: serving static files touches neither.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.entrypoints.dashboard import ASSET_DIR


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    from local.server import LocalServer

    with LocalServer(0) as local:
        yield local


def fetch(server: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw GET: the path goes on the wire exactly as written (no client-side `..` clean-up)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_the_root_serves_the_dashboard_page_that_loads_its_module_from_ui(server: Any) -> None:
    # When
    status, headers, body = fetch(server, "/")

    # Then
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="ui/app.js"></script>' in body
    assert headers["cache-control"] == "no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8")],
)
def test_an_asset_is_served_byte_for_byte_with_its_content_type(server: Any, name: str, content_type: str) -> None:
    # When
    status, headers, body = fetch(server, f"/ui/{name}")

    # Then
    assert status == 200
    assert headers["content-type"] == content_type
    assert body == (ASSET_DIR / name).read_bytes()


def test_every_module_the_page_imports_is_served(server: Any) -> None:
    # Given every ES module in the dashboard folder
    modules = sorted(path.name for path in ASSET_DIR.glob("*.js"))

    # When each is fetched
    statuses = {name: fetch(server, f"/ui/{name}")[0] for name in modules}

    # Then all are there
    assert statuses == dict.fromkeys(modules, 200)
    assert "app.js" in statuses


def test_an_unchanged_asset_is_a_304_when_the_browser_revalidates(server: Any) -> None:
    # Given
    _, headers, _ = fetch(server, "/ui/app.js")

    # When
    status, _, body = fetch(server, "/ui/app.js", {"If-None-Match": headers["etag"]})

    # Then
    assert status == 304
    assert body == b""


@pytest.mark.parametrize(
    "path",
    [
        "/ui/nope.js",
        "/ui/__init__.py",
        "/ui/..%2F..%2Fapp.py",
        "/ui/%2e%2e%2fentrypoints%2fdashboard.py",
        "/ui/../app.py",
        "/ui/",
        "/dashboard",
        "/index.html",
    ],
)
def test_an_unknown_asset_a_traversal_attempt_or_another_path_is_a_404_json(server: Any, path: str) -> None:
    # When
    status, headers, body = fetch(server, path)

    # Then
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "not_found"


@pytest.fixture()
def settings_from(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set an env var and re-read settings, as a new Lambda container would."""
    from chalicelib.settings import get_settings

    def use(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_google_button_is_offered_only_when_a_client_id_is_configured(server: Any, settings_from: Any) -> None:
    # Given no client id
    settings_from("FASTHOOK_GOOGLE_CLIENT_ID", None)
    without = json.loads(fetch(server, "/ui/config.json")[2])

    # When one is configured
    settings_from("FASTHOOK_GOOGLE_CLIENT_ID", "1234.apps.googleusercontent.com")
    status, headers, body = fetch(server, "/ui/config.json")

    # Then the page is told, and told nothing else
    assert without == {"google_client_id": None}
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"google_client_id": "1234.apps.googleusercontent.com"}


def test_the_dashboard_routes_are_not_api_operations_in_the_openapi_document(server: Any) -> None:
    # When
    status, _, body = fetch(server, "/openapi.json")

    # Then
    paths = json.loads(body)["paths"]
    assert status == 200
    assert "/" not in paths and not any(path.startswith("/ui") for path in paths)


def gateway_event(stage_path: str, resource: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """The REST API proxy event API Gateway sends for a GET of `stage_path` (stage included, as in AWS)."""
    return {
        "resource": resource,
        "path": stage_path.removeprefix("/api") or "/",
        "httpMethod": "GET",
        "headers": {"accept": "text/html,*/*"},
        "multiValueHeaders": {"accept": ["text/html,*/*"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": "GET", "path": stage_path, "stage": "api"},
        "body": None,
        "isBase64Encoded": False,
    }


def test_in_api_gateway_the_stage_root_without_its_slash_redirects_so_relative_asset_links_work() -> None:
    # Given the deployed app behind API Gateway's `api` stage
    from chalice.local import LambdaContext

    from app import app

    context = LambdaContext(function_name="api_handler", memory_size=512)

    # When the stage root is opened without and with its slash, and an asset is fetched
    bare = app(gateway_event("/api", "/"), context)
    page = app(gateway_event("/api/", "/"), context)
    script = app(gateway_event("/api/ui/app.js", "/ui/{file}", {"file": "app.js"}), context)

    # Then the browser is sent to `/api/`, where `ui/app.js` resolves inside the stage, and text stays text
    assert (bare["statusCode"], bare["headers"]["Location"]) == (308, "/api/")
    assert page["statusCode"] == 200 and page["body"].startswith("<!doctype html>")
    assert script["statusCode"] == 200 and not script.get("isBase64Encoded")
    assert script["headers"]["Content-Type"] == "text/javascript; charset=utf-8"
