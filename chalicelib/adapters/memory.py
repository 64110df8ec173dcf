"""In-memory fakes of every port, with the same conditions as the DynamoDB adapters.

Unit tests run use cases against these; the store contract suite runs the same assertions against
these fakes and against DynamoDB (moto), so a fake cannot quietly behave differently.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chalicelib.domain.errors import AlreadyExistsError, ConcurrentUpdateError
from chalicelib.domain.statuses import BulkStatus
from chalicelib.domain.timefmt import iso
from chalicelib.ports import TEAM_RETENTION_DAYS, Doc, TimelinePage, TimelineQuery


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 4, 17, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)


class MemoryControlStore:
    """ResourceStore and AccountStore in dicts, guarded by one lock like a transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str, str], Doc] = {}
        self._unique: dict[tuple[str, str, str], str] = {}
        self._refs: dict[str, str] = {}
        self._ref_retention: dict[str, int] = {}
        self._routing: dict[str, int] = {}
        self._logins: dict[str, str] = {}
        self._users: dict[str, Doc] = {}
        self._teams: dict[str, Doc] = {}
        self._members: dict[str, dict[str, Doc]] = {}
        self._sessions: dict[str, Doc] = {}
        self._secrets: dict[str, Doc] = {}
        self._api_keys: dict[str, str] = {}

    # ---- ResourceStore ----------------------------------------------------------------------------

    def create(self, team_id: str, kind: str, doc: Doc, *, unique: str) -> None:
        with self._lock:
            claim = (team_id, kind, unique)
            if claim in self._unique:
                existing = copy.deepcopy(self._resources.get((team_id, kind, self._unique[claim])))
                raise AlreadyExistsError(f"A {kind} named {unique!r} already exists", data=existing)
            self._unique[claim] = doc["id"]
            self._resources[(team_id, kind, doc["id"])] = copy.deepcopy(doc)
            self._refs[doc["id"]] = team_id
            self._copy_retention(team_id, kind, doc["id"])
            self._bump(team_id)

    def get(self, team_id: str, kind: str, resource_id: str) -> Doc | None:
        return copy.deepcopy(self._resources.get((team_id, kind, resource_id)))

    def get_by_unique(self, team_id: str, kind: str, unique: str) -> Doc | None:
        rid = self._unique.get((team_id, kind, unique))
        return self.get(team_id, kind, rid) if rid else None

    def list(self, team_id: str, kind: str) -> list[Doc]:
        with self._lock:
            found = [(rid, doc) for (t, k, rid), doc in self._resources.items() if t == team_id and k == kind]
        return [copy.deepcopy(doc) for _, doc in sorted(found, key=lambda pair: pair[0])]

    def replace(
        self, team_id: str, kind: str, doc: Doc, *, expected_version: int, old_unique: str, unique: str
    ) -> None:
        with self._lock:
            key = (team_id, kind, doc["id"])
            current = self._resources.get(key)
            if current is None or current.get("version") != expected_version:
                raise ConcurrentUpdateError()
            if unique != old_unique:
                claim = (team_id, kind, unique)
                if claim in self._unique:
                    existing = copy.deepcopy(self._resources.get((team_id, kind, self._unique[claim])))
                    raise AlreadyExistsError(f"A {kind} named {unique!r} already exists", data=existing)
                self._unique[claim] = doc["id"]
                self._unique.pop((team_id, kind, old_unique), None)
            self._resources[key] = copy.deepcopy(doc)
            self._copy_retention(team_id, kind, doc["id"])
            self._bump(team_id)

    def delete(self, team_id: str, kind: str, resource_id: str, *, unique: str) -> bool:
        with self._lock:
            if self._resources.pop((team_id, kind, resource_id), None) is None:
                return False
            self._unique.pop((team_id, kind, unique), None)
            self._refs.pop(resource_id, None)
            self._bump(team_id)
            return True

    def _copy_retention(self, team_id: str, kind: str, resource_id: str) -> None:
        """Like the DynamoDB ref item: a source's lookup copy takes the team's retention when it is written."""
        retention = (self._teams.get(team_id) or {}).get("retention_days")
        if kind == "source" and isinstance(retention, int):
            self._ref_retention[resource_id] = retention
        else:
            self._ref_retention.pop(resource_id, None)

    def _bump(self, team_id: str) -> None:
        self._routing[team_id] = self._routing.get(team_id, 0) + 1

    def team_of(self, resource_id: str) -> str | None:
        return self._refs.get(resource_id)

    def lookup(self, resource_id: str) -> tuple[str, Doc] | None:
        with self._lock:
            team_id = self._refs.get(resource_id)
            if team_id is None:
                return None
            doc = next((d for (t, _, rid), d in self._resources.items() if t == team_id and rid == resource_id), None)
            if doc is None:
                return None
            found = copy.deepcopy(doc)
            if resource_id in self._ref_retention:
                found[TEAM_RETENTION_DAYS] = self._ref_retention[resource_id]
            return team_id, found

    def routing_version(self, team_id: str) -> int:
        return self._routing.get(team_id, 0)

    def team_resources(self, team_id: str) -> dict[str, list[Doc]]:
        with self._lock:
            out: dict[str, list[Doc]] = {}
            for (t, kind, _), doc in sorted(self._resources.items(), key=lambda kv: kv[0][2]):
                if t == team_id:
                    out.setdefault(kind, []).append(copy.deepcopy(doc))
            return out

    # ---- AccountStore -----------------------------------------------------------------------------

    def find_login(self, login_key: str) -> str | None:
        return self._logins.get(login_key)

    def create_account(self, login_key: str, user: Doc, team: Doc) -> bool:
        with self._lock:
            if login_key in self._logins:
                return False
            self._logins[login_key] = user["id"]
            self._users[user["id"]] = copy.deepcopy(user)
            self._teams[team["id"]] = copy.deepcopy(team)
            self._members.setdefault(user["id"], {})[team["id"]] = {
                "user_id": user["id"],
                "team_id": team["id"],
                "role": "owner",
                "team_name": team["name"],
                "created_at": team["created_at"],
            }
            return True

    def get_user(self, user_id: str) -> Doc | None:
        return copy.deepcopy(self._users.get(user_id))

    def update_user(self, user: Doc) -> None:
        with self._lock:
            if user["id"] not in self._users:
                raise ConcurrentUpdateError("The user no longer exists")
            self._users[user["id"]] = copy.deepcopy(user)

    def get_team(self, team_id: str) -> Doc | None:
        return copy.deepcopy(self._teams.get(team_id))

    def memberships(self, user_id: str) -> list[Doc]:
        members = self._members.get(user_id, {})
        return [copy.deepcopy(members[t]) for t in sorted(members)]

    def put_session(self, token_hash: str, session: Doc) -> None:
        self._sessions[token_hash] = copy.deepcopy(session)

    def get_session(self, token_hash: str) -> Doc | None:
        return copy.deepcopy(self._sessions.get(token_hash))

    def delete_session(self, token_hash: str) -> None:
        self._sessions.pop(token_hash, None)

    def get_secrets(self, team_id: str) -> Doc | None:
        return copy.deepcopy(self._secrets.get(team_id))

    def save_secrets(
        self, team_id: str, secrets: Doc, *, expected_version: int | None, old_key_hash: str | None, new_key_hash: str
    ) -> None:
        with self._lock:
            current = self._secrets.get(team_id)
            if expected_version is None and current is not None:
                raise ConcurrentUpdateError("The project secrets changed meanwhile; try again")
            if expected_version is not None and (current is None or current.get("version") != expected_version):
                raise ConcurrentUpdateError("The project secrets changed meanwhile; try again")
            if old_key_hash != new_key_hash:
                if new_key_hash in self._api_keys:
                    raise AlreadyExistsError("That API key is already in use; choose another")
                self._api_keys[new_key_hash] = team_id
                if old_key_hash is not None:
                    self._api_keys.pop(old_key_hash, None)
            self._secrets[team_id] = copy.deepcopy(secrets)

    def team_for_api_key(self, key_hash: str) -> str | None:
        return self._api_keys.get(key_hash)


