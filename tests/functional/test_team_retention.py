"""Records expire on their team's retention, not on the global setting: request, event and attempt alike.

A team with `retention_days: 7` is created in the account store (no route changes a team's retention
yet); its connection is made through the API, so the source's lookup copy is written by the DynamoDB
control store exactly as in production, and the webhook goes through the real ingest, route and
deliver use cases on moto.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from chalicelib import wiring
from chalicelib.control.auth import SESSION_PREFIX, hash_token
from chalicelib.domain import messages
from chalicelib.domain.ids import Prefix, derived_id, new_id
from chalicelib.domain.timefmt import iso
from chalicelib.flow.deliver import deliver_event
from chalicelib.flow.ingest import Inbound, IngestLimits, accept_request
from chalicelib.flow.route import route_request
from tests.support.factories import make_connection, make_destination

DAY = 86_400


def team_session(api, clock, retention_days: int):
    """A logged-in client of a new team with the given retention."""
    accounts = wiring.container().accounts
    team = {"id": new_id(Prefix.TEAM), "name": "Short memory", "created_at": iso(clock.now())}
    team["retention_days"] = retention_days
    user = {"id": new_id(Prefix.USER), "email": "ada@example.test", "name": "Ada", "default_team_id": team["id"]}
    assert accounts.create_account(f"google#{team['id']}", user, team)
    token = SESSION_PREFIX + secrets.token_urlsafe(16)
    expires = clock.now() + timedelta(hours=1)
    accounts.put_session(
        hash_token(token),
        {
            "user_id": user["id"],
            "team_id": team["id"],
            "expires_at": iso(expires),
            "expires_at_epoch": int(expires.timestamp()),
            "created_at": iso(clock.now()),
        },
    )
    return api.as_(token), team["id"]


def test_a_team_with_seven_days_retention_gets_records_that_expire_in_seven_days(anon, clock):
    # Given
    api, team_id = team_session(anon, clock, retention_days=7)
    destination = make_destination(api, type="MOCK_API", config={"path": "/mock"})
    connection = make_connection(api, destination=destination)
    deps = wiring.container()
    settings = deps.settings
    assert settings.retention_days != 7
    # When
    answer = accept_request(
        inbound=Inbound(connection["source"]["id"], "POST", "", "", {"content-type": "application/json"}, b"{}"),
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        queues=deps.queues,
        clock=clock,
        limits=IngestLimits(settings.max_body_bytes, settings.inline_body_bytes, settings.retention_days),
    )
    route_request(
        message=messages.RouteRequest(team_id=team_id, request_id=answer.request_id),
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        queues=deps.queues,
        transformer=deps.transformer,
        routing=deps.routing,
        clock=clock,
    )
    event_id = derived_id(Prefix.EVENT, answer.request_id, connection["id"])
    outcome = deliver_event(
        message=messages.DeliverEvent(team_id=team_id, event_id=event_id, trigger="INITIAL"),
        records=deps.records,
        resources=deps.resources,
        routing=deps.routing,
        accounts=deps.accounts,
        payloads=deps.payloads,
        queues=deps.queues,
        sender=deps.sender,
        mock_sender=deps.mock_sender,
        clock=clock,
    )
    # Then
    seven_days_out = int(clock.now().timestamp()) + 7 * DAY
    request = deps.records.get_request(answer.request_id)
    event = deps.records.get_event(event_id)
    attempt = deps.records.get_attempt(outcome.attempt_id)
    assert request["expires_at"] == seven_days_out
    assert event["expires_at"] == seven_days_out
    assert attempt["expires_at"] == seven_days_out
    status, shown = api.get(f"/requests/{answer.request_id}")
    assert status == 200, shown


def test_a_team_on_the_default_retention_keeps_records_thirty_days(api, clock):
    # Given
    source = api.post("/sources", {"name": "stripe"})[1]
    deps = wiring.container()
    # When
    request = ingest(deps, source["id"], clock)
    # Then
    assert request["expires_at"] == int(clock.now().timestamp()) + 30 * DAY


def test_a_retention_longer_than_the_payload_buckets_is_capped_by_it(anon, clock):
    # Given
    api, _ = team_session(anon, clock, retention_days=400)
    source = api.post("/sources", {"name": "stripe"})[1]
    deps = wiring.container()
    # When
    request = ingest(deps, source["id"], clock)
    # Then
    assert request["expires_at"] == int(clock.now().timestamp()) + deps.settings.retention_days * DAY


def ingest(deps, source_id: str, clock):
    settings = deps.settings
    answer = accept_request(
        inbound=Inbound(source_id, "POST", "", "", {"content-type": "application/json"}, b"{}"),
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        queues=deps.queues,
        clock=clock,
        limits=IngestLimits(settings.max_body_bytes, settings.inline_body_bytes, settings.retention_days),
    )
    return deps.records.get_request(answer.request_id)
