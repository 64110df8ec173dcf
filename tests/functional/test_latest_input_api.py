"""GET /connections/{id}/latest-input: the newest request the connection's source received, with its data.

Requests are ingested by the real ingest use case against moto, as in test_observe_api.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.control import resources as res
from chalicelib.domain.ids import Prefix, new_id
from tests.functional.test_observe_api import World
from tests.support.factories import make_destination, make_source


@pytest.fixture()
def world(api, clock) -> World:
    return World(api, clock)


def foreign_connection(world: World) -> tuple[str, str, str]:
    """(team_id, connection_id, source_id) of a connection that exists, but in another team."""
    team_id, connection_id = new_id(Prefix.TEAM), new_id(Prefix.CONNECTION)
    source_id = new_id(Prefix.SOURCE)
    doc: dict[str, Any] = {
        "id": connection_id,
        "team_id": team_id,
        "name": "theirs",
        "source_id": source_id,
        "destination_id": new_id(Prefix.DESTINATION),
        "version": 1,
    }
    world.deps.resources.create(team_id, res.CONNECTION.name, doc, unique=f"{source_id}/theirs")
    return team_id, connection_id, source_id


def test_the_newest_request_of_the_connections_source_is_returned_and_not_another_sources_newer_one(world):
    # Given: two requests on the connection's source, then a newer one on another source
    connection = world.connection()
    world.ingest(connection["source_id"], b'{"n":1}', path="/first", query="a=1")
    newest = world.ingest(
        connection["source_id"], b'{"n":2}', headers={"content-type": "application/json", "x-a": "b"}, path="/second"
    )
    world.ingest(make_source(world.api)["id"], b'{"n":3}', path="/elsewhere")
    # When
    status, body = world.api.get(f"/connections/{connection['id']}/latest-input")
    # Then
    assert status == 200, body
    assert body["id"] == newest and body["source_id"] == connection["source_id"]
    assert body["data"] == {
        "method": "POST",
        "path": "/second",
        "query": "x=1",
        "headers": {"content-type": "application/json", "x-a": "b"},
        "body": {"n": 2},
    }
    assert world.api.get(f"/requests/{newest}")[1] == body


def test_the_latest_input_is_shared_by_every_connection_of_the_source(world):
    # Given
    first = world.connection()
    second = world.connection(source=first["source"], destination=make_destination(world.api))
    request_id = world.ingest(first["source_id"])
    # When
    answers = [world.api.get(f"/connections/{c['id']}/latest-input") for c in (first, second)]
    # Then
    assert [(s, b["id"]) for s, b in answers] == [(200, request_id), (200, request_id)]


def test_a_source_that_has_received_nothing_yet_is_404_with_a_clear_message(world):
    # Given: a request on another source only
    connection = world.connection()
    world.ingest(make_source(world.api)["id"])
    # When
    status, body = world.api.get(f"/connections/{connection['id']}/latest-input")
    # Then
    assert status == 404, body
    assert body["error"] == "not_found"
    assert body["message"] == f"no request has reached source {connection['source_id']} yet"


@pytest.mark.parametrize(
    "bad_id", ["nonsense", "web_x", "src_01ARZ3NDEKTSV4RRFFQ69G5FAV", "web_01ARZ3NDEKTSV4RRFFQ69G5FAV"]
)
def test_a_malformed_or_unknown_connection_id_is_404(world, bad_id):
    # When
    status, body = world.api.get(f"/connections/{bad_id}/latest-input")
    # Then
    assert status == 404, body
    assert body["error"] == "not_found"


def test_another_teams_connection_is_404_even_when_its_source_has_requests(world):
    # Given
    team_id, connection_id, source_id = foreign_connection(world)
    world.request(team_id=team_id, source_id=source_id)
    # When
    status, body = world.api.get(f"/connections/{connection_id}/latest-input")
    # Then
    assert status == 404, body
    assert body["error"] == "not_found"
    assert "Connection" in body["message"]


@pytest.mark.parametrize("prefix", ["", "/api/control/v1"])
def test_the_route_answers_under_every_control_prefix(world, prefix):
    # Given
    connection = world.connection()
    request_id = world.ingest(connection["source_id"])
    # When
    status, body = world.api.as_(world.api.token, prefix).get(f"/connections/{connection['id']}/latest-input")
    # Then
    assert status == 200, body
    assert body["id"] == request_id