def _live_lease(doc: Doc, now: str) -> bool:
    return bool(doc.get("lease_until")) and doc["lease_until"] > now


class MemoryRecordStore:
    """RecordStore in dicts: the same conditions as the DynamoDB adapter, behind one lock."""

    PENDING = ("SCHEDULED", "QUEUED")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, Doc] = {}
        self.events: dict[str, Doc] = {}
        self.ignored: dict[str, Doc] = {}
        self.attempts: dict[str, Doc] = {}
        self._dedupe: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, int]] = {}

    def put_request(self, request: Doc) -> bool:
        with self._lock:
            if request["id"] in self.requests:
                return False
            self.requests[request["id"]] = copy.deepcopy(request)
            return True

    def get_request(self, request_id: str) -> Doc | None:
        return copy.deepcopy(self.requests.get(request_id))

    def finish_routing(self, request_id: str, *, events_count: int, ignored_count: int, routed_at: str) -> None:
        with self._lock:
            # Like DynamoDB's "request exists" condition: a request that is gone (expired) is left gone.
            if request_id in self.requests:
                self.requests[request_id].update(
                    events_count=events_count, ignored_count=ignored_count, routed_at=routed_at
                )

    def mark_routing_failed(self, request_id: str, *, cause: str, at: str) -> bool:
        with self._lock:
            request = self.requests.get(request_id)
            if request is None or request.get("routed_at"):
                return False
            request.update(routing_error=cause, routing_failed_at=at)
            return True

    def put_event(self, event: Doc) -> bool:
        with self._lock:
            if event["id"] in self.events:
                return False
            self.events[event["id"]] = copy.deepcopy(event)
            return True

    def put_ignored(self, ignored: Doc) -> bool:
        with self._lock:
            if ignored["id"] in self.ignored:
                return False
            self.ignored[ignored["id"]] = copy.deepcopy(ignored)
            return True

    def get_event(self, event_id: str) -> Doc | None:
        return copy.deepcopy(self.events.get(event_id))

    def events_of_request(self, request_id: str) -> list[Doc]:
        with self._lock:
            return [copy.deepcopy(e) for _, e in sorted(self.events.items()) if e["request_id"] == request_id]

    def ignored_of_request(self, request_id: str) -> list[Doc]:
        with self._lock:
            return [copy.deepcopy(i) for _, i in sorted(self.ignored.items()) if i["request_id"] == request_id]

    def lease_event(self, event_id: str, *, lease_id: str, now: str, until: str) -> Doc | None:
        with self._lock:
            doc = self.events.get(event_id)
            if doc is None or doc["status"] not in self.PENDING or _live_lease(doc, now):
                return None
            doc.update(lease_id=lease_id, lease_until=until)
            return copy.deepcopy(doc)

    def complete_event(self, event_id: str, *, lease_id: str, changes: Doc, leased: Doc | None = None) -> bool:
        with self._lock:
            doc = self.events.get(event_id)
            if doc is None or doc.get("lease_id") != lease_id:
                return False
            doc.update(copy.deepcopy(changes))
            doc.pop("lease_id", None)
            doc.pop("lease_until", None)
            return True

    def transition_event(
        self,
        event_id: str,
        *,
        from_statuses: frozenset[str],
        changes: Doc,
        now: str,
        unless_batch_operation_id: str | None = None,
    ) -> Doc | None:
        with self._lock:
            doc = self.events.get(event_id)
            if doc is None or doc["status"] not in from_statuses or _live_lease(doc, now):
                return None
            if unless_batch_operation_id is not None and doc.get("batch_operation_id") == unless_batch_operation_id:
                return None
            doc.update(copy.deepcopy(changes))
            doc.pop("lease_id", None)
            doc.pop("lease_until", None)
            return copy.deepcopy(doc)

    def put_attempt(self, attempt: Doc) -> None:
        with self._lock:
            self.attempts[attempt["id"]] = copy.deepcopy(attempt)

    def get_attempt(self, attempt_id: str) -> Doc | None:
        return copy.deepcopy(self.attempts.get(attempt_id))

    def attempts_of_event(self, event_id: str) -> list[Doc]:
        with self._lock:
            # Attempt ids derive from (event, try number), so they do not sort in time: the number does.
            mine = [copy.deepcopy(a) for a in self.attempts.values() if a["event_id"] == event_id]
            return sorted(mine, key=lambda a: (int(a.get("attempt_number") or 0), str(a.get("created_at") or "")))

    def due_events(self, *, before: str, limit: int) -> list[Doc]:
        with self._lock:
            due = []
            for doc in self.events.values():
                if doc["status"] not in self.PENDING:
                    continue
                at = doc.get("lease_until") or doc.get("next_attempt_at") or doc["created_at"]
                if at < before:
                    due.append((at, doc["id"], doc))
            return [copy.deepcopy(d) for _, _, d in sorted(due)[:limit]]

    def held_events(self, connection_id: str, *, limit: int) -> list[Doc]:
        with self._lock:
            held = sorted(
                (e for e in self.events.values() if e["connection_id"] == connection_id and e["status"] == "HOLD"),
                key=lambda e: (e["created_at"], e["id"]),  # oldest first, like the HOLD index
            )
            return [copy.deepcopy(e) for e in held[:limit]]

    def claim_dedupe(self, key: str, *, now_epoch: int, until_epoch: int) -> bool:
        with self._lock:
            if self._dedupe.get(key, 0) > now_epoch:
                return False
            self._dedupe[key] = until_epoch
            return True

    def take_token(self, bucket: str, *, capacity: int, refill_per_s: float, now_ms: int) -> int:
        with self._lock:
            tokens, at_ms = self._buckets.get(bucket, (float(capacity), now_ms))
            # Workers' clocks differ slightly: an earlier now_ms must not take tokens away or rewind the bucket.
            tokens = min(float(capacity), tokens + max(0, now_ms - at_ms) / 1000 * refill_per_s)
            at_ms = max(at_ms, now_ms)
            if tokens >= 1:
                self._buckets[bucket] = (tokens - 1, at_ms)
                return 0
            self._buckets[bucket] = (tokens, at_ms)
            return max(1, int((1 - tokens) / refill_per_s * 1000))

    # ---- team timelines (the observability lists) -----------------------------------------------

    def _timeline(self, team_id: str, kind: str, query: TimelineQuery) -> list[tuple[str, Doc]]:
        """(position, doc) of every matching record in the window, in the query's order."""
        records, at = {
            "REQ": (self.requests, "ingested_at"),
            "EVT": (self.events, "created_at"),
            "IGN": (self.ignored, "created_at"),
            "ATT": (self.attempts, "created_at"),
        }[kind]
        low, high = f"{query.start}#", f"{query.end}#~"
        with self._lock:
            found = [
                (f"{doc[at]}#{doc['id']}", doc)
                for doc in records.values()
                if doc.get("team_id") == team_id and low <= f"{doc[at]}#{doc['id']}" <= high
            ]
        found = [(pos, copy.deepcopy(doc)) for pos, doc in found if timeline_matches(doc, query)]
        return sorted(found, key=lambda pair: pair[0], reverse=not query.ascending)

    def query_timeline(self, team_id: str, kind: str, query: TimelineQuery) -> TimelinePage:
        found = self._timeline(team_id, kind, query)
        if query.after is not None:
            after = query.after
            found = [(p, d) for p, d in found if (p > after if query.ascending else p < after)]
        page = found[: query.limit]
        resume = page[-1][0] if len(found) > query.limit else None
        return TimelinePage([doc for _, doc in page], resume)

    def count_timeline(self, team_id: str, kind: str, query: TimelineQuery) -> int:
        return len(self._timeline(team_id, kind, query))

    def timeline_points(self, team_id: str, kind: str, query: TimelineQuery, attributes: tuple[str, ...]) -> list[Doc]:
        found = self._timeline(team_id, kind, replace(query, ascending=True, after=None))
        return [{name: doc[name] for name in attributes if name in doc} for _, doc in found]


