"""What one page of a bulk operation shares between its items: resource reads and outgoing messages.

A page retries up to 100 items of one team through the single-item use cases, which each read the
item's connection and source and send one queue message. Per page, each resource is read once (a
pause or disable made while a page runs is seen from the next page on, at most 100 items later) and
the messages go out in batches at the end of the page. If the task dies before the batch is sent,
nothing is lost: the retried events are QUEUED and due now, so the sweeper re-sends their messages,
and a replay that was never routed is re-sent when the page runs again.
"""

from __future__ import annotations

from typing import Any

from chalicelib.ports import Doc, Queues, ResourceStore


class PageResources:
    """A ResourceStore whose `get` answers each (team, kind, id) from the first read of the page."""

    def __init__(self, inner: ResourceStore) -> None:
        self._inner = inner
        self._read: dict[tuple[str, str, str], Doc | None] = {}

    def get(self, team_id: str, kind: str, resource_id: str) -> Doc | None:
        key = (team_id, kind, resource_id)
        if key not in self._read:
            self._read[key] = self._inner.get(team_id, kind, resource_id)
        return self._read[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class PageQueues:
    """Queues that hold a page's messages and send them in batches by `flush()`."""

    def __init__(self, inner: Queues) -> None:
        self._inner = inner
        self._route: list[str] = []
        self._deliver: list[tuple[str, int]] = []

    def send_route(self, body: str) -> None:
        self._route.append(body)

    def send_deliver(self, bodies: list[tuple[str, int]]) -> None:
        self._deliver.extend(bodies)

    def flush(self) -> None:
        if self._deliver:
            self._inner.send_deliver(self._deliver)
            self._deliver = []
        for body in self._route:
            self._inner.send_route(body)
        self._route = []
