"""The records table on DynamoDB: requests, events, ignored branches, attempts, dedupe claims, rate buckets.

Records are stored as native DynamoDB attributes (not one JSON string as in the control table), so
conditions can compare fields (`status`, `lease_until`, `expires_at`) and index keys sit next to the
fields they are derived from. Every index key is derived here from the document a write produces;
callers never see or pass one. Key formats live in keys.py; docs/dynamodb.md has one row per pattern.

A failed condition is an answer, not an error: the methods return False / None exactly as the
in-memory fake does, and the contract suite runs the same assertions against both.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamo import keys
from chalicelib.adapters.dynamo.items import (
    INTERNAL,
    RECORD_IS_NEW,
    Item,
    av,
    is_conflict,
    put_new,
    read_page,
    to_doc,
    to_item,
    window_query,
)
from chalicelib.domain.statuses import PENDING_EVENT_STATUSES, EventStatus
from chalicelib.domain.timefmt import iso
from chalicelib.ports import Doc, TimelinePage, TimelineQuery

_LEASE = ("lease_id", "lease_until")
_WORK_KEYS = ("gsi3pk", "gsi3sk")
_PENDING = tuple(sorted(s.value for s in PENDING_EVENT_STATUSES))

# ---- named conditions -------------------------------------------------------------------------------

# "request exists": finishing the routing of a request that is gone (expired) must not create a stub item.
REQUEST_EXISTS = "attribute_exists(pk)"
# "request not routed": a routing failure is only recorded on a stored request no run finished routing.
REQUEST_NOT_ROUTED = "attribute_exists(pk) AND (attribute_not_exists(routed_at) OR attribute_type(routed_at, :null))"
# "no live lease": a lease that expired (its worker died) no longer protects the event.
NO_LIVE_LEASE = "(attribute_not_exists(lease_until) OR attribute_type(lease_until, :null) OR lease_until <= :now)"
# "pending and free": exactly one worker at a time may deliver an event, and only while it waits for delivery.
PENDING_AND_FREE = f"#status IN (:pending0, :pending1) AND {NO_LIVE_LEASE}"
# "still our lease": a worker whose lease expired and was taken over must not overwrite the new holder's outcome.
STILL_OUR_LEASE = "lease_id = :lease"
# "not yet retried by this bulk operation": a bulk page processed twice must not retry an event twice.
NOT_OF_BATCH = (
    "(attribute_not_exists(batch_operation_id) OR attribute_type(batch_operation_id, :null)"
    " OR batch_operation_id <> :batch)"
)
# "unchanged since read": the work-index keys were derived from the read document.
UNCHANGED_SINCE_READ = "rev = :rev"
# "claim is free": no claim on the key, or its window ended (TTL deletion is late, and moto never does it).
CLAIM_IS_FREE = "attribute_not_exists(pk) OR expires_at <= :now"
# "bucket unchanged": the refill was computed from this exact (tokens, updated_ms); concurrent takers retry.
BUCKET_UNCHANGED = "updated_ms = :read_ms AND tokens = :read_tokens"

_TOKEN_RETRIES = 5
_TRANSITION_RETRIES = 5
# Rounds of `limit` work-index entries one due_events call reads past live leases.
_DUE_ROUNDS = 10
_BATCH_GET_ROUNDS = 8


def _rev(item: Item) -> int | None:
    return int(item["rev"]["N"]) if "rev" in item else None


def _try_order(attempt: Doc) -> tuple[int, str]:
    return int(attempt.get("attempt_number") or 0), str(attempt.get("created_at") or "")


def _work_keys(doc: Doc) -> keys.Key | None:
    """The sparse work index of an event: due time while pending, creation while held, none when final."""
    status = doc.get("status")
    if status in _PENDING:
        return keys.due_work(doc["id"], _due_of(doc))
    if status == EventStatus.HOLD:
        return keys.held_work(doc["connection_id"], doc["created_at"], doc["id"])
    return None


def _due_of(doc: Doc) -> str:
    """When a pending event needs the sweeper: when its lease ends while leased, else when its try is due."""
    return doc.get("lease_until") or doc.get("next_attempt_at") or doc["created_at"]


class _Update:
    """Builds an UpdateExpression with placeholders for every name (documents use reserved words)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._set: list[str] = []
        self._remove: list[str] = []
        self._add: list[str] = []

    def name(self, attribute: str) -> str:
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any, *, raw: bool = False) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value if raw else av(value)
        return placeholder

    def set(self, attribute: str, value: Any, *, raw: bool = False) -> None:
        self._set.append(f"{self.name(attribute)} = {self.value(value, raw=raw)}")

    def remove(self, attribute: str) -> None:
        self._remove.append(self.name(attribute))

    def add(self, attribute: str, number: int) -> None:
        self._add.append(f"{self.name(attribute)} {self.value(number)}")

    def set_work_keys(self, work: keys.Key | None) -> None:
        if work is None:
            for attribute in _WORK_KEYS:
                self.remove(attribute)
        else:
            for attribute, av in work.items():
                self.set(attribute, av, raw=True)

    def kwargs(self, condition: str, condition_values: dict[str, Any]) -> dict[str, Any]:
        clauses = []
        if self._set:
            clauses.append("SET " + ", ".join(self._set))
        if self._remove:
            clauses.append("REMOVE " + ", ".join(self._remove))
        if self._add:
            clauses.append("ADD " + ", ".join(self._add))
        return {
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": condition,
            # Conditions refer to the status field as `#status`.
            "ExpressionAttributeNames": {**self.names, **({"#status": "status"} if "#status" in condition else {})},
            "ExpressionAttributeValues": {**self.values, **condition_values},
        }


