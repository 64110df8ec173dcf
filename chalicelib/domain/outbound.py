"""What FastHook sends to a destination, decided without touching the network.

The deliver worker turns a stored request plus a destination into one `OutboundRequest`; an HTTP
sender (or the mock API) turns that into a `DeliveryResult`. Keeping the first step pure means the
URL, the headers and the signature a receiver sees are fixed by this module alone, so the tests can
state exactly what a destination gets, and every sender signs and forwards the same way.

Header policy. The provider's request is forwarded as it came (method, body bytes, headers) except:
- hop-by-hop headers, which describe the provider's connection to FastHook, not FastHook's connection
  to the destination: `connection` and every header it names, `keep-alive`, `proxy-*`, `te`,
  `trailer`, `transfer-encoding`, `upgrade`, `expect`; also `host` and `content-length`, which the
  sender recomputes for the new URL and body;
- credentials addressed to FastHook rather than to the destination: `authorization` and `cookie`
  (whatever a provider presents to the ingest URL, for instance a source's BASIC_AUTH check, must
  not travel on to a third host), plus any header the caller names in `strip_headers` (the source's
  API_KEY header);
- `accept-encoding`: FastHook reads the response, not the provider, so the sender negotiates it;
- every inbound `x-fasthook-*` header, so nobody upstream can forge FastHook's own headers;
- headers that cannot be sent on at all (a name that is not an HTTP token, a value with CR, LF or
  NUL).
Provider signature headers (`stripe-signature`, `x-hub-signature-256`, ...) are kept on purpose: the
body bytes are unchanged, so a receiver can still verify them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    BasicAuthCredentials,
    BearerAuth,
    DestinationApiKeyAuth,
    DestinationConfig,
)
from chalicelib.domain.validation import validate

SIGNATURE_HEADER: Final = "x-fasthook-signature"
EVENT_ID_HEADER: Final = "x-fasthook-event-id"
REQUEST_ID_HEADER: Final = "x-fasthook-request-id"
ATTEMPT_COUNT_HEADER: Final = "x-fasthook-attempt-count"
ATTEMPT_TRIGGER_HEADER: Final = "x-fasthook-attempt-trigger"
VERIFIED_HEADER: Final = "x-fasthook-verified"
_OWN_HEADER_PREFIX: Final = "x-fasthook-"

HOP_BY_HOP_HEADERS: Final = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "expect", "host", "content-length"}
)
SOURCE_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie"})
NEGOTIATED_HEADERS: Final = frozenset({"accept-encoding"})

DEFAULT_HTTP_TIMEOUT_S: Final = 30.0

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_FORBIDDEN_VALUE_CHARS = re.compile(r"[\r\n\x00]")
# Characters a path or query may carry as they are; everything else is percent-encoded. `%` is kept
# so an already encoded suffix is not encoded twice.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class DeliveryErrorCode(StrEnum):
    """Why an attempt got no HTTP response; stored as the Attempt's `error_code`."""

    TIMEOUT = "TIMEOUT"
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    DNS_LOOKUP_FAILED = "DNS_LOOKUP_FAILED"
    TLS_ERROR = "TLS_ERROR"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    INVALID_URL = "INVALID_URL"
    # A configured header (a destination credential) that HTTP cannot carry, e.g. one with a newline.
    INVALID_REQUEST = "INVALID_REQUEST"
    SSRF_BLOCKED = "SSRF_BLOCKED"


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTP call to a destination. Headers and body stay out of repr: they hold secrets and payloads."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    timeout_s: float = DEFAULT_HTTP_TIMEOUT_S

    def header(self, name: str) -> str | None:
        """The value of a header, matched case-insensitively; None when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True)
class DeliveryResult:
    """What a destination answered, or why it could not answer (`error_code`).

    `ok` means a 2xx status and no error. `response_body` holds at most the sender's cap; `truncated`
    says the receiver sent more.
    """

    ok: bool
    status: int | None
    response_body: bytes = field(default=b"", repr=False)
    truncated: bool = False
    response_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    error_code: DeliveryErrorCode | None = None
    error_message: str | None = None
    response_latency_ms: int = 0


def sign_body(secret: str, body: bytes) -> str:
    """The `x-fasthook-signature` value: base64 of HMAC-SHA256 over the raw body, keyed by the team secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does with `x-fasthook-signature`: recompute it and compare in constant time."""
    expected = sign_body(secret, body).encode("ascii")
    try:
        given = signature.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


def build_delivery(
    *,
    destination: Mapping[str, Any],
    method: str,
    path_suffix: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    event_id: str,
    request_id: str,
    attempt_number: int,
    trigger: str,
    verified: bool,
    signing_secret: str,
    strip_headers: Iterable[str] = (),
) -> OutboundRequest:
    """The request a destination receives for one attempt at delivering an event.

    `path_suffix` and `query` are what followed the source URL (`/e/src_x/orders?id=1` gives
    `/orders` and `id=1`). `destination` is the stored resource (`type`, `config`); its config was
    validated when it was saved, and is validated again here so a corrupt record fails loudly
    (ValidationError) instead of sending something half-built. A MOCK_API destination has no URL:
    its request carries the path-only form (`/mock/path?query`) for the mock sender.
    """
    config = validate(DestinationConfig, dict(destination.get("config") or {}), prefix="destination.config")
    base = config.url if destination.get("type", "HTTP") != "MOCK_API" else config.path
    if not base:
        raise ValidationError("destination.config.url: is required for an HTTP destination", field="config.url")

    dropped = _dropped_header_names(headers, strip_headers)
    if config.auth_type == "API_KEY":
        dropped.add(_api_key_auth(config).key.lower())
    out_headers = [(name, value) for name, value in headers.items() if _forwardable(name, value, dropped)]

    extra_query: tuple[str, str] | None = None
    if config.auth_type == "BEARER_TOKEN":
        out_headers.append(("authorization", f"Bearer {BearerAuth.model_validate(config.auth).token}"))
    elif config.auth_type == "BASIC_AUTH":
        creds = BasicAuthCredentials.model_validate(config.auth)
        pair = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode("ascii")
        out_headers.append(("authorization", f"Basic {pair}"))
    elif config.auth_type == "API_KEY":
        api_key = _api_key_auth(config)
        if api_key.to == "query":
            extra_query = (api_key.key, api_key.api_key)
        else:
            out_headers.append((api_key.key, api_key.api_key))

    out_headers += [
        (SIGNATURE_HEADER, sign_body(signing_secret, body)),
        (EVENT_ID_HEADER, str(event_id)),
        (REQUEST_ID_HEADER, str(request_id)),
        (ATTEMPT_COUNT_HEADER, str(attempt_number)),
        (ATTEMPT_TRIGGER_HEADER, str(trigger)),
        (VERIFIED_HEADER, "true" if verified else "false"),
    ]
    suffix = "" if config.path_forwarding_disabled else path_suffix
    return OutboundRequest(
        method=(config.http_method or method).upper(),
        url=destination_url(base, suffix, query, extra_query=extra_query),
        headers=tuple(out_headers),
        body=bytes(body),
        timeout_s=float(config.http_timeout or DEFAULT_HTTP_TIMEOUT_S),
    )


def destination_url(base: str, path_suffix: str, query: str, *, extra_query: tuple[str, str] | None = None) -> str:
    """`base` with the forwarded path appended and the inbound query after the destination's own.

    Both queries are kept as raw strings, duplicates and order included, because receivers and
    provider signatures may depend on them; the destination's own parameters come first. A query
    credential (`extra_query`) replaces any parameter of the same name, so a provider cannot supply
    its own. The suffix cannot climb above the destination's path: `..` segments are resolved inside it.
    """
    parts = urlsplit(base)
    path = parts.path
    suffix = _clean_suffix(path_suffix)
    if suffix:
        path = path.rstrip("/") + suffix
    pieces = [p for p in (parts.query, quote(query.lstrip("?"), safe=_QUERY_SAFE)) if p]
    merged = "&".join(pieces)
    if extra_query is not None:
        name, value = extra_query
        kept = [p for p in merged.split("&") if p and unquote_plus(p.split("=", 1)[0]) != name]
        merged = "&".join([*kept, f"{quote(name, safe='')}={quote(value, safe='')}"])
    return urlunsplit((parts.scheme, parts.netloc, path, merged, ""))


def _clean_suffix(suffix: str) -> str:
    if not suffix:
        return ""
    segments = quote(suffix, safe=_PATH_SAFE).lstrip("/").split("/")
    kept: list[str] = []
    for segment in segments:
        # `%2e%2e` counts too: servers decode before they resolve dot segments.
        name = unquote(segment)
        if name == "..":
            if kept:
                kept.pop()
        elif name != ".":
            kept.append(segment)
    if unquote(segments[-1]) in {".", ".."}:
        kept.append("")  # `/a/..` names a directory: keep its trailing slash
    return "/" + "/".join(kept)


def _dropped_header_names(headers: Mapping[str, str], strip_headers: Iterable[str]) -> set[str]:
    dropped = set(HOP_BY_HOP_HEADERS | SOURCE_CREDENTIAL_HEADERS | NEGOTIATED_HEADERS)
    dropped.update(name.lower() for name in strip_headers)
    for name, value in headers.items():
        # RFC 9110 7.6.1: headers listed in Connection apply to that connection only.
        if name.lower() == "connection":
            dropped.update(token.strip().lower() for token in value.split(",") if token.strip())
    return dropped


def _forwardable(name: str, value: str, dropped: set[str]) -> bool:
    lower = name.lower()
    if lower in dropped or lower.startswith(("proxy-", _OWN_HEADER_PREFIX)):
        return False
    return bool(_TOKEN.match(name)) and isinstance(value, str) and not _FORBIDDEN_VALUE_CHARS.search(value)


def _api_key_auth(config: DestinationConfig) -> DestinationApiKeyAuth:
    return DestinationApiKeyAuth.model_validate(config.auth)
