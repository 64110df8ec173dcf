"""DynamoDB items of the records table and how they are read: one module shared by every store on it.

The record store (records.py), the execution store (executions.py) and the bulk store (bulk.py) keep
different records in one table, stored the same way: native DynamoDB attributes, index keys derived
by the adapter and hidden from documents, conditional puts of new records, and list pages read with a
bound on the Query pages one call may read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamo import keys
from chalicelib.ports import Doc, TimelinePage, TimelineQuery

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Attributes the adapters own; documents never carry them. `rev` counts an event's writes so a
# read-derive-write (transition_event) can prove nothing moved in between.
INTERNAL = frozenset({"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "rev"})

# "record is new": ids are deterministic (events, ignored branches, executions) or random (requests,
# bulk operations), so a second put of the same id is a replayed write and must not overwrite what
# workers changed since.
RECORD_IS_NEW = "attribute_not_exists(pk)"


def _to_dynamo(value: Any) -> Any:
    """Python values TypeSerializer accepts: floats become Decimals (it refuses floats), tuples lists."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    """Back to the JSON-able shapes documents had: Decimal -> int (or float), Binary -> bytes."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def av(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's wire format."""
    return _serializer.serialize(_to_dynamo(value))


def to_item(doc: Doc) -> Item:
    return {name: av(value) for name, value in doc.items() if name not in INTERNAL}


def to_doc(item: Item | None) -> Doc | None:
    if not item:
        return None
    return {name: _from_dynamo(_deserializer.deserialize(v)) for name, v in item.items() if name not in INTERNAL}


def is_conflict(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def put_new(db: Any, table: str, item: Item) -> bool:
    """Put `item` if no record has its key ("record is new"); False when one does (a replayed write)."""
    try:
        db.put_item(TableName=table, Item=item, ConditionExpression=RECORD_IS_NEW)
    except ClientError as exc:
        if is_conflict(exc):
            return False
        raise
    return True


def read_page(
    db: Any,
    kwargs: dict[str, Any],
    *,
    limit: int,
    after: str | None,
    filtered: bool,
    pages: int,
    page_items: int,
    position: str = "gsi1sk",
) -> TimelinePage:
    """Up to `limit` items of a Query after the position `after`, reading at most `pages` Query pages.

    One item past the page tells whether a next page exists; a filtered query reads wider pages. When
    the read bound is hit with a partial page, the answer resumes after the last item DynamoDB
    evaluated, so a rare filter never makes one call unbounded.
    """
    found: list[Item] = []
    last: dict[str, Any] | None = None
    for _ in range(pages):
        wanted = limit + 1 - len(found)
        kwargs["Limit"] = min(page_items, max(wanted, 200) if filtered else wanted + (after is not None))
        page = db.query(**kwargs)
        # The cursor's own item is inside the inclusive key bound; it was on the previous page.
        found += [item for item in page.get("Items", []) if item[position]["S"] != after]
        if len(found) > limit:
            kept = found[:limit]
            return TimelinePage([d for d in map(to_doc, kept) if d], kept[-1][position]["S"])
        last = page.get("LastEvaluatedKey")
        if last is None:
            return TimelinePage([d for d in map(to_doc, found) if d], None)
        kwargs["ExclusiveStartKey"] = last
    assert last is not None
    return TimelinePage([d for d in map(to_doc, found) if d], last[position]["S"])


def window_query(
    table: str, partition: str, query: TimelineQuery, clauses: list[str], names: dict[str, str], values: dict[str, Any]
) -> dict[str, Any] | None:
    """Query arguments for one gsi1 timeline partition within the query's window, after its cursor.

    `clauses` (ANDed into the FilterExpression) and their `names`/`values` come from the caller;
    expired records are always filtered out (TTL deletion is late, and moto never deletes). None when
    the window is empty.
    """
    low, high = keys.team_timeline_bounds(query.start, query.end)
    if query.after is not None:
        # The cursor's own item is inside the inclusive bound; read_page drops it.
        low, high = (max(low, query.after), high) if query.ascending else (low, min(high, query.after))
    if low > high:
        return None
    return {
        "TableName": table,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
        "FilterExpression": " AND ".join(["(attribute_not_exists(#expires) OR #expires > :epoch)", *clauses]),
        "ExpressionAttributeNames": {"#expires": "expires_at", **names},
        "ExpressionAttributeValues": {
            ":pk": {"S": partition},
            ":low": {"S": low},
            ":high": {"S": high},
            ":epoch": {"N": str(int(query.now.timestamp()))},
            **values,
        },
        "ScanIndexForward": query.ascending,
    }
