"""Bulk retry/replay operations on DynamoDB, in the records table beside the events they retry.

One item per operation (`BCH#<id>` / `BCH`) with native attributes, so the counters move by atomic
ADDs (the deliver worker bumps `done_count` while the state machine bumps `queued_count`) and status
changes are conditional writes. gsi1 holds each team's operations of one kind
(`TEAM#<tm>#BCH#events|requests`, `<created_at>#<id>`), so a list is one Query. Key formats live in
keys.py; docs/dynamodb.md has the rows.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamo import keys
from chalicelib.adapters.dynamo.items import av, is_conflict, put_new, read_page, to_doc, to_item
from chalicelib.domain.statuses import BulkStatus
from chalicelib.ports import Doc, TimelinePage

# "status allows it": a cancelled or finished operation never moves again, whatever a late task says.
STATUS_IN = "#status IN ({})"
# "page not yet recorded": the cursor is where this run started its page; a second run of the same page
# (a retried task) finds it moved and adds nothing, so the counters count each page once.
PAGE_NOT_RECORDED = "#status = :running AND #cursor = :cursor"
# Operations are few; a list reads at most this many Query pages before answering with a resume position.
_LIST_PAGES = 4
_LIST_PAGE_ITEMS = 1000


class DynamoBulkStore:
    """BulkStore on the records table (pk/sk for the item, gsi1 for a team's operations of a kind)."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def put_operation(self, operation: Doc) -> bool:
        item = {
            **to_item(operation),
            **keys.bulk_operation(operation["id"]),
            **keys.team_bulk_operation(
                operation["team_id"], operation["type"], operation["created_at"], operation["id"]
            ),
        }
        # "record is new": ids are fresh; a second put would reset counters the workers already moved.
        return put_new(self._db, self._table, item)

    def get_operation(self, operation_id: str) -> Doc | None:
        item = self._db.get_item(TableName=self._table, Key=keys.bulk_operation(operation_id), ConsistentRead=True)
        return to_doc(item.get("Item"))

    def list_operations(
        self, team_id: str, kind: str, *, statuses: frozenset[str] | None, limit: int, after: str | None
    ) -> TimelinePage:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":pk": {"S": keys.team_bulk_operations(team_id, kind)}}
        condition = "gsi1pk = :pk"
        if after is not None:
            values[":after"] = {"S": after}
            condition += " AND gsi1sk < :after"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
        }
        if statuses is not None:
            names["#status"] = "status"
            wanted = sorted(statuses)
            for i, status in enumerate(wanted):
                values[f":s{i}"] = av(status)
            kwargs["FilterExpression"] = STATUS_IN.format(", ".join(f":s{i}" for i in range(len(wanted))))
            kwargs["ExpressionAttributeNames"] = names
        kwargs["ExpressionAttributeValues"] = values
        return read_page(
            self._db,
            kwargs,
            limit=limit,
            after=after,
            filtered=statuses is not None,
            pages=_LIST_PAGES,
            page_items=_LIST_PAGE_ITEMS,
        )

    def transition_operation(self, operation_id: str, *, from_statuses: frozenset[str], changes: Doc) -> Doc | None:
        if not from_statuses:
            return None
        names = {"#status": "status"}
        values: dict[str, Any] = {}
        sets = []
        for i, (name, value) in enumerate(changes.items()):
            names[f"#c{i}"] = name
            values[f":c{i}"] = av(value)
            sets.append(f"#c{i} = :c{i}")
        froms = sorted(from_statuses)
        for i, status in enumerate(froms):
            values[f":from{i}"] = av(status)
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=keys.bulk_operation(operation_id),
                UpdateExpression="SET " + ", ".join(sets),
                # "exists and status allows it": a cancelled operation is never set running or completed.
                ConditionExpression="attribute_exists(pk) AND "
                + STATUS_IN.format(", ".join(f":from{i}" for i in range(len(froms)))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conflict(exc):
                return None
            raise
        return to_doc(answer.get("Attributes"))

    def advance_operation(self, operation_id: str, *, cursor: str, next_cursor: str, counts: Doc) -> bool:
        names = {"#status": "status", "#cursor": "cursor"}
        values: dict[str, Any] = {
            ":running": av(BulkStatus.RUNNING.value),
            ":cursor": av(cursor),
            ":next": av(next_cursor),
        }
        adds = []
        for i, (name, number) in enumerate(sorted(counts.items())):
            names[f"#n{i}"] = name
            values[f":n{i}"] = {"N": str(int(number))}
            adds.append(f"#n{i} :n{i}")
        try:
            self._db.update_item(
                TableName=self._table,
                Key=keys.bulk_operation(operation_id),
                UpdateExpression="SET #cursor = :next" + (" ADD " + ", ".join(adds) if adds else ""),
                ConditionExpression=PAGE_NOT_RECORDED,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_conflict(exc):
                return False
            raise
        return True

    def add_outcome(self, operation_id: str, *, failed: bool) -> None:
        update = "ADD done_count :one" + (", failed_count :one" if failed else "")
        try:
            # "operation exists": a retry whose operation expired must not create a stub item.
            self._db.update_item(
                TableName=self._table,
                Key=keys.bulk_operation(operation_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except ClientError as exc:
            if not is_conflict(exc):
                raise
