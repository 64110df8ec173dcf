"""The embedded AWS behind `make run` and the HTTP-level tests: moto in this process, or any endpoint.

FastHook's adapters only know an endpoint URL, so the local stack is "an endpoint plus the resources
of infra/ on it". With nothing configured we start moto's server on loopback; with
FASTHOOK_AWS_ENDPOINT set (a shared moto, LocalStack, ...) we only provision there. Either way the
FASTHOOK_* variables that point at the resources are exported and the app's wiring is reset, so the
next request builds its adapters against this stack. `stop()` puts the environment back, which lets a
test module use a stack without leaking it into the next module.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

DEFAULT_REGION = "us-east-1"
DEFAULT_STAGE = "local"


class StackError(RuntimeError):
    """The embedded stack could not start; the message says what to change."""


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedDynamoDB:
    """WSGI middleware: DynamoDB requests run one at a time; every other service stays concurrent.

    Each DynamoDB request is atomic in AWS: a ConditionExpression is evaluated and the write applied as
    one step. moto evaluates the condition and then writes without a lock, so two threads can both pass
    the same condition (two workers both win one event's lease). The embedded stack serves workers,
    the API and ingest from threads, so it serializes DynamoDB calls, restoring exactly AWS's
    per-request guarantee and no more: an adapter's read-then-conditional-write still interleaves with
    other threads between its calls, as it does in AWS. SQS long polls and S3 transfers are not held up.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    @staticmethod
    def is_dynamodb(environ: dict[str, Any]) -> bool:
        # Every DynamoDB (and DynamoDB Streams) call is a JSON POST naming its operation in X-Amz-Target.
        return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.is_dynamodb(environ):
            return self._app(environ, start_response)
        with self._lock:
            answer = self._app(environ, start_response)
            try:
                # The body is produced inside the lock too: moto may build it lazily from the backend's state.
                return [b"".join(answer)]
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()


class InProcessLambdas:
    """WSGI middleware: Lambda Invoke calls for FastHook's bulk task functions run our handlers in this process.

    moto's Step Functions interpreter invokes a Task's Lambda through the Lambda API on this server;
    moto would need docker to run a function's code. The task functions' names are known (infra/), so
    their invocations are answered here by calling the same handler the deployed Lambda runs, and a
    handler's exception is answered as Lambda reports one (X-Amz-Function-Error), so the state
    machine's Retry and Catch see what they would see in AWS. Every other request goes to moto.
    """

    _INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")

    def __init__(self, app: WsgiApp, handlers: dict[str, Callable[[Any, Any], Any]]) -> None:
        self._app = app
        self._handlers = handlers

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = self._INVOKE.match(str(environ.get("PATH_INFO", "")))
        if found is None or environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        # FunctionName may be a name or a full ARN (arn:aws:lambda:<region>:<account>:function:<name>).
        name = urllib.parse.unquote(found.group("name")).rsplit(":function:", 1)[-1]
        handler = self._handlers.get(name)
        if handler is None:
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = [("Content-Type", "application/json")]
        try:
            answer = json.dumps(handler(json.loads(raw or b"{}"), None)).encode()
        except Exception as exc:  # any handler failure is the function's error, reported as AWS reports it
            logging.getLogger("fasthook.local").exception("bulk task %s failed", name)
            answer = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        start_response("200 OK", [*headers, ("Content-Length", str(len(answer)))])
        return [answer]


def bulk_task_handlers(stage: str) -> dict[str, Callable[[Any, Any], Any]]:
    """The bulk task functions of a stage by their deployed name, and the handler each runs."""
    from chalicelib.entrypoints import bulk_tasks
    from infra import resources as r

    by_chalice_name = {
        "bulk_plan": bulk_tasks.handle_plan,
        "bulk_pages": bulk_tasks.handle_pages,
        "bulk_fail": bulk_tasks.handle_fail,
    }
    return {f"{r.stack_name(stage)}-{function}": by_chalice_name[function] for _, function in r.BULK.tasks}


class MotoServer:
    """moto's server on a thread (as moto's ThreadedMotoServer), with DynamoDB requests serialized."""

    def __init__(self, ip_address: str, port: int, lambdas: dict[str, Callable[[Any, Any], Any]] | None = None) -> None:
        self._address = (ip_address, port)
        self._lambdas = lambdas or {}
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = InProcessLambdas(SerializedDynamoDB(DomainDispatcherApplication(create_backend_app)), self._lambdas)
        # Bound here, in the caller's thread: a port that cannot be bound raises now instead of hanging.
        self._server = make_server(*self._address, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None


class EmbeddedStack:
    """Starts (or reuses) an AWS endpoint, provisions infra/ on it and points FastHook at it.

    Usable as a context manager. `env` holds every variable that was exported, so callers can hand the
    same configuration to a subprocess.
    """

    def __init__(
        self,
        *,
        http_port: int | None = None,
        stage: str | None = None,
        endpoint: str | None = None,
        moto_port: int | None = None,
        region: str | None = None,
    ) -> None:
        self.http_port = http_port if http_port is not None else int(os.environ.get("FASTHOOK_PORT") or 8000)
        self.stage = stage or os.environ.get("FASTHOOK_STAGE") or DEFAULT_STAGE
        self.endpoint = endpoint or os.environ.get("FASTHOOK_AWS_ENDPOINT") or None
        self.moto_port = moto_port if moto_port is not None else int(os.environ.get("FASTHOOK_MOTO_PORT") or 0)
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.env: dict[str, str] = {}
        self._moto: Any = None
        self._saved: dict[str, str | None] = {}

    @property
    def embedded(self) -> bool:
        """True when this stack runs moto itself (no FASTHOOK_AWS_ENDPOINT was given)."""
        return self._moto is not None

    def start(self) -> EmbeddedStack:
        self._default_credentials()
        try:
            if self.endpoint is None:
                self.endpoint = self._start_moto()
            variables = self._provision()
        except BaseException:
            self.stop()  # a half-started stack must not keep moto's thread or our variables around
            raise
        variables.update(
            {
                "FASTHOOK_AWS_ENDPOINT": self.endpoint,
                "FASTHOOK_INGEST_URL": f"http://127.0.0.1:{self.http_port}",
                # Local receivers live on 127.0.0.1; the deployed default keeps private addresses blocked.
                "FASTHOOK_ALLOW_PRIVATE_DESTINATIONS": "true",
                "AWS_DEFAULT_REGION": self.region,
            }
        )
        self._export(variables)
        return self

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
            self.endpoint = None
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()
        self._reset_app()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _default_credentials(self) -> None:
        # botocore refuses to sign without credentials; moto accepts any, and "testing" can never
        # authenticate against a real account should an endpoint be misconfigured.
        import boto3

        if boto3.session.Session().get_credentials() is None:
            self._export({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}, reset=False)

    def _start_moto(self) -> str:
        # werkzeug logs every AWS call moto serves; FastHook's own access log is enough.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        if self.moto_port and not _port_is_free(self.moto_port):
            raise StackError(f"port {self.moto_port} (FASTHOOK_MOTO_PORT) is already in use on 127.0.0.1")
        server = MotoServer("127.0.0.1", self.moto_port, bulk_task_handlers(self.stage))
        try:
            server.start()
        except OSError as exc:  # taken between the check and the bind
            raise StackError(f"could not listen on 127.0.0.1:{self.moto_port} for moto: {exc}") from exc
        self._moto = server
        host, port = server.get_host_and_port()
        self.moto_port = port
        # moto's Step Functions interpreter calls back into the server at localhost:$MOTO_PORT.
        self._export({"MOTO_PORT": str(port)}, reset=False)
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request(
                "POST",
                "/moto-api/config",
                headers={"Content-Type": "application/json"},
                body=json.dumps({"stepfunctions": {"execute_state_machine": True}}),
            )
            answer = connection.getresponse()
            answer.read()
        finally:
            connection.close()
        if answer.status >= 300:
            raise StackError(f"moto refused the Step Functions setting: HTTP {answer.status}")
        return f"http://{host}:{port}"

    def _provision(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        from chalicelib.adapters.dynamo.client import make_client
        from local.provision import provision

        def client(service: str) -> Any:
            return make_client(service, region=self.region, endpoint=self.endpoint)

        try:
            return provision(
                stage=self.stage,
                dynamodb=client("dynamodb"),
                sqs=client("sqs"),
                s3=client("s3"),
                region=self.region,
                stepfunctions=client("stepfunctions"),
            )
        except (BotoCoreError, ClientError) as exc:
            raise StackError(f"could not create FastHook's resources on {self.endpoint}: {exc}") from exc

    def _export(self, variables: dict[str, str], *, reset: bool = True) -> None:
        for name, value in variables.items():
            self._saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        self.env.update(variables)
        if reset:
            self._reset_app()

    @staticmethod
    def _reset_app() -> None:
        from chalicelib import wiring

        wiring.reset()
