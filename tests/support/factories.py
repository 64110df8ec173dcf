"""Factory helpers for control resources, driven through the public API as a user would.

Each helper POSTs a valid body, asserts the 201 and returns the created resource's JSON. Names are
generated when not given, so a test only spells out what it is about. `api` is the functional
tier's client (anything with `post(path, body) -> (status, json)`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory import FixedClock
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.timefmt import iso

_counter = itertools.count(1)

DEFAULT_URL = "https://receiver.example.test/hooks"
DEFAULT_CODE = "addHandler('transform', (request, context) => request);"


def unique_name(prefix: str) -> str:
    """A name no other factory call in this process has used: `prefix-7`."""
    return f"{prefix}-{next(_counter)}"


def _create(api: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, created = api.post(path, body)
    assert status == 201, (path, status, created)
    return created


def source_body(name: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"name": name or unique_name("src"), **fields}


def destination_body(name: str | None = None, *, url: str = DEFAULT_URL, **fields: Any) -> dict[str, Any]:
    """An HTTP destination body; pass `config=` to replace the whole config (e.g. a MOCK_API path)."""
    body: dict[str, Any] = {"name": name or unique_name("dest"), "config": {"url": url}}
    body.update(fields)
    return body


def transformation_body(name: str | None = None, *, code: str = DEFAULT_CODE, **fields: Any) -> dict[str, Any]:
    return {"name": name or unique_name("trs"), "code": code, **fields}


def make_source(api: Any, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """Create a source (`POST /sources`) and return it."""
    return _create(api, "/sources", source_body(name, **fields))


def make_destination(api: Any, name: str | None = None, *, url: str = DEFAULT_URL, **fields: Any) -> dict[str, Any]:
    """Create a destination (`POST /destinations`), HTTP to `url` unless `config=` says otherwise."""
    return _create(api, "/destinations", destination_body(name, url=url, **fields))


def make_transformation(
    api: Any, name: str | None = None, *, code: str = DEFAULT_CODE, **fields: Any
) -> dict[str, Any]:
    """Create a transformation (`POST /transformations`) and return it."""
    return _create(api, "/transformations", transformation_body(name, code=code, **fields))


def make_connection(
    api: Any,
    name: str | None = None,
    *,
    source: dict[str, Any] | None = None,
    destination: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Create a connection (`POST /connections`) between `source` and `destination`.

    Either may be a resource returned by another factory; a missing one is created first. Extra
    fields (`rules`, `description`, or `source_id` to override) go into the body as given.
    """
    source = source or make_source(api)
    destination = destination or make_destination(api)
    body: dict[str, Any] = {
        "name": name or unique_name("conn"),
        "source_id": source["id"],
        "destination_id": destination["id"],
    }
    body.update(fields)
    return _create(api, "/connections", body)


@contextmanager
def running_fasthook(clock: FixedClock | None = None) -> Iterator[tuple[Any, FixedClock]]:
    """A FastHook on moto with a demo session, for a class of tests that share one world.

    The functional `api` fixture builds a fresh stack per test (about half a second); tests that
    only read, or only send bodies that are rejected, can share one via a class-scoped fixture.
    Yields the logged-in client (the functional tier's `Api`) and the clock it runs on.
    """
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import wiring
    from chalicelib.settings import get_settings
    from local.provision import provision
    from tests.functional.conftest import Api

    clock = clock or FixedClock(datetime.now(UTC).replace(microsecond=0))
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        env = provision(
            stage="test",
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            s3=boto3.client("s3"),
            region="us-east-1",
        )
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("FASTHOOK_INGEST_URL", "https://hooks.example.test")
        wiring.reset()
        wiring.use(wiring.Container(settings=get_settings(), clock=clock))
        import app as fasthook

        try:
            with Client(fasthook.app) as client:
                anon = Api(client)
                status, body = anon.post("/auth/demo/login")
                assert status == 200, body
                yield anon.as_(body["token"]), clock
        finally:
            wiring.reset()


def stored_request(at: datetime, *, team_id: str, **fields: Any) -> dict[str, Any]:
    """A Request document as ingest stores an accepted `{}` POST at `at`, for tests that write records directly."""
    return {
        "id": new_id(Prefix.REQUEST),
        "team_id": team_id,
        "source_id": new_id(Prefix.SOURCE),
        "status": "accepted",
        "rejection_cause": None,
        "verified": True,
        "method": "POST",
        "path": "/p",
        "query": "",
        "headers": {"content-type": "application/json"},
        "body": b"{}",
        "body_key": None,
        "body_size": 2,
        "content_type": "application/json",
        "external_id": None,
        "ingested_at": iso(at),
        "events_count": 0,
        "ignored_count": 0,
        "routed_at": None,
        "is_retry": False,
        "retry_of": None,
        "retry_kind": None,
        "batch_operation_id": None,
        "expires_at": int((at + timedelta(days=30)).timestamp()),
        **fields,
    }
