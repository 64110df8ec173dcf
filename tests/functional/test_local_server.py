"""The local HTTP server over real sockets: what `make run` users and curl see, not chalice's test client.

One embedded stack (moto on loopback, resources from infra/) and one server serve the whole module;
no test depends on another's data. The body limit is lowered so the 413 paths cost a few kilobytes.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.server import LocalServer, function_url_event, function_url_reply
from local.stack import EmbeddedStack, free_port
from tests.support.factories import make_source, unique_name

PROJECT_DIR = Path(__file__).resolve().parents[2]
BODY_LIMIT = 4096
PREFIXES = ["", "/v1", "/api/control/v1"]


@dataclass
class Http:
    """A tiny JSON client of the server under test; `post(path, body)` also fits the factories."""

    port: int
    token: str | None = None
    prefix: str = "/v1"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, http.client.HTTPResponse]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        return response.status, (json.loads(raw) if raw else None), response

    def get(self, path: str) -> tuple[int, Any]:
        status, body, _ = self.request("GET", self.prefix + path)
        return status, body

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        status, answer, _ = self.request("POST", self.prefix + path, None if body is None else json.dumps(body))
        return status, answer


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    patch = pytest.MonkeyPatch()
    patch.setenv("FASTHOOK_MAX_BODY_BYTES", str(BODY_LIMIT))
    # Bind first on a port the OS picks, then tell the stack which port ingest URLs should name.
    with LocalServer(0) as local, EmbeddedStack(http_port=local.port, stage="httptest"):
        yield local
    patch.undo()


@pytest.fixture(scope="module")
def anon(server: LocalServer) -> Http:
    return Http(server.port)


@pytest.fixture(scope="module")
def user(anon: Http) -> Http:
    status, session = anon.post("/auth/demo/login")
    assert status == 200, session
    return Http(anon.port, token=session["token"])


def assert_error_shape(body: Any) -> None:
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and re.fullmatch(r"[a-z_]+", body["error"]), body
    assert isinstance(body.get("message"), str) and body["message"], body


@pytest.mark.parametrize("prefix", PREFIXES)
def test_health_answers_under_every_control_prefix(anon: Http, prefix: str) -> None:
    # When
    status, body, _ = anon.request("GET", f"{prefix}/health")

    # Then
    assert (status, body) == (200, {"status": "ok"})


@pytest.mark.parametrize("prefix", PREFIXES)
def test_unknown_route_is_a_json_404_naming_the_method_and_path(anon: Http, prefix: str) -> None:
    # When
    status, body, response = anon.request("GET", f"{prefix}/no-such-thing?x=1")

    # Then
    assert status == 404
    assert response.getheader("Content-Type") == "application/json"
    assert body == {"error": "not_found", "message": f"No route for GET {prefix}/no-such-thing"}


def test_unknown_route_with_a_bearer_token_is_still_a_404(user: Http) -> None:
    # When
    status, body, _ = user.request("DELETE", "/v1/sources/src_x/nothing/here")

    # Then
    assert status == 404
    assert body["error"] == "not_found"


def test_wrong_method_on_a_known_route_is_a_json_405(anon: Http) -> None:
    # When
    status, body, response = anon.request("DELETE", "/v1/health")

    # Then
    assert status == 405
    assert_error_shape(body)
    assert body["error"] == "method_not_allowed"
    assert response.getheader("Allow") == "GET"


def test_invalid_json_body_is_a_400_with_error_and_message(user: Http) -> None:
    # When
    status, body, _ = user.request("POST", "/v1/sources", body="{not json")

    # Then
    assert status == 400
    assert_error_shape(body)


def test_demo_login_token_creates_and_lists_a_source_over_http(user: Http) -> None:
    # Given
    name = unique_name("http-src")

    # When
    created = make_source(user, name)
    status, listed = user.get(f"/sources?name={name}")

    # Then
    assert status == 200
    assert [source["id"] for source in listed["models"]] == [created["id"]]
    assert created["url"] == f"http://127.0.0.1:{user.port}/e/{created['id']}"


def test_ingest_path_with_a_suffix_and_query_answers_json(user: Http) -> None:
    # Given
    source = make_source(user)

    # When
    status, body, _ = user.request("POST", f"/e/{source['id']}/orders/42?attempt=1", body='{"hello": "world"}')

    # Then: 501 until ingest lands, then the ingest answer; JSON either way.
    assert status in (200, 404, 501)
    assert isinstance(body, dict)
    if status != 200:
        assert_error_shape(body)


def test_body_above_the_limit_is_refused_with_413(user: Http) -> None:
    # When
    status, body, response = user.request("POST", "/v1/sources", body=b"x" * (BODY_LIMIT + 1))

    # Then
    assert status == 413
    assert body["error"] == "payload_too_large"
    assert response.getheader("Connection") == "close"


def test_chunked_body_above_the_limit_is_refused_with_413(user: Http) -> None:
    # Given: http.client sends an iterator without a length as chunks
    chunks = iter([b"x" * 1024] * 8)

    # When
    status, body, _ = user.request("POST", "/v1/sources", body=chunks)

    # Then
    assert status == 413
    assert body["error"] == "payload_too_large"


def test_chunked_body_within_the_limit_is_read(user: Http) -> None:
    # Given
    payload = json.dumps({"name": unique_name("chunked")}).encode()

    # When
    status, body, _ = user.request("POST", "/v1/sources", body=iter([payload[:5], payload[5:]]))

    # Then
    assert status == 201, body


def test_server_keeps_serving_after_a_malformed_request(anon: Http) -> None:
    # Given
    with socket.create_connection(("127.0.0.1", anon.port), timeout=5) as raw:
        raw.sendall(b"POST /v1/sources HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        answer = b"".join(iter(lambda: raw.recv(4096), b""))  # the server closes after a bad request

    # When
    status, body, _ = anon.request("GET", "/health")

    # Then
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert_error_shape(json.loads(payload))
    assert (status, body) == (200, {"status": "ok"})


def test_ingest_event_is_what_a_lambda_function_url_would_send() -> None:
    # Given
    headers = [("Content-Type", "application/octet-stream"), ("X-Dup", "a"), ("x-dup", "b"), ("Cookie", "k=1; j=2")]

    # When
    event = function_url_event(
        method="PUT",
        target="/e/src_1/a/b?x=1&x=2&y=",
        headers=headers,
        body=b"\xff\x00",
        source_ip="127.0.0.1",
        host="127.0.0.1:8000",
    )

    # Then
    assert event["rawPath"] == "/e/src_1/a/b" and event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"] == {"content-type": "application/octet-stream", "x-dup": "a,b"}
    assert event["cookies"] == ["k=1", "j=2"]
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert (event["body"], event["isBase64Encoded"]) == ("/wA=", True)


def test_ingest_result_is_written_back_as_http() -> None:
    # When
    explicit = function_url_reply(
        {
            "statusCode": 202,
            "headers": {"X-Id": "1", "Content-Length": "999"},
            "body": "aGk=",
            "isBase64Encoded": True,
            "cookies": ["s=1"],
        }
    )
    implicit = function_url_reply({"status": "SUCCESS"})

    # Then
    assert (explicit.status, explicit.body) == (202, b"hi")
    assert ("X-Id", "1") in explicit.headers and ("Set-Cookie", "s=1") in explicit.headers
    assert all(name.lower() != "content-length" for name, _ in explicit.headers)
    assert (implicit.status, json.loads(implicit.body)) == (200, {"status": "SUCCESS"})


# ---- make run ---------------------------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    # The module's stack exported FASTHOOK_* into this process; `make run` must start from scratch.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTHOOK_") and k != "MOTO_PORT"}
    return {**env, **extra}


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def _read_until(lines: queue.Queue[str], marker: str, timeout_s: float) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {timeout_s}s; got:\n{''.join(seen)}")


def test_make_run_prints_url_api_key_and_webhook_curl_then_exits_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    # Given
    port = free_port()
    with (tmp_path / "stderr.log").open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.run"],
            cwd=PROJECT_DIR,
            text=True,
            env=_clean_env(FASTHOOK_PORT=str(port)),
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        try:
            # When
            banner = _read_until(_lines(process.stdout), "Ctrl-C", timeout_s=45)
            api_key = re.search(r"fhp_[A-Za-z0-9_-]+", banner)
            assert api_key is not None, banner
            status, sources, _ = Http(port, token=api_key.group(0)).request("GET", "/v1/sources?name=demo-source")
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)

    # Then
    url = f"http://127.0.0.1:{port}"
    assert url in banner
    source_id = sources["models"][0]["id"]
    assert status == 200
    assert re.search(rf"curl .*{re.escape(url)}/e/{source_id}", banner), banner
    assert f"curl -s {url}/v1/sources -H 'Authorization: Bearer {api_key.group(0)}'" in banner
    assert f"Dashboard:     {url}/" in banner
    assert code == 0, (tmp_path / "stderr.log").read_text()


def test_make_run_on_a_taken_port_says_so_and_exits_non_zero(server: LocalServer) -> None:
    # When
    result = subprocess.run(
        [sys.executable, "-m", "local.run"],
        cwd=PROJECT_DIR,
        text=True,
        env=_clean_env(FASTHOOK_PORT=str(server.port)),
        capture_output=True,
        timeout=60,
        check=False,
    )

    # Then
    assert result.returncode != 0
    assert f"port {server.port}" in result.stderr and "already in use" in result.stderr
