"""Every DynamoDB key FastHook writes, one function per access pattern; docs/dynamodb.md has one row each."""

from __future__ import annotations

Key = dict[str, dict[str, str]]


def _key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def team_partition(team_id: str) -> str:
    return f"TEAM#{team_id}"


def resource(team_id: str, kind: str, resource_id: str) -> Key:
    """A control resource inside its team's partition: lists are one strongly consistent Query."""
    return _key(team_partition(team_id), f"{kind.upper()}#{resource_id}")


def resource_prefix(kind: str) -> str:
    return f"{kind.upper()}#"


def resource_unique(team_id: str, kind: str, unique: str) -> Key:
    """Claim on a unique name per team and kind; written in the same transaction as the resource."""
    return _key(team_partition(team_id), f"{kind.upper()}_NAME#{unique}")


def resource_ref(resource_id: str) -> Key:
    """Id -> owning team and a copy of the document, for callers that only hold an id (the ingest URL)."""
    return _key(f"REF#{resource_id}", "REF")


def routing(team_id: str) -> Key:
    """The team's routing version: every resource write bumps it in the same transaction."""
    return _key(team_partition(team_id), "ROUTING")


def team(team_id: str) -> Key:
    return _key(team_partition(team_id), "TEAM")


def user(user_id: str) -> Key:
    return _key(f"USER#{user_id}", "PROFILE")


def membership(user_id: str, team_id: str) -> Key:
    return _key(f"USER#{user_id}", f"MEMBER#{team_id}")


def membership_prefix() -> str:
    return "MEMBER#"


def user_partition(user_id: str) -> str:
    return f"USER#{user_id}"


def login(login_key: str) -> Key:
    """External login (`demo`, `google#<sub>`) -> user; its conditional put makes first login create once."""
    return _key(f"LOGIN#{login_key}", "LOGIN")


def session(token_hash: str) -> Key:
    return _key(f"SESSION#{token_hash}", "SESSION")


def secrets(team_id: str) -> Key:
    return _key(team_partition(team_id), "SECRETS")


def api_key(key_hash: str) -> Key:
    """API key hash -> team; the key itself is never a key attribute."""
    return _key(f"APIKEY#{key_hash}", "APIKEY")


# ---- records table ---------------------------------------------------------------------------------
# Record items are one item per record (`<KIND>#<id>` / `<KIND>`), so every get is one GetItem; the
# index keys below are attributes the records adapter derives from the document on every write.

DUE_SHARDS = 8


def request(request_id: str) -> Key:
    return _key(f"REQ#{request_id}", "REQ")


def event(event_id: str) -> Key:
    return _key(f"EVT#{event_id}", "EVT")


def ignored(ignored_id: str) -> Key:
    return _key(f"IGN#{ignored_id}", "IGN")


def attempt(attempt_id: str) -> Key:
    return _key(f"ATT#{attempt_id}", "ATT")


def team_timeline(team_id: str, kind: str) -> str:
    """gsi1pk of a team's records of one kind (REQ, EVT, IGN, ATT): the observability lists' partition."""
    return f"{team_partition(team_id)}#{kind}"


def team_timeline_entry(team_id: str, kind: str, at: str, record_id: str) -> Key:
    """gsi1 keys of a record: its team's timeline of its kind, ordered by (created or ingested at, id)."""
    return {"gsi1pk": {"S": team_timeline(team_id, kind)}, "gsi1sk": {"S": f"{at}#{record_id}"}}


def team_timeline_bounds(start: str, end: str) -> tuple[str, str]:
    """gsi1sk range of a time window, both ends inclusive: every `<time>#<id>` with start <= time <= end.

    `#` sorts before every character of an id and `~` after, so the bounds need no real id.
    """
    return f"{start}#", f"{end}#~"


def request_children(request_id: str) -> str:
    """gsi2pk of the events and ignored branches of a request; gsi2sk begins with EVT# or IGN#."""
    return f"REQ#{request_id}"


