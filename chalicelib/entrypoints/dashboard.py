"""The dashboard: `GET /` answers its page and `GET /ui/{file}` its assets, straight from chalicelib/dashboard/.

The dashboard is static files (no build step), so they ship inside chalicelib/ and `chalice package`
carries them to Lambda with the code. These are not control API routes: they are a plain blueprint,
outside the OpenAPI document (`DASHBOARD_PATHS` names them so the document's completeness check can skip
them). Only files that are in the directory when the process starts are served; any other name,
including a path traversal attempt, is FastHook's usual 404 JSON. The dashboard's own pages are hash
routes (`/#/requests`), so no other path is ever claimed here. `/ui/config.json` is the one computed
asset: the public facts the page needs about this deployment (whether Google login is configured).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.domain.errors import NotFoundError
from chalicelib.entrypoints.api import error_response
from chalicelib.settings import get_settings

ASSET_DIR = Path(__file__).resolve().parent.parent / "dashboard"
DASHBOARD_PATHS = ("/", "/ui/{file}")
CONFIG_FILE = "config.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# A plain file name with a known extension: no separators, no dot files, so nothing outside the folder.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
GOOGLE = "https://accounts.google.com"
# The page talks only to its own origin, plus Google's sign-in script and frame when Google login is on.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'self'; script-src 'self' {GOOGLE}/gsi/client; style-src 'self' {GOOGLE}/gsi/style; "
        f"img-src 'self' data:; connect-src 'self' {GOOGLE}/gsi/; frame-src {GOOGLE}/gsi/; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

bp = Blueprint(__name__)


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    etag: str


@cache
def _assets() -> dict[str, Asset]:
    """Every servable file, read once per process (Lambda containers are rebuilt on deploy)."""
    found: dict[str, Asset] = {}
    for path in sorted(ASSET_DIR.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and content_type and SAFE_NAME.match(path.name) and path.name != CONFIG_FILE:
            body = path.read_text(encoding="utf-8")
            found[path.name] = Asset(body, content_type, _etag(body))
    return found


def _etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'


def _config() -> Asset:
    """What the page needs to know about this deployment: only public values (a Google client id is public)."""
    body = json.dumps({"google_client_id": get_settings().google_client_id or None})
    return Asset(body, CONTENT_TYPES[".json"], _etag(body))


def _serve(asset: Asset) -> Response:
    # No hashed file names (no build step), so the browser revalidates each time and gets a 304 if unchanged.
    headers = {"Content-Type": asset.content_type, "Cache-Control": "no-cache", "ETag": asset.etag, **SECURITY_HEADERS}
    request = bp.current_request
    if request is not None and asset.etag in (request.headers.get("if-none-match") or ""):
        return Response(body="", status_code=304, headers=headers)
    return Response(body=asset.body, status_code=200, headers=headers)


@bp.route("/", methods=["GET"], cors=False)
def index() -> Response:
    # API Gateway also answers the stage root without its slash (`/api`), where the page's relative
    # `ui/...` links would miss the stage: send the browser to `/api/` first.
    request = bp.current_request
    public_path = str((request.context or {}).get("path") or "/") if request is not None else "/"
    if not public_path.endswith("/"):
        return Response(body="", status_code=308, headers={"Location": public_path + "/", **SECURITY_HEADERS})
    return _serve(_assets()["index.html"])


@bp.route("/ui/{file}", methods=["GET"], cors=False)
def asset(file: str) -> Response:
    if file == CONFIG_FILE:
        return _serve(_config())
    found = _assets().get(file)
    if found is None:
        return error_response(NotFoundError(f"No dashboard asset named {file[:80]!r}"))
    return _serve(found)
