"""Transformation executions on DynamoDB, in the records table beside the requests and events they describe.

One item per execution (`EXE#<id>` / `EXE`), so a get is one GetItem; gsi1 holds each
transformation's timeline (`TEAM#<tm>#TRS#<trs>#EXE`, `<created_at>#<id>`), so the list of
`GET /transformations/:id/executions` is one Query on a key made for it, never a Scan. Key formats
live in keys.py; docs/dynamodb.md has the rows.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamo import keys
from chalicelib.adapters.dynamo.items import av, put_new, read_page, to_doc, to_item, window_query
from chalicelib.ports import Doc, TimelinePage, TimelineQuery


class DynamoExecutionStore:
    """ExecutionStore on the records table (pk/sk for the item, gsi1 for a transformation's timeline)."""

    def __init__(self, client: Any, table: str, *, pages: int = 8, page_items: int = 1000) -> None:
        self._db = client
        self._table = table
        # Like the team timelines: one list call reads a bounded number of Query pages, then answers
        # with what it found and a resume position, so a rare log level never makes a call unbounded.
        self._pages = pages
        self._page_items = page_items

    def put_execution(self, execution: Doc) -> bool:
        item = {
            **to_item(execution),
            **keys.execution(execution["id"]),
            **keys.transformation_execution(
                execution["team_id"], execution["transformation_id"], execution["created_at"], execution["id"]
            ),
        }
        # "record is new": the id derives from (request, connection, rule); a redelivered route
        # message must find the first run's execution, not overwrite it with a second.
        return put_new(self._db, self._table, item)

    def get_execution(self, execution_id: str) -> Doc | None:
        item = self._db.get_item(TableName=self._table, Key=keys.execution(execution_id), ConsistentRead=True)
        return to_doc(item.get("Item"))

    def _kwargs(
        self, team_id: str, transformation_id: str, query: TimelineQuery, log_levels: tuple[str, ...]
    ) -> dict[str, Any] | None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses: list[str] = []
        if log_levels:
            names["#levels"] = "log_levels"
            for i, level in enumerate(log_levels):
                values[f":lvl{i}"] = av(level)
            clauses.append("(" + " OR ".join(f"contains(#levels, :lvl{i})" for i in range(len(log_levels))) + ")")
        partition = keys.transformation_executions(team_id, transformation_id)
        return window_query(self._table, partition, query, clauses, names, values)

    def query_executions(
        self, team_id: str, transformation_id: str, query: TimelineQuery, *, log_levels: tuple[str, ...] = ()
    ) -> TimelinePage:
        kwargs = self._kwargs(team_id, transformation_id, query, log_levels)
        if kwargs is None:
            return TimelinePage([], None)
        return read_page(
            self._db,
            kwargs,
            limit=query.limit,
            after=query.after,
            filtered=bool(log_levels),
            pages=self._pages,
            page_items=self._page_items,
        )