def request_child(request_id: str, kind: str, child_id: str) -> Key:
    """gsi2 keys of an event (kind EVT) or an ignored branch (kind IGN) under its request."""
    return {"gsi2pk": {"S": request_children(request_id)}, "gsi2sk": {"S": f"{kind}#{child_id}"}}


def event_attempts(event_id: str) -> str:
    """gsi2pk of the attempts of an event; gsi2sk is ATT#<id>, so they come back in creation order."""
    return f"EVT#{event_id}"


def event_attempt(event_id: str, attempt_id: str) -> Key:
    return {"gsi2pk": {"S": event_attempts(event_id)}, "gsi2sk": {"S": f"ATT#{attempt_id}"}}


def due_shard(event_id: str) -> int:
    """A stable shard of an event id (not Python's salted hash): spreads the due index over partitions."""
    import hashlib

    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:4], "big") % DUE_SHARDS


def due_partitions() -> list[str]:
    """Every gsi3pk the sweeper queries for pending work."""
    return [f"DUE#{shard}" for shard in range(DUE_SHARDS)]


def due_work(event_id: str, due: str) -> Key:
    """gsi3 keys of a pending (SCHEDULED/QUEUED) event: due = lease_until while leased, else next_attempt_at."""
    return {"gsi3pk": {"S": f"DUE#{due_shard(event_id)}"}, "gsi3sk": {"S": f"{due}#{event_id}"}}


def held_partition(connection_id: str) -> str:
    """gsi3pk of a paused connection's HOLD events, released on unpause."""
    return f"HOLD#{connection_id}"


def held_work(connection_id: str, created_at: str, event_id: str) -> Key:
    return {"gsi3pk": {"S": held_partition(connection_id)}, "gsi3sk": {"S": f"{created_at}#{event_id}"}}


def execution(execution_id: str) -> Key:
    """A transformation execution: one item per run of a transform rule in the route worker."""
    return _key(f"EXE#{execution_id}", "EXE")


def transformation_executions(team_id: str, transformation_id: str) -> str:
    """gsi1pk of a transformation's executions; the team is part of it, so another team's id finds nothing."""
    return f"{team_partition(team_id)}#TRS#{transformation_id}#EXE"


def transformation_execution(team_id: str, transformation_id: str, created_at: str, execution_id: str) -> Key:
    """gsi1 keys of an execution: its transformation's timeline, ordered by (created_at, id) like team timelines."""
    return {
        "gsi1pk": {"S": transformation_executions(team_id, transformation_id)},
        "gsi1sk": {"S": f"{created_at}#{execution_id}"},
    }


def dedupe(key: str) -> Key:
    """A deduplicate rule's claim on a key; `expires_at` (also the TTL) ends its window."""
    return _key(f"DEDUPE#{key}", "DEDUPE")


def rate_bucket(bucket: str) -> Key:
    """A destination's token bucket: `tokens` and `updated_ms`, moved by conditional updates."""
    return _key(f"RATE#{bucket}", "RATE")


def bulk_operation(operation_id: str) -> Key:
    """A bulk retry/replay operation: its filter, status, cursor and counters (moved by atomic ADDs)."""
    return _key(f"BCH#{operation_id}", "BCH")


def team_bulk_operations(team_id: str, kind: str) -> str:
    """gsi1pk of a team's bulk operations of one kind (events | requests), for GET .../bulk_operations."""
    return f"{team_partition(team_id)}#BCH#{kind}"


def team_bulk_operation(team_id: str, kind: str, created_at: str, operation_id: str) -> Key:
    """gsi1 keys of a bulk operation: newest first by (created_at, id), like the team timelines."""
    return {"gsi1pk": {"S": team_bulk_operations(team_id, kind)}, "gsi1sk": {"S": f"{created_at}#{operation_id}"}}
