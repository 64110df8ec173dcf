"""Retrying work by hand: one event, one request replay, and the release of held events on unpause.

A manual retry, a bulk retry and an unpause all go through `retry_event` / `release_held_events`,
so the rules (what may be retried, which trigger, which message) live in one place.
"""

from __future__ import annotations

from chalicelib.control import resources as res
from chalicelib.domain import messages
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.ids import Prefix, new_id, parse_id
from chalicelib.domain.statuses import AttemptTrigger, EventStatus, RequestStatus
from chalicelib.domain.timefmt import iso
from chalicelib.ports import Clock, Doc, PayloadStore, Queues, RecordStore, ResourceStore

RETRYABLE_FROM = frozenset(
    {EventStatus.FAILED, EventStatus.SUCCESSFUL, EventStatus.CANCELLED, EventStatus.QUEUED, EventStatus.SCHEDULED}
)


def _event_of_team(records: RecordStore, team_id: str, event_id: str) -> Doc:
    eid = parse_id(event_id, Prefix.EVENT, "Event")
    event = records.get_event(eid)
    if event is None or event["team_id"] != team_id:
        raise NotFoundError(f"Event {eid} not found")
    return event


def retry_event(
    *,
    team_id: str,
    event_id: str,
    records: RecordStore,
    resources: ResourceStore,
    queues: Queues,
    clock: Clock,
    trigger: AttemptTrigger = AttemptTrigger.MANUAL,
    batch_operation_id: str | None = None,
) -> Doc:
    """Queue one more delivery try of an event, now; 409 unless its source and connection can deliver."""
    event = _event_of_team(records, team_id, event_id)
    connection = resources.get(team_id, res.CONNECTION.name, event["connection_id"])
    source = resources.get(team_id, res.SOURCE.name, event["source_id"])
    if connection is None or source is None:
        raise ConflictError("The event's connection or source no longer exists", code="RETRY_NOT_ALLOWED")
    if source.get("disabled_at") or connection.get("disabled_at"):
        raise ConflictError("The event's source or connection is disabled; enable it first", code="RETRY_NOT_ALLOWED")
    if connection.get("paused_at"):
        raise ConflictError("The event's connection is paused; unpause it first", code="RETRY_NOT_ALLOWED")
    now = iso(clock.now())
    changes: Doc = {
        "status": EventStatus.QUEUED.value,
        "next_trigger": trigger.value,
        "next_attempt_at": now,
        "updated_at": now,
    }
    if batch_operation_id is not None:
        changes["batch_operation_id"] = batch_operation_id
    # A bulk operation retries an event at most once, even when Step Functions runs a page twice.
    updated = records.transition_event(
        event["id"],
        from_statuses=RETRYABLE_FROM,
        changes=changes,
        now=now,
        unless_batch_operation_id=batch_operation_id,
    )
    if updated is None:
        raise ConflictError(
            "The event is being delivered right now or is held; try again shortly", code="RETRY_NOT_ALLOWED"
        )
    queues.send_deliver([(messages.encode(messages.DeliverEvent(team_id, event["id"], trigger.value)), 0)])
    return updated


def release_held_events(
    *, team_id: str, connection_id: str, records: RecordStore, queues: Queues, clock: Clock, page: int = 200
) -> int:
    """Unpause: every HOLD event of the connection becomes QUEUED with trigger UNPAUSE; returns how many."""
    released = 0
    while True:
        held = records.held_events(connection_id, limit=page)
        batch: list[tuple[str, int]] = []
        for event in held:
            now = iso(clock.now())
            changes = {
                "status": EventStatus.QUEUED.value,
                "next_trigger": AttemptTrigger.UNPAUSE.value,
                "next_attempt_at": now,
                "updated_at": now,
            }
            if records.transition_event(
                event["id"], from_statuses=frozenset({EventStatus.HOLD}), changes=changes, now=now
            ):
                batch.append(
                    (messages.encode(messages.DeliverEvent(team_id, event["id"], AttemptTrigger.UNPAUSE.value)), 0)
                )
        if batch:
            queues.send_deliver(batch)
            released += len(batch)
        if len(held) < page:
            return released


def retry_request(
    *,
    team_id: str,
    request_id: str,
    records: RecordStore,
    resources: ResourceStore,
    payloads: PayloadStore,
    queues: Queues,
    clock: Clock,
    retry_kind: str = "single",
    batch_operation_id: str | None = None,
    replay_id: str | None = None,
) -> Doc:
    """Replay a stored request through the current routing, as a new Request marked as a retry of it.

    A bulk replay passes a `replay_id` derived from (operation, request): a page processed twice finds
    the replay it made the first time and only re-sends it to routing if it was not routed yet.
    """
    rid = parse_id(request_id, Prefix.REQUEST, "Request")
    original = records.get_request(rid)
    if original is None or original["team_id"] != team_id:
        raise NotFoundError(f"Request {rid} not found")
    source = resources.get(team_id, res.SOURCE.name, original["source_id"])
    if source is None:
        raise ConflictError("The request's source no longer exists", code="RETRY_NOT_ALLOWED")
    if source.get("disabled_at"):
        raise ConflictError("The request's source is disabled; enable it first", code="RETRY_NOT_ALLOWED")
    now = clock.now()
    replay = {
        **original,
        "id": replay_id or new_id(Prefix.REQUEST),
        "status": RequestStatus.ACCEPTED.value,
        "rejection_cause": None,
        "ingested_at": iso(now),
        "events_count": 0,
        "ignored_count": 0,
        "routed_at": None,
        "is_retry": True,
        "retry_of": original["id"],
        "retry_kind": retry_kind,
        "batch_operation_id": batch_operation_id,
        "expires_at": original["expires_at"] + int(now.timestamp()) - _epoch(original["ingested_at"]),
    }
    if original.get("body_key"):
        # The replay lives as long as its own retention, so it gets its own copy of a large body.
        key = f"{team_id}/requests/{replay['id']}"
        payloads.put(key, payloads.get(original["body_key"]))
        replay["body_key"] = key
    if not records.put_request(replay):
        existing = records.get_request(replay["id"])
        if existing is not None:
            if existing.get("routed_at"):
                return existing
            replay = existing
    queues.send_route(messages.encode(messages.RouteRequest(team_id=team_id, request_id=replay["id"])))
    return replay


def _epoch(timestamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