class DynamoRecordStore:
    """RecordStore on the records table (pk/sk, gsi1 team timelines, gsi2 children, gsi3 work index)."""

    def __init__(self, client: Any, table: str, *, timeline_pages: int = 8, timeline_page_items: int = 1000) -> None:
        self._db = client
        self._table = table
        # One list call reads at most `timeline_pages` Query pages of at most `timeline_page_items` items,
        # then answers with what it found and a resume position: a rare filter never makes a call unbounded.
        self._timeline_pages = timeline_pages
        self._timeline_page_items = timeline_page_items

    # ---- helpers --------------------------------------------------------------------------------

    def _get(self, key: keys.Key) -> Item | None:
        return self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")

    def _put_new(self, item: Item) -> bool:
        return put_new(self._db, self._table, item)

    def _update(self, key: keys.Key, update: _Update, condition: str, values: dict[str, Any]) -> Item | None:
        """The item after a conditional update, or None when the condition failed."""
        try:
            return self._db.update_item(
                TableName=self._table, Key=key, ReturnValues="ALL_NEW", **update.kwargs(condition, values)
            ).get("Attributes")
        except ClientError as exc:
            if is_conflict(exc):
                return None
            raise

    def _query(
        self,
        index: str,
        pk_name: str,
        pk: str,
        *,
        sk_condition: str = "",
        values: dict[str, Any] | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> Iterator[Item]:
        """The items of an index partition in sort-key order, lazily: all pages, or the first `limit` items."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{pk_name} = :pk{sk_condition}",
            "ExpressionAttributeValues": {":pk": {"S": pk}, **(values or {})},
        }
        left = limit
        while left is None or left > 0:
            sizes = [n for n in (left, page_size) if n is not None]
            if sizes:
                kwargs["Limit"] = min(sizes)
            page = self._db.query(**kwargs)
            items = page.get("Items", [])
            yield from items
            if left is not None:
                left -= len(items)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _children(self, parent_pk: str, child_kind: str) -> list[Doc]:
        # gsi2 holds keys only (infra/resources.py): the children are read from the table, in index order.
        hits = list(
            self._query(
                "gsi2",
                "gsi2pk",
                parent_pk,
                sk_condition=" AND begins_with(gsi2sk, :kind)",
                values={":kind": {"S": f"{child_kind}#"}},
            )
        )
        docs = {doc["id"]: doc for doc in self._batch_get([{"pk": hit["pk"], "sk": hit["sk"]} for hit in hits])}
        order = [hit["gsi2sk"]["S"].partition("#")[2] for hit in hits]
        return [docs[child_id] for child_id in order if child_id in docs]

    def _batch_get(self, key_list: list[keys.Key]) -> list[Doc]:
        """Full, strongly consistent documents for index hits (a GSI may lag behind the table)."""
        found: list[Doc] = []
        for start in range(0, len(key_list), 100):
            request: dict[str, Any] = {self._table: {"Keys": key_list[start : start + 100], "ConsistentRead": True}}
            for backoff in range(_BATCH_GET_ROUNDS):
                if backoff:
                    time.sleep(min(1.0, 0.05 * 2**backoff))  # keys left unprocessed mean throttling: back off
                answer = self._db.batch_get_item(RequestItems=request)
                found.extend(doc for doc in map(to_doc, answer.get("Responses", {}).get(self._table, [])) if doc)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError(f"DynamoDB left {len(request[self._table]['Keys'])} keys unprocessed")
        return found

    # ---- requests -------------------------------------------------------------------------------

    def put_request(self, request: Doc) -> bool:
        item = {
            **to_item(request),
            **keys.request(request["id"]),
            **keys.team_timeline_entry(request["team_id"], "REQ", request["ingested_at"], request["id"]),
        }
        return self._put_new(item)

    def get_request(self, request_id: str) -> Doc | None:
        return to_doc(self._get(keys.request(request_id)))

    def finish_routing(self, request_id: str, *, events_count: int, ignored_count: int, routed_at: str) -> None:
        update = _Update()
        update.set("events_count", events_count)
        update.set("ignored_count", ignored_count)
        update.set("routed_at", routed_at)
        self._update(keys.request(request_id), update, REQUEST_EXISTS, {})

    def mark_routing_failed(self, request_id: str, *, cause: str, at: str) -> bool:
        update = _Update()
        update.set("routing_error", cause)
        update.set("routing_failed_at", at)
        values = {":null": {"S": "NULL"}}
        return self._update(keys.request(request_id), update, REQUEST_NOT_ROUTED, values) is not None

    # ---- events and ignored branches ------------------------------------------------------------

    def put_event(self, event: Doc) -> bool:
        item = {
            **to_item(event),
            **keys.event(event["id"]),
            **keys.team_timeline_entry(event["team_id"], "EVT", event["created_at"], event["id"]),
            **keys.request_child(event["request_id"], "EVT", event["id"]),
            **(_work_keys(event) or {}),
            "rev": {"N": "1"},
        }
        return self._put_new(item)

    def put_ignored(self, ignored: Doc) -> bool:
        item = {
            **to_item(ignored),
            **keys.ignored(ignored["id"]),
            **keys.team_timeline_entry(ignored["team_id"], "IGN", ignored["created_at"], ignored["id"]),
            **keys.request_child(ignored["request_id"], "IGN", ignored["id"]),
        }
        return self._put_new(item)

    def get_event(self, event_id: str) -> Doc | None:
        return to_doc(self._get(keys.event(event_id)))

    def events_of_request(self, request_id: str) -> list[Doc]:
        return self._children(keys.request_children(request_id), "EVT")

    def ignored_of_request(self, request_id: str) -> list[Doc]:
        return self._children(keys.request_children(request_id), "IGN")

    def lease_event(self, event_id: str, *, lease_id: str, now: str, until: str) -> Doc | None:
        update = _Update()
        update.set("lease_id", lease_id)
        update.set("lease_until", until)
        # The work index keeps the event's due time: moving it to the lease's end would rewrite the
        # index entry (2 WRU) on every delivery. The sweeper judges a leased event by its lease instead
        # (_due_of), so an event whose worker died is found once the lease has ended.
        update.add("rev", 1)
        values = {
            ":pending0": av(_PENDING[0]),
            ":pending1": av(_PENDING[1]),
            ":null": {"S": "NULL"},
            ":now": av(now),
        }
        return to_doc(self._update(keys.event(event_id), update, PENDING_AND_FREE, values))

    def complete_event(self, event_id: str, *, lease_id: str, changes: Doc, leased: Doc | None = None) -> bool:
        current = leased if leased is not None and leased.get("lease_id") == lease_id else None
        if current is None:
            current = to_doc(self._get(keys.event(event_id)))
        if current is None or current.get("lease_id") != lease_id:
            return False
        # Only the lease holder writes an event while lease_id is its own (every other write replaces or
        # removes lease_id), so the document read above, or the one the lease returned, is still current
        # when the condition passes.
        result = {**current, **changes}
        for name in _LEASE:
            result.pop(name, None)
        update = self._changes(changes)
        update.set_work_keys(_work_keys(result))
        update.add("rev", 1)
        return self._update(keys.event(event_id), update, STILL_OUR_LEASE, {":lease": av(lease_id)}) is not None

    def transition_event(
        self,
        event_id: str,
        *,
        from_statuses: frozenset[str],
        changes: Doc,
        now: str,
        unless_batch_operation_id: str | None = None,
    ) -> Doc | None:
        if not from_statuses:
            return None
        froms = sorted(str(s) for s in from_statuses)
        status_in = "#status IN (" + ", ".join(f":from{i}" for i in range(len(froms))) + ")"
        item = self._get(keys.event(event_id))
        for _ in range(_TRANSITION_RETRIES):
            current = to_doc(item)
            if item is None or current is None:
                return None
            result = {**current, **changes}
            for name in _LEASE:
                result.pop(name, None)
            update = self._changes(changes)
            update.set_work_keys(_work_keys(result))
            update.add("rev", 1)
            rev = _rev(item)
            # "allowed from here and free" + "unchanged since read": the work keys come from `current`.
            condition = f"{status_in} AND {NO_LIVE_LEASE} AND " + (
                UNCHANGED_SINCE_READ if rev is not None else "attribute_not_exists(rev)"
            )
            values = {f":from{i}": av(s) for i, s in enumerate(froms)}
            values.update({":null": {"S": "NULL"}, ":now": av(now)})
            if unless_batch_operation_id is not None:
                condition += f" AND {NOT_OF_BATCH}"
                values[":batch"] = av(unless_batch_operation_id)
            if rev is not None:
                values[":rev"] = {"N": str(rev)}
            written = self._update(keys.event(event_id), update, condition, values)
            if written is not None:
                return to_doc(written)
            fresh = self._get(keys.event(event_id))
            if fresh is None or _rev(fresh) == rev:
                return None  # nothing moved: the status or a live lease refused the transition
            item = fresh  # another write landed in between: decide again on the new document
        return None

    def _changes(self, changes: Doc) -> _Update:
        update = _Update()
        for name, value in changes.items():
            if name not in INTERNAL and name not in _LEASE and name != "id":
                update.set(name, value)
        for name in _LEASE:
            update.remove(name)
        return update

    # ---- attempts -------------------------------------------------------------------------------

    def put_attempt(self, attempt: Doc) -> None:
        item = {
            **to_item(attempt),
            **keys.attempt(attempt["id"]),
            **keys.team_timeline_entry(attempt["team_id"], "ATT", attempt["created_at"], attempt["id"]),
            **keys.event_attempt(attempt["event_id"], attempt["id"]),
        }
        # Unconditional: an attempt id is one try of one event (flow/deliver.py), so a write either repeats
        # itself or replaces a try whose event was never updated with the try that took it over.
        self._db.put_item(TableName=self._table, Item=item)

    def get_attempt(self, attempt_id: str) -> Doc | None:
        return to_doc(self._get(keys.attempt(attempt_id)))

    def attempts_of_event(self, event_id: str) -> list[Doc]:
        # Attempt ids derive from (event, try number), so they do not sort in time: the number does.
        return sorted(self._children(keys.event_attempts(event_id), "ATT"), key=_try_order)

    # ---- the work index -------------------------------------------------------------------------

    def due_events(self, *, before: str, limit: int) -> list[Doc]:
        if limit <= 0:
            return []
        shards = [
            self._query(
                "gsi3",
                "gsi3pk",
                partition,
                sk_condition=" AND gsi3sk < :before",
                values={":before": {"S": before}},
                page_size=limit,
            )
            for partition in keys.due_partitions()
        ]
        # gsi3sk is `<due>#<id>` with fixed-width ISO times, so text order is (due, id) order.
        hits = heapq.merge(*shards, key=lambda item: item["gsi3sk"]["S"])
        due: list[Doc] = []
        # Events being delivered keep their due time in the index (lease_event) but are not due while
        # their lease lives, so the oldest entries may be live leases: read past them, within a bound.
        for _ in range(_DUE_ROUNDS):
            chunk = list(islice(hits, limit))
            docs = self._batch_get([{"pk": hit["pk"], "sk": hit["sk"]} for hit in chunk])
            # The index is eventually consistent: keep only what the table says is still pending and due.
            due += [doc for doc in docs if doc.get("status") in _PENDING and _due_of(doc) < before]
            if len(due) >= limit or len(chunk) < limit:
                break
        return sorted(due, key=lambda doc: (_due_of(doc), doc["id"]))[:limit]

    def held_events(self, connection_id: str, *, limit: int) -> list[Doc]:
        if limit <= 0:
            return []
        # Unpause releases page after page and stops at a short page; the index still lists events it
        # released a moment ago, so read past those until `limit` are really held or the index ends.
        hits = self._query("gsi3", "gsi3pk", keys.held_partition(connection_id), page_size=limit)
        held: list[Doc] = []
        while len(held) < limit:
            chunk = list(islice(hits, limit - len(held)))
            if not chunk:
                break
            docs = self._batch_get([{"pk": hit["pk"], "sk": hit["sk"]} for hit in chunk])
            held += [d for d in docs if d.get("status") == EventStatus.HOLD and d["connection_id"] == connection_id]
        return sorted(held, key=lambda doc: (doc["created_at"], doc["id"]))

    # ---- team timelines (the observability lists) -----------------------------------------------

    def _timeline_kwargs(self, team_id: str, kind: str, query: TimelineQuery) -> dict[str, Any] | None:
        """Query arguments for gsi1: the window (and cursor) as the key condition, the filters as a FilterExpression."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses: list[str] = []
        for i, (name, options) in enumerate(query.fields):
            names[f"#f{i}"] = name
            for j, option in enumerate(options):
                values[f":f{i}_{j}"] = av(option)
            clauses.append(f"#f{i} IN ({', '.join(f':f{i}_{j}' for j in range(len(options)))})")
        if query.in_flight is not None:
            names["#lease"] = "lease_until"
            values[":now"] = av(iso(query.now))
            if query.in_flight:
                clauses.append("#lease > :now")
            else:
                values[":null"] = {"S": "NULL"}
                clauses.append("(attribute_not_exists(#lease) OR attribute_type(#lease, :null) OR #lease <= :now)")
        if query.search is not None:
            values[":q"] = av(query.search)
            matches = []
            for k, name in enumerate(query.search_exact):
                names[f"#se{k}"] = name
                matches.append(f"#se{k} = :q")
            for k, name in enumerate(query.search_prefix):
                names[f"#sp{k}"] = name
                matches.append(f"begins_with(#sp{k}, :q)")
            clauses.append("(" + " OR ".join(matches) + ")")
        return window_query(self._table, keys.team_timeline(team_id, kind), query, clauses, names, values)

    def query_timeline(self, team_id: str, kind: str, query: TimelineQuery) -> TimelinePage:
        kwargs = self._timeline_kwargs(team_id, kind, query)
        if kwargs is None:
            return TimelinePage([], None)
        filtered = bool(query.fields or query.in_flight is not None or query.search is not None)
        return read_page(
            self._db,
            kwargs,
            limit=query.limit,
            after=query.after,
            filtered=filtered,
            pages=self._timeline_pages,
            page_items=self._timeline_page_items,
        )

    def count_timeline(self, team_id: str, kind: str, query: TimelineQuery) -> int:
        kwargs = self._timeline_kwargs(team_id, kind, replace(query, after=None))
        if kwargs is None:
            return 0
        kwargs["Select"] = "COUNT"
        total = 0
        while True:
            page = self._db.query(**kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def timeline_points(self, team_id: str, kind: str, query: TimelineQuery, attributes: tuple[str, ...]) -> list[Doc]:
        kwargs = self._timeline_kwargs(team_id, kind, replace(query, ascending=True, after=None))
        if kwargs is None:
            return []
        # Only the attributes a metric buckets by travel back (the read units are those of the whole
        # items DynamoDB evaluates either way: a projection trims the response, not the bill).
        projected = {f"#p{i}": name for i, name in enumerate(attributes)}
        kwargs["ExpressionAttributeNames"].update(projected)
        kwargs["ProjectionExpression"] = ", ".join(projected)
        points: list[Doc] = []
        while True:
            page = self._db.query(**kwargs)
            points += [d for d in map(to_doc, page.get("Items", [])) if d is not None]
            if "LastEvaluatedKey" not in page:
                return points
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ---- dedupe claims and rate-limit buckets ---------------------------------------------------

    def claim_dedupe(self, key: str, *, now_epoch: int, until_epoch: int) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item={**keys.dedupe(key), "expires_at": {"N": str(int(until_epoch))}},
                ConditionExpression=CLAIM_IS_FREE,
                ExpressionAttributeValues={":now": {"N": str(int(now_epoch))}},
            )
        except ClientError as exc:
            if is_conflict(exc):
                return False
            raise
        return True

    def take_token(self, bucket: str, *, capacity: int, refill_per_s: float, now_ms: int) -> int:
        key = keys.rate_bucket(bucket)
        for _ in range(_TOKEN_RETRIES):
            item = self._get(key)
            if item is None:
                tokens, at_ms = float(capacity), now_ms
            else:
                tokens, at_ms = float(item["tokens"]["N"]), int(item["updated_ms"]["N"])
            # Workers' clocks differ slightly: time never runs backwards for a bucket.
            elapsed = max(0, now_ms - at_ms)
            available = min(float(capacity), tokens + elapsed / 1000 * refill_per_s)
            if available < 1:
                # Refusing writes nothing: the refill is a function of time, so the next reader computes it.
                return max(1, int((1 - available) / refill_per_s * 1000))
            if self._write_bucket(key, item, tokens=available - 1, at_ms=max(at_ms, now_ms)):
                return 0
        # Others keep winning the bucket: it is busy, so wait about one token's time rather than spin.
        return max(1, int(1000 / refill_per_s))

    def _write_bucket(self, key: keys.Key, read: Item | None, *, tokens: float, at_ms: int) -> bool:
        update = _Update()
        update.set("tokens", tokens)
        update.set("updated_ms", at_ms)
        if read is None:
            # "first use": of two first takers only one creates the bucket; the other reads it and retries.
            return self._update(key, update, RECORD_IS_NEW, {}) is not None
        values = {":read_ms": read["updated_ms"], ":read_tokens": read["tokens"]}
        return self._update(key, update, BUCKET_UNCHANGED, values) is not None