def timeline_matches(doc: Doc, query: TimelineQuery) -> bool:
    """The filters of a TimelineQuery on one document: what the DynamoDB FilterExpression says."""
    now_epoch = int(query.now.timestamp())
    if isinstance(doc.get("expires_at"), int) and doc["expires_at"] <= now_epoch:
        return False
    if any(doc.get(name) not in values for name, values in query.fields):
        return False
    if query.in_flight is not None:
        lease_until = doc.get("lease_until")
        live = isinstance(lease_until, str) and lease_until > iso(query.now)
        if live != query.in_flight:
            return False
    if query.search is not None:
        q = query.search
        exact = any(doc.get(name) == q for name in query.search_exact)
        prefix = any(isinstance(doc.get(name), str) and doc[name].startswith(q) for name in query.search_prefix)
        return exact or prefix
    return True


class MemoryExecutionStore:
    """ExecutionStore in a dict: the same "record is new" put and the same timeline reads as DynamoDB."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: dict[str, Doc] = {}

    def put_execution(self, execution: Doc) -> bool:
        with self._lock:
            if execution["id"] in self.executions:
                return False
            self.executions[execution["id"]] = copy.deepcopy(execution)
            return True

    def get_execution(self, execution_id: str) -> Doc | None:
        return copy.deepcopy(self.executions.get(execution_id))

    def query_executions(
        self, team_id: str, transformation_id: str, query: TimelineQuery, *, log_levels: tuple[str, ...] = ()
    ) -> TimelinePage:
        low, high = f"{query.start}#", f"{query.end}#~"
        now_epoch = int(query.now.timestamp())
        with self._lock:
            found = [
                (f"{doc['created_at']}#{doc['id']}", copy.deepcopy(doc))
                for doc in self.executions.values()
                if doc["team_id"] == team_id
                and doc["transformation_id"] == transformation_id
                and low <= f"{doc['created_at']}#{doc['id']}" <= high
                and not (isinstance(doc.get("expires_at"), int) and doc["expires_at"] <= now_epoch)
                and (not log_levels or any(level in (doc.get("log_levels") or []) for level in log_levels))
            ]
        found.sort(key=lambda pair: pair[0], reverse=not query.ascending)
        if query.after is not None:
            after = query.after
            found = [(p, d) for p, d in found if (p > after if query.ascending else p < after)]
        page = found[: query.limit]
        return TimelinePage([doc for _, doc in page], page[-1][0] if len(found) > query.limit else None)


class MemoryBulkStore:
    """BulkStore in a dict, with the same conditions as DynamoDB: status-guarded moves, cursor-guarded pages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.operations: dict[str, Doc] = {}

    def put_operation(self, operation: Doc) -> bool:
        with self._lock:
            if operation["id"] in self.operations:
                return False
            self.operations[operation["id"]] = copy.deepcopy(operation)
            return True

    def get_operation(self, operation_id: str) -> Doc | None:
        with self._lock:
            return copy.deepcopy(self.operations.get(operation_id))

    def list_operations(
        self, team_id: str, kind: str, *, statuses: frozenset[str] | None, limit: int, after: str | None
    ) -> TimelinePage:
        with self._lock:
            found = sorted(
                (
                    (f"{doc['created_at']}#{doc['id']}", copy.deepcopy(doc))
                    for doc in self.operations.values()
                    if doc["team_id"] == team_id
                    and doc["type"] == kind
                    and (statuses is None or doc["status"] in statuses)
                ),
                key=lambda pair: pair[0],
                reverse=True,
            )
        if after is not None:
            found = [(p, d) for p, d in found if p < after]
        page = found[:limit]
        return TimelinePage([doc for _, doc in page], page[-1][0] if len(found) > limit else None)

    def transition_operation(self, operation_id: str, *, from_statuses: frozenset[str], changes: Doc) -> Doc | None:
        with self._lock:
            doc = self.operations.get(operation_id)
            if doc is None or doc["status"] not in from_statuses:
                return None
            doc.update(copy.deepcopy(changes))
            return copy.deepcopy(doc)

    def advance_operation(self, operation_id: str, *, cursor: str, next_cursor: str, counts: Doc) -> bool:
        with self._lock:
            doc = self.operations.get(operation_id)
            if doc is None or doc["status"] != BulkStatus.RUNNING or doc.get("cursor") != cursor:
                return False
            doc["cursor"] = next_cursor
            for name, number in counts.items():
                doc[name] = int(doc.get(name) or 0) + int(number)
            return True

    def add_outcome(self, operation_id: str, *, failed: bool) -> None:
        with self._lock:
            doc = self.operations.get(operation_id)
            if doc is None:
                return
            doc["done_count"] = int(doc.get("done_count") or 0) + 1
            if failed:
                doc["failed_count"] = int(doc.get("failed_count") or 0) + 1


class MemoryBulkRunner:
    """Records the executions a bulk operation asked for; tests run the task handlers themselves."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start(self, *, team_id: str, operation_id: str) -> str:
        self.started.append((team_id, operation_id))
        return f"arn:aws:states:us-east-1:000000000000:execution:fasthook-memory-bulk:{operation_id}"


class MemoryPayloadStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def get(self, key: str) -> bytes:
        return self.objects[key]


class MemoryQueues:
    """Records what would be sent to SQS; tests drain it into the workers by hand."""

    def __init__(self) -> None:
        self.route: list[str] = []
        self.deliver: list[tuple[str, int]] = []

    def send_route(self, body: str) -> None:
        self.route.append(body)

    def send_deliver(self, bodies: list[tuple[str, int]]) -> None:
        self.deliver.extend(bodies)
