"""Counts every AWS call the app makes, by service, operation and pipeline stage, and what each one bills.

The hooks are botocore event handlers added to botocore's list of built-in handlers, so every botocore
session created after `install()` gets them; FastHook's adapters make their clients lazily (and the
embedded stack resets the wiring when it starts), so nothing in chalicelib needs a hook point. The
bench never changes what the app asks for except one thing: DynamoDB calls that accept it get
`ReturnConsumedCapacity=TOTAL`, so moto's own capacity figures are recorded too.

Billed units:
- DynamoDB: moto reports a constant per call (1 per PutItem/Query, 0.5 per GetItem, nothing for
  UpdateItem or BatchGetItem) and ignores item size and index writes, so the bill uses a model of the
  on-demand rules instead, from the items in requests and responses: a write costs ceil(KB) of the
  larger of the old and new item, plus the same again for every GSI the item enters, stays in or
  leaves (twice when its index key changes); a read costs ceil(4 KB) of what it returned, halved when
  eventually consistent; a failed condition still costs the write. moto's figures sit next to it.
- SQS: one request per 64 KB chunk of the payload sent or received (at least one per call).
- S3: requests, by operation.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from botocore import handlers

KB: Final = 1024
SQS_CHUNK: Final = 64 * KB
_CTX = "fasthook_bench"


def stage_of(thread_name: str) -> str:
    """Which pipeline stage a thread belongs to, by the names local/ and the handlers give their threads."""
    if thread_name.startswith("poll-route"):
        return "route"
    if thread_name.startswith(("poll-deliver", "fasthook-deliver")):
        return "deliver"
    if thread_name.startswith("timer-sweeper"):
        return "sweeper"
    # ThreadingHTTPServer's request threads: ingest (and the API); "ingest-route": ingest's route sends
    if "process_request" in thread_name or thread_name.startswith("ingest-route"):
        return "ingest"
    return "bench"


# ---- DynamoDB item sizes (the on-demand billing rules) -------------------------------------------


def _value_size(value: dict[str, Any]) -> int:
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return len(str(data).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(len(str(n)) // 2 + 1 for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items())
    return 0


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB bills an item (wire format) as: attribute names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _kb(size: int, unit: int = KB) -> int:
    return max(1, math.ceil(size / unit))


@dataclass(frozen=True)
class TableShape:
    key: tuple[str, ...]
    indexes: dict[str, tuple[str, ...]]
    keys_only: frozenset[str] = frozenset()  # indexes that copy keys, not items


@dataclass(frozen=True)
class _ItemState:
    size: int
    index_keys: dict[str, tuple[str, ...]]
    # Bytes of the item's copy in each index it is in: the item (ALL) or its keys (KEYS_ONLY).
    entry_sizes: dict[str, int] = field(default_factory=dict)
    keys_only: frozenset[str] = frozenset()


def _state(item: dict[str, Any], shape: TableShape) -> _ItemState:
    keys, entries = {}, {}
    size = item_size(item)
    for name, attributes in shape.indexes.items():
        if all(a in item for a in attributes):
            keys[name] = tuple(str(item[a]) for a in attributes)
            copied = (*shape.key, *attributes) if name in shape.keys_only else None
            entries[name] = item_size({a: item[a] for a in copied if a in item}) if copied else size
    return _ItemState(size, keys, entries, shape.keys_only)


def write_units(old: _ItemState | None, new: _ItemState | None) -> int:
    """WRU of one write: the table's item, plus each index the item enters, stays in or leaves.

    An ALL index rewrites its copy on every write of the item; a KEYS_ONLY index only when the
    item enters it, leaves it or its index key changes.
    """
    size = max(old.size if old else 0, new.size if new else 0)
    units = _kb(size)
    keys_only = (old.keys_only if old else frozenset()) | (new.keys_only if new else frozenset())
    for name in set(old.index_keys if old else {}) | set(new.index_keys if new else {}):
        before = old.index_keys.get(name) if old else None
        after = new.index_keys.get(name) if new else None
        if before is not None and after is not None and before != after:
            # index key moved: delete + put
            units += _kb(old.entry_sizes[name]) + _kb(new.entry_sizes[name])  # type: ignore[union-attr]
        elif before is not None and after is not None and name in keys_only:
            continue  # same keys, nothing copied changed
        elif after is not None:
            units += _kb(new.entry_sizes[name])  # type: ignore[union-attr]
        else:
            units += _kb(old.entry_sizes[name])  # type: ignore[union-attr]
    return units


def read_units(size: int, *, consistent: bool) -> float:
    return _kb(size, 4 * KB) * (1.0 if consistent else 0.5)


# ---- the meter -------------------------------------------------------------------------------------


@dataclass
class OpStats:
    calls: int = 0
    errors: int = 0
    ms_total: float = 0.0
    billed: float = 0.0  # WRU/RRU (DynamoDB, modelled), 64 KB chunks (SQS), requests (S3)
    moto_capacity: float = 0.0  # DynamoDB ConsumedCapacity as moto reported it
    messages: int = 0  # SQS: messages received (ReceiveMessage) or sent
    nonempty: int = 0  # SQS ReceiveMessage calls that returned messages


@dataclass
class Snapshot:
    """Counters of one window: (stage, "service.Operation") -> stats, and receives per queue URL."""

    ops: dict[tuple[str, str], OpStats] = field(default_factory=dict)
    receives: dict[str, OpStats] = field(default_factory=dict)


class AwsMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[tuple[str, str], OpStats] = defaultdict(OpStats)
        self._receives: dict[str, OpStats] = defaultdict(OpStats)
        self._tables: dict[str, TableShape] = {}
        self._items: dict[tuple[str, tuple[str, ...]], _ItemState] = {}
        self._specs = [
            ("before-parameter-build.dynamodb", self._before_dynamodb),
            ("before-parameter-build", self._before),
            ("after-call", self._after),
        ]

    # -- lifecycle --

    def install(self) -> AwsMeter:
        handlers.BUILTIN_HANDLERS.extend(self._specs)
        return self

    def uninstall(self) -> None:
        for spec in self._specs:
            if spec in handlers.BUILTIN_HANDLERS:
                handlers.BUILTIN_HANDLERS.remove(spec)

    def learn_tables(self, dynamodb: Any, names: list[str]) -> None:
        """Key and index attributes of the tables the write model needs (one DescribeTable each)."""
        for name in names:
            table = dynamodb.describe_table(TableName=name)["Table"]
            key = tuple(k["AttributeName"] for k in table["KeySchema"])
            declared = table.get("GlobalSecondaryIndexes", []) + table.get("LocalSecondaryIndexes", [])
            indexes = {index["IndexName"]: tuple(k["AttributeName"] for k in index["KeySchema"]) for index in declared}
            keys_only = frozenset(
                index["IndexName"] for index in declared if index["Projection"]["ProjectionType"] == "KEYS_ONLY"
            )
            self._tables[name] = TableShape(key, indexes, keys_only)

    def reset(self) -> None:
        with self._lock:
            self._ops = defaultdict(OpStats)
            self._receives = defaultdict(OpStats)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                {k: OpStats(**vars(v)) for k, v in self._ops.items()},
                {k: OpStats(**vars(v)) for k, v in self._receives.items()},
            )

    # -- hooks --

    def _before_dynamodb(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members and "ReturnConsumedCapacity" not in params:
            params["ReturnConsumedCapacity"] = "TOTAL"

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context[_CTX] = (time.perf_counter(), params, threading.current_thread().name)

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        started, params, thread = context.pop(_CTX, (None, {}, threading.current_thread().name))
        elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        service = model.service_model.service_name
        operation = model.name
        failed = http_response.status_code >= 300
        billed, moto, messages = 0.0, 0.0, 0
        with self._lock:
            if service == "dynamodb":
                billed = self._dynamodb_units(operation, params, parsed, failed)
                moto = _moto_capacity(parsed.get("ConsumedCapacity"))
            elif service == "sqs":
                billed, messages = _sqs_units(operation, params, parsed)
            else:
                billed = 1.0
            stats = self._ops[(stage_of(thread), f"{service}.{operation}")]
            stats.calls += 1
            stats.errors += int(failed)
            stats.ms_total += elapsed_ms
            stats.billed += billed
            stats.moto_capacity += moto
            stats.messages += messages
            if service == "sqs" and operation == "ReceiveMessage":
                stats.nonempty += int(messages > 0)
                queue = self._receives[params.get("QueueUrl", "")]
                queue.calls += 1
                queue.messages += messages
                queue.nonempty += int(messages > 0)
                queue.billed += billed

    # -- DynamoDB model (called under the lock) --

    def _key_of(self, table: str, item: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
        shape = self._tables.get(table)
        if shape is None or not all(k in item for k in shape.key):
            return None
        return table, tuple(str(item[k]) for k in shape.key)

    def _remember(self, table: str, item: dict[str, Any]) -> _ItemState | None:
        key, shape = self._key_of(table, item), self._tables.get(table)
        if key is None or shape is None:
            return None
        state = _state(item, shape)
        self._items[key] = state
        return state

    def _dynamodb_units(self, operation: str, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> float:
        table = params.get("TableName", "")
        shape = self._tables.get(table, TableShape((), {}))
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            request_item = params.get("Item") or params.get("Key") or {}
            key = self._key_of(table, request_item)
            old = self._items.get(key) if key else None
            if failed:  # a failed condition still bills the write, on the table only
                return float(_kb(max(old.size if old else 0, item_size(params.get("Item") or {}))))
            if operation == "PutItem":
                new = self._remember(table, params["Item"])
            elif operation == "UpdateItem":
                attributes = parsed.get("Attributes")
                new = self._remember(table, attributes) if attributes and self._key_of(table, attributes) else old
            else:
                new = None
                if key:
                    self._items.pop(key, None)
            if new is None and old is None:
                new = _state(request_item, shape)
            return float(write_units(old, new))
        if operation == "GetItem":
            item = parsed.get("Item") or {}
            if item:
                self._remember(table, item)
            return read_units(item_size(item), consistent=bool(params.get("ConsistentRead")))
        if operation in ("Query", "Scan"):
            items = parsed.get("Items") or []
            for item in items:
                self._remember(table, item)
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            return read_units(sum(item_size(i) for i in items), consistent=consistent)
        if operation == "BatchGetItem":
            units = 0.0
            for name, items in (parsed.get("Responses") or {}).items():
                consistent = bool((params.get("RequestItems") or {}).get(name, {}).get("ConsistentRead"))
                for item in items:
                    self._remember(name, item)
                    units += read_units(item_size(item), consistent=consistent)
            return units
        if operation == "BatchWriteItem":
            return float(
                sum(
                    _kb(item_size((request.get("PutRequest") or {}).get("Item") or {}))
                    for requests in (params.get("RequestItems") or {}).values()
                    for request in requests
                )
            )
        if operation == "TransactWriteItems":  # a transactional write costs two units per KB
            return float(
                sum(2 * _kb(item_size((op.get("Put") or {}).get("Item") or {})) for op in params["TransactItems"])
            )
        if operation == "TransactGetItems":
            return float(2 * len(params.get("TransactItems") or []))
        return 0.0


def _moto_capacity(consumed: Any) -> float:
    if isinstance(consumed, dict):
        return float(consumed.get("CapacityUnits") or 0)
    if isinstance(consumed, list):
        return float(sum(c.get("CapacityUnits") or 0 for c in consumed))
    return 0.0


def _sqs_units(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> tuple[float, int]:
    """(billed requests, messages): every 64 KB chunk of the payload is a request, at least one per call."""
    if operation == "SendMessage":
        return float(_kb(len(params.get("MessageBody", "").encode()), SQS_CHUNK)), 1
    if operation == "SendMessageBatch":
        entries = params.get("Entries") or []
        size = sum(len(e.get("MessageBody", "").encode()) for e in entries)
        return float(_kb(size, SQS_CHUNK)), len(entries)
    if operation == "ReceiveMessage":
        received = parsed.get("Messages") or []
        size = sum(len(m.get("Body", "").encode()) for m in received)
        return float(_kb(size, SQS_CHUNK)), len(received)
    return 1.0, 0
