"""`make run`: FastHook on 127.0.0.1 with nothing but Python, ready for a first webhook within seconds.

Starts the embedded stack and the local HTTP server, then sets up the demo team through the public
API, over HTTP, exactly as a user would (demo login, project secrets, PUT upserts of a source, a
mock destination and a connection). Going through HTTP rather than calling the use cases proves the
printed commands work before they are printed. Serves until SIGINT or SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from local.server import LocalServer, PortInUseError
from local.stack import EmbeddedStack, StackError
from local.workers import Workers

DEFAULT_PORT = 8000
DEMO_SOURCE = {"name": "demo-source", "description": "Created by make run"}
DEMO_DESTINATION = {
    "name": "demo-mock",
    "type": "MOCK_API",
    "config": {"path": "/demo"},
    "description": "Created by make run",
}
DEMO_CONNECTION = "demo"


class _Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM; unwinds startup or serving alike."""


class BootstrapError(RuntimeError):
    pass


@dataclass(frozen=True)
class Demo:
    api_key: str
    source_id: str
    destination_id: str
    connection_id: str


def _call(port: int, method: str, path: str, *, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    if response.status >= 300:
        raise BootstrapError(f"{method} {path} answered {response.status}: {raw[:500].decode(errors='replace')}")
    return json.loads(raw) if raw else None


def bootstrap_demo(port: int) -> Demo:
    """Log in as demo and upsert the demo source, destination and connection (safe to repeat)."""
    session = _call(port, "POST", "/auth/demo/login")["token"]
    api_key = _call(port, "GET", "/project-secrets", token=session)["api_key"]["value"]
    source = _call(port, "PUT", "/v1/sources", token=api_key, body=DEMO_SOURCE)
    destination = _call(port, "PUT", "/v1/destinations", token=api_key, body=DEMO_DESTINATION)
    connection = _call(
        port,
        "PUT",
        "/v1/connections",
        token=api_key,
        body={"name": DEMO_CONNECTION, "source_id": source["id"], "destination_id": destination["id"]},
    )
    return Demo(api_key, source["id"], destination["id"], connection["id"])


def banner(url: str, demo: Demo, stack: EmbeddedStack) -> str:
    auth = shlex.quote(f"Authorization: Bearer {demo.api_key}")
    json_type = shlex.quote("Content-Type: application/json")
    new_source = shlex.quote(json.dumps({"name": "my-source"}))
    webhook = shlex.quote(json.dumps({"hello": "world"}))
    aws = f"{stack.endpoint} ({'embedded moto' if stack.embedded else 'FASTHOOK_AWS_ENDPOINT'})"
    return "\n".join(
        [
            "",
            f"FastHook is running at {url}",
            f"  Dashboard:     {url}/ (log in as the demo user)",
            f"  AWS endpoint:  {aws}",
            f"  Demo API key:  {demo.api_key}",
            f"  Demo source:   demo-source ({demo.source_id}) -> demo-mock (MOCK_API /demo), connection demo",
            "",
            "List sources:",
            f"  curl -s {url}/v1/sources -H {auth}",
            "",
            "Create a source:",
            f"  curl -s -X POST {url}/v1/sources -H {auth} -H {json_type} -d {new_source}",
            "",
            "Send a webhook:",
            f"  curl -s -X POST {url}/e/{demo.source_id} -H {json_type} -d {webhook}",
            "",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _ignore(signum: int, frame: FrameType | None) -> None:
    pass


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The deliver worker's CloudWatch metrics are EMF lines on stdout: CloudWatch reads them in AWS,
    # here they would only bury the banner. (powertools reads this variable itself.)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    port = int(os.environ.get("FASTHOOK_PORT") or DEFAULT_PORT)
    server: LocalServer | None = None
    stack: EmbeddedStack | None = None
    workers: Workers | None = None
    try:
        # Bind first: a taken port is the likeliest failure, and it should not cost a moto start.
        server = LocalServer(port)
        stack = EmbeddedStack(http_port=server.port).start()
        server.start()
        # The route and deliver pollers and the sweeper: what Lambda's event sources do in AWS.
        workers = Workers().start()
        demo = bootstrap_demo(server.port)
        print(banner(server.url, demo, stack), flush=True)
        while True:
            time.sleep(3600)
    except _Stop:
        print("\nStopping FastHook.", flush=True)
        return 0
    except PortInUseError:
        print(
            f"FastHook cannot start: port {port} on 127.0.0.1 is already in use by another process.\n"
            f"Stop that process, or choose another port: FASTHOOK_PORT={port + 1} make run",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except (StackError, BootstrapError) as exc:
        print(f"FastHook cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave moto's thread half-stopped.
        signal.signal(signal.SIGINT, _ignore)
        signal.signal(signal.SIGTERM, _ignore)
        if workers is not None:
            workers.stop()
        if server is not None:
            server.stop()
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
