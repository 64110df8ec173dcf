"""The dependencies of FastHook's use cases, one narrow Protocol each.

Adapters (`adapters/dynamo`, `adapters/memory.py`) implement them; only `wiring.py` knows both sides.
Stored documents are plain JSON-able dicts; every write that changes state is conditional and
raises a domain error when its condition fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chalicelib.domain.transforms import TransformResult

Doc = dict[str, Any]

# A looked-up source's field holding its team's retention (see ResourceStore.lookup); never stored on the source.
TEAM_RETENTION_DAYS = "team_retention_days"


class Clock(Protocol):
    def now(self) -> datetime: ...


class ResourceStore(Protocol):
    """Team-scoped control resources (sources, destinations, connections, transformations).

    `kind` names the resource; `unique` is the value that must be unique per team and kind
    (a name, or `source_id/name` for connections). Every document carries `id` and `version`.
    """

    def create(self, team_id: str, kind: str, doc: Doc, *, unique: str) -> None:
        """Insert `doc`; AlreadyExistsError(data=existing) when `unique` is taken."""

    def get(self, team_id: str, kind: str, resource_id: str) -> Doc | None: ...

    def get_by_unique(self, team_id: str, kind: str, unique: str) -> Doc | None: ...

    def list(self, team_id: str, kind: str) -> list[Doc]: ...

    def replace(
        self, team_id: str, kind: str, doc: Doc, *, expected_version: int, old_unique: str, unique: str
    ) -> None:
        """Write `doc` (version already bumped) if the stored version is `expected_version`.

        ConcurrentUpdateError when it moved on or vanished; AlreadyExistsError when `unique` changed
        to a value another resource holds.
        """

    def delete(self, team_id: str, kind: str, resource_id: str, *, unique: str) -> bool:
        """Remove the resource and its unique claim; False when it was already gone."""

    def team_of(self, resource_id: str) -> str | None:
        """The team that owns a resource id, for entry points that only know the id (ingest)."""

    def lookup(self, resource_id: str) -> tuple[str, Doc] | None:
        """(team_id, current document) of a resource by id alone, in one read: the ingest hot path.

        A source's document also carries `TEAM_RETENTION_DAYS`: the team's `retention_days` as the store
        copied it when the source was written, so ingest dates its records' expiry without reading the team.
        """

    def routing_version(self, team_id: str) -> int:
        """A counter every resource write of the team bumps; caches compare it instead of trusting a timer."""

    def team_resources(self, team_id: str) -> dict[str, list[Doc]]:
        """Every resource of the team by kind, in one query: what the route worker caches per version."""


class AccountStore(Protocol):
    """Users, teams, memberships, sessions and project secrets."""

    def find_login(self, login_key: str) -> str | None:
        """The user id linked to an external login (`demo`, `google#<sub>`)."""

    def create_account(self, login_key: str, user: Doc, team: Doc) -> bool:
        """Create user, team, membership and login link at once; False if the login already existed."""

    def get_user(self, user_id: str) -> Doc | None: ...

    def update_user(self, user: Doc) -> None: ...

    def get_team(self, team_id: str) -> Doc | None: ...

    def memberships(self, user_id: str) -> list[Doc]: ...

    def put_session(self, token_hash: str, session: Doc) -> None: ...

    def get_session(self, token_hash: str) -> Doc | None: ...

    def delete_session(self, token_hash: str) -> None: ...

    def get_secrets(self, team_id: str) -> Doc | None: ...

    def save_secrets(
        self, team_id: str, secrets: Doc, *, expected_version: int | None, old_key_hash: str | None, new_key_hash: str
    ) -> None:
        """Store the team's secrets and move the API-key lookup from the old hash to the new one.

        expected_version None means "create": ConcurrentUpdateError if secrets already exist.
        AlreadyExistsError if another team holds the new API key.
        """

    def team_for_api_key(self, key_hash: str) -> str | None: ...


@dataclass(frozen=True)
class TimelineQuery:
    """A window of a team's records of one kind, in time order, with the filters a list or count applies.

    A record's position is `<time>#<id>` (ingested_at for requests, created_at for the rest), so
    positions sort like (time, id). `start`/`end` bound the time, both inclusive; `after` is the
    position of the last record a previous page returned (exclusive), so a cursor is a key, not an
    offset. Records whose `expires_at` epoch is at or before `now` are never returned nor counted.
    """

    start: str
    end: str
    now: datetime
    limit: int = 100
    ascending: bool = False
    after: str | None = None
    # field IN values, for each pair; a one-value tuple is an equality.
    fields: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    # Pending events with (True) or without (False) a live delivery lease; None: either.
    in_flight: bool | None = None
    # `search` matches a record whose `search_exact` field equals it or whose `search_prefix` field starts with it.
    search: str | None = None
    search_exact: tuple[str, ...] = ()
    search_prefix: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelinePage:
    """Records of a TimelineQuery, and where to resume (`after`) when more may follow, else None."""

    items: list[Doc]
    resume: str | None


class RecordStore(Protocol):
    """Requests, events, ignored branches, attempts, dedupe claims and rate-limit buckets.

    Event state changes are conditional: a lease lets exactly one worker deliver an event at a time,
    and every transition names the statuses it may start from.
    """

    def put_request(self, request: Doc) -> bool:
        """Store a new Request; False if one with this id exists (a replayed write)."""

    def get_request(self, request_id: str) -> Doc | None: ...

    def finish_routing(self, request_id: str, *, events_count: int, ignored_count: int, routed_at: str) -> None: ...

    def mark_routing_failed(self, request_id: str, *, cause: str, at: str) -> bool:
        """Record on a Request that it will not be routed (`routing_error`, `routing_failed_at`).

        Only a stored Request that no run finished routing is marked; False otherwise. It stays
        readable and can be replayed with `POST /requests/:id/retry`.
        """

    def put_event(self, event: Doc) -> bool:
        """Store a new Event; False if it exists (a redelivered route message makes the same ids)."""

    def put_ignored(self, ignored: Doc) -> bool: ...

    def get_event(self, event_id: str) -> Doc | None: ...

    def events_of_request(self, request_id: str) -> list[Doc]: ...

    def ignored_of_request(self, request_id: str) -> list[Doc]: ...

    def lease_event(self, event_id: str, *, lease_id: str, now: str, until: str) -> Doc | None:
        """Take the delivery lease if the event is SCHEDULED/QUEUED and no live lease exists; the leased doc or None."""

    def complete_event(self, event_id: str, *, lease_id: str, changes: Doc, leased: Doc | None = None) -> bool:
        """Apply `changes` and drop the lease, only if `lease_id` still holds it.

        `leased` is the document `lease_event` returned for this lease, when the caller has it: the
        store may take it as the event's current state instead of reading the event again.
        """

    def transition_event(
        self,
        event_id: str,
        *,
        from_statuses: frozenset[str],
        changes: Doc,
        now: str,
        unless_batch_operation_id: str | None = None,
    ) -> Doc | None:
        """Apply `changes` if the status is one of `from_statuses` and no live lease exists; the new doc or None.

        With `unless_batch_operation_id`, also None when the event already carries that bulk operation id:
        a bulk page processed twice retries each event once.
        """

    def put_attempt(self, attempt: Doc) -> None: ...

    def get_attempt(self, attempt_id: str) -> Doc | None: ...

    def attempts_of_event(self, event_id: str) -> list[Doc]: ...

    def due_events(self, *, before: str, limit: int) -> list[Doc]:
        """Pending events whose due time or lease expiry is before `before` (the sweeper's work list)."""

    def held_events(self, connection_id: str, *, limit: int) -> list[Doc]: ...

    def claim_dedupe(self, key: str, *, now_epoch: int, until_epoch: int) -> bool:
        """True if no live claim on `key` existed and this call made one until `until_epoch`."""

    def take_token(self, bucket: str, *, capacity: int, refill_per_s: float, now_ms: int) -> int:
        """Take one token from a token bucket; 0 when taken, else milliseconds until one is available."""

    def query_timeline(self, team_id: str, kind: str, query: TimelineQuery) -> TimelinePage:
        """Up to `query.limit` of the team's records of `kind` (REQ, EVT, IGN, ATT) that match, in order.

        `resume` is None when the window holds no further match; a store may also stop early after a
        bounded amount of reading and return fewer items with a `resume` position.
        """

    def count_timeline(self, team_id: str, kind: str, query: TimelineQuery) -> int:
        """How many records every page of `query_timeline` together returns (limit and after ignored)."""

    def timeline_points(self, team_id: str, kind: str, query: TimelineQuery, attributes: tuple[str, ...]) -> list[Doc]:
        """Every record `count_timeline` counts, oldest first, with only `attributes` (what metrics bucket by).

        Exact like a count: it reads every matching page of the window (limit and after ignored).
        """


class ExecutionStore(Protocol):
    """Transformation executions: one record per run of a transform rule in the route worker.

    Ids derive from (request, connection, rule), so a redelivered route message writes the same id and
    `put_execution` answers False instead of storing a second run.
    """

    def put_execution(self, execution: Doc) -> bool:
        """Store a new execution; False if one with this id exists (a replayed write)."""

    def get_execution(self, execution_id: str) -> Doc | None: ...

    def query_executions(
        self, team_id: str, transformation_id: str, query: TimelineQuery, *, log_levels: tuple[str, ...] = ()
    ) -> TimelinePage:
        """A transformation's executions in `query`'s window and order, paged like `RecordStore.query_timeline`.

        `log_levels` keeps executions that logged a line of any of these levels (`log_levels` field);
        `query.fields` and `query.search` are not used here.
        """


class BulkStore(Protocol):
    """Bulk retry/replay operations of a team; counters move by atomic adds, status by conditional writes."""

    def put_operation(self, operation: Doc) -> bool:
        """Store a new operation; False if one with this id exists."""

    def get_operation(self, operation_id: str) -> Doc | None: ...

    def list_operations(
        self, team_id: str, kind: str, *, statuses: frozenset[str] | None, limit: int, after: str | None
    ) -> TimelinePage:
        """The team's operations of `kind` (events|requests), newest first; `after` is a previous page's resume."""

    def transition_operation(self, operation_id: str, *, from_statuses: frozenset[str], changes: Doc) -> Doc | None:
        """Apply `changes` if the status is one of `from_statuses`; the new doc or None."""

    def advance_operation(self, operation_id: str, *, cursor: str, next_cursor: str, counts: Doc) -> bool:
        """Record a processed page: move `cursor` to `next_cursor` and add `counts`, only if the cursor is still
        `cursor` and the operation is running; False when another run already recorded this page."""

    def add_outcome(self, operation_id: str, *, failed: bool) -> None:
        """One retry of the operation finished: done_count + 1, and failed_count + 1 when it failed."""


class BulkRunner(Protocol):
    """Starts the state machine that runs a bulk operation (Step Functions)."""

    def start(self, *, team_id: str, operation_id: str) -> str:
        """Start one execution for the operation (its name is the operation id); the execution ARN."""


class PayloadStore(Protocol):
    """Bodies too large to keep inline (S3)."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class Queues(Protocol):
    """The route and deliver queues; `delay_s` is at most 900 (SQS's limit)."""

    def send_route(self, body: str) -> None: ...

    def send_deliver(self, bodies: list[tuple[str, int]]) -> None:
        """Send (body, delay_s) pairs, batched."""


class Sender(Protocol):
    def send(self, req: Any) -> Any:
        """Send an OutboundRequest; a DeliveryResult, never an exception for network trouble."""


class Transformer(Protocol):
    def transform(self, *, code: str, env: dict[str, str], request: Doc, context: Doc) -> TransformResult | Doc:
        """Run a transformation; a TransformResult (what it returned, its console lines), or TransformationError.

        A bare returned request is still accepted (the port's first shape); `read_transformed_request`
        and `logs_of` in domain/transforms.py read either.
        """
