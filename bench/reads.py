"""What the observability reads cost: read units per list page and per metrics call, on the embedded stack.

    python -m bench.run --reads-only [--reads-count 10000]

`measure_reads()` stores `count` requests (and one event each) straight through the DynamoDB record
store adapter on the embedded moto (no HTTP, to keep it quick), spread evenly over the last three
hours, then calls the control API in-process (chalice's test client, real adapters, moto over HTTP):
- `GET /v1/requests` and `GET /v1/events`, the first page of 100 and a later one (the fifth, reached
  through `next` cursors);
- `GET /v1/metrics/requests` and `GET /v1/metrics/events` over the last hour at 1m granularity.

Read units are counted per DynamoDB Query the call made. moto answers ReturnConsumedCapacity with a
constant per call whatever it read (recorded as `moto_units`, for the record), so the figure that
counts is computed the way DynamoDB bills a Query: the size of every item the Query evaluated (read
from the index before any FilterExpression or ProjectionExpression), summed per Query call, rounded
up to 4 KB, halved because index reads are eventually consistent. The evaluated items are found by
repeating each Query on a separate, unmetered client with the same key condition, Limit, start key
and direction, but without filter or projection. A page's `ideal_units` is the same rule applied to
the items the page returns only; the goal is `units <= 1.5 x ideal_units`.

Latency is the wall time of the API call in this process against moto: a measure of the code path,
not of DynamoDB's latency. Nothing here is asserted; the numbers go in the report.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from botocore import handlers

from bench.meter import item_size, read_units

PAGE: Final = 100
LATER_PAGE: Final = 5
LATENCY_RUNS: Final = 5
SPREAD: Final = timedelta(hours=3)
GOAL_RATIO: Final = 1.5
_PLACEHOLDER = re.compile(r"[:#][A-Za-z0-9_]+")


@dataclass
class QueryCost:
    """Queries of the records table (what the goal is about), and those of the control table apart (auth)."""

    evaluated: int = 0
    units: float = 0.0
    moto_units: float = 0.0
    returned_sizes: list[int] = field(default_factory=list)
    queries: int = 0
    control_queries: int = 0
    control_units: float = 0.0


class QueryMeter:
    """Prices every DynamoDB Query the app makes while installed, by re-reading what it evaluated."""

    def __init__(self, shadow: Any, records_table: str) -> None:
        self._shadow = shadow  # a client made before install(): its calls are not metered
        self._records_table = records_table
        self._local = threading.local()
        self._specs = [
            ("before-parameter-build.dynamodb.Query", self._before),
            ("after-call.dynamodb.Query", self._after),
        ]
        self.cost = QueryCost()

    def install(self) -> QueryMeter:
        handlers.BUILTIN_HANDLERS.extend(self._specs)
        return self

    def uninstall(self) -> None:
        for spec in self._specs:
            if spec in handlers.BUILTIN_HANDLERS:
                handlers.BUILTIN_HANDLERS.remove(spec)

    @contextmanager
    def measure(self) -> Any:
        self.cost = QueryCost()
        yield self.cost

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
        self._local.params = dict(params)

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        params = getattr(self._local, "params", {})
        evaluated = self._evaluated(params)
        consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
        if params.get("TableName") != self._records_table:
            # The session check reads the caller's memberships: the same for every route, kept apart.
            self.cost.control_queries += 1
            self.cost.control_units += read_units(sum(map(item_size, evaluated)), consistent=consistent)
            return
        self.cost.queries += 1
        self.cost.evaluated += len(evaluated)
        self.cost.units += read_units(sum(map(item_size, evaluated)), consistent=consistent) if evaluated else 0.5
        consumed = parsed.get("ConsumedCapacity") or {}
        self.cost.moto_units += float(consumed.get("CapacityUnits") or 0)
        # The full items behind what the Query returned (a projection returns only part of each).
        by_key = {(i["pk"]["S"], i["sk"]["S"]): item_size(i) for i in evaluated}
        self.cost.returned_sizes += [
            by_key.get((i.get("pk", {}).get("S"), i.get("sk", {}).get("S")), 0) for i in parsed.get("Items", [])
        ]

    def _evaluated(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The items a Query read from its table or index: the same Query without filter or projection."""
        condition = params["KeyConditionExpression"]
        used = set(_PLACEHOLDER.findall(condition))
        shadow: dict[str, Any] = {
            "TableName": params["TableName"],
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {k: v for k, v in params["ExpressionAttributeValues"].items() if k in used},
        }
        names = {k: v for k, v in (params.get("ExpressionAttributeNames") or {}).items() if k in used}
        if names:
            shadow["ExpressionAttributeNames"] = names
        for name in ("IndexName", "Limit", "ExclusiveStartKey", "ScanIndexForward", "ConsistentRead"):
            if name in params:
                shadow[name] = params[name]
        return list(self._shadow.query(**shadow).get("Items", []))


def _request(i: int, team_id: str, source_id: str, at: datetime) -> dict[str, Any]:
    from chalicelib.domain.ids import Prefix, new_id
    from chalicelib.domain.timefmt import iso

    body = json.dumps({"type": "order.paid", "seq": i, "pad": "x" * 960}, separators=(",", ":")).encode()
    return {
        "id": new_id(Prefix.REQUEST),
        "team_id": team_id,
        "source_id": source_id,
        "status": "accepted" if i % 10 else "rejected",
        "rejection_cause": None if i % 10 else "VERIFICATION_FAILED",
        "verified": bool(i % 10),
        "method": "POST",
        "path": "/hooks",
        "query": "",
        "headers": {"content-type": "application/json", "user-agent": "bench/1.0", "x-request-seq": str(i)},
        "body": body,
        "body_key": None,
        "body_size": len(body),
        "content_type": "application/json",
        "external_id": f"ord_{i:06d}",
        "ingested_at": iso(at),
        "events_count": 1,
        "ignored_count": 0,
        "routed_at": iso(at),
        "is_retry": False,
        "retry_of": None,
        "retry_kind": None,
        "batch_operation_id": None,
        "expires_at": int((at + timedelta(days=30)).timestamp()),
    }


def _event(request: dict[str, Any], connection: dict[str, Any], i: int) -> dict[str, Any]:
    from chalicelib.domain.ids import Prefix, derived_id

    status = ("SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL", "FAILED", "QUEUED")[i % 5]
    return {
        "id": derived_id(Prefix.EVENT, request["id"], connection["id"]),
        "team_id": request["team_id"],
        "request_id": request["id"],
        "connection_id": connection["id"],
        "source_id": request["source_id"],
        "destination_id": connection["destination_id"],
        "status": status,
        "attempts": 1,
        "next_trigger": "AUTOMATIC",
        "next_attempt_at": request["ingested_at"] if status == "QUEUED" else None,
        "last_attempt_at": request["ingested_at"],
        "successful_at": request["ingested_at"] if status == "SUCCESSFUL" else None,
        "response_status": 200 if status == "SUCCESSFUL" else 500,
        "error_code": None,
        "created_at": request["ingested_at"],
        "updated_at": request["ingested_at"],
        "batch_operation_id": None,
        "data": None,
        "expires_at": request["expires_at"],
    }


def _timed_get(client: Any, path: str, token: str) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = client.http.get(path, headers={"Authorization": f"Bearer {token}"})
    elapsed_ms = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} answered {answer.status_code}: {answer.body[:300]!r}")
    return elapsed_ms, json.loads(answer.body)


def _page_figures(meter: QueryMeter, client: Any, path: str, token: str) -> tuple[dict[str, Any], Any]:
    with meter.measure() as cost:
        elapsed_ms, body = _timed_get(client, path, token)
    returned = len(body["models"])
    ideal = read_units(sum(cost.returned_sizes[:returned]), consistent=False)
    return {
        "items": returned,
        "queries": cost.queries,
        "items_evaluated": cost.evaluated,
        "units": cost.units,
        "ideal_units": ideal,
        "ratio": round(cost.units / ideal, 3) if ideal else None,
        "meets_goal": cost.units <= GOAL_RATIO * ideal,
        "moto_units": cost.moto_units,
        "auth_units": cost.control_units,
        "latency_ms": round(elapsed_ms, 1),
        "avg_item_bytes": round(sum(cost.returned_sizes[:returned]) / returned) if returned else 0,
    }, body


def _list_figures(meter: QueryMeter, client: Any, route: str, token: str) -> dict[str, Any]:
    first, body = _page_figures(meter, client, f"{route}?limit={PAGE}", token)
    later: dict[str, Any] | None = None
    for page in range(2, LATER_PAGE + 1):
        if body["pagination"]["next"] is None:
            break  # fewer records than pages: the later page is the last one there is
        path = f"{route}?limit={PAGE}&{urlencode({'cursor': body['pagination']['next']})}"
        if page == LATER_PAGE:
            later, body = _page_figures(meter, client, path, token)
        else:
            body = _timed_get(client, path, token)[1]
    runs = [_timed_get(client, f"{route}?limit={PAGE}", token)[0] for _ in range(LATENCY_RUNS)]
    return {
        "first_page": first,
        **({f"page_{LATER_PAGE}": later} if later else {}),
        "first_page_latency_ms": {"median": round(statistics.median(runs), 1), "min": round(min(runs), 1)},
    }


def _metrics_figures(meter: QueryMeter, client: Any, route: str, token: str) -> dict[str, Any]:
    params = urlencode({"date_range[start]": "now-1h", "date_range[end]": "now", "granularity": "1m"})
    with meter.measure() as cost:
        elapsed_ms, body = _timed_get(client, f"{route}?{params}", token)
    counted = sum(bucket["metrics"]["count"] for bucket in body["data"])
    return {
        "buckets": len(body["data"]),
        "records_counted": counted,
        "queries": cost.queries,
        "items_evaluated": cost.evaluated,
        "units": cost.units,
        "units_per_1000_records": round(cost.units / counted * 1000, 1) if counted else None,
        "moto_units": cost.moto_units,
        "auth_units": cost.control_units,
        "latency_ms": round(elapsed_ms, 1),
    }


def measure_reads(count: int = 10_000) -> dict[str, Any]:
    """Store `count` requests and events on the embedded moto and price the list pages and metrics calls."""
    from chalice.test import Client

    from chalicelib import wiring
    from chalicelib.adapters.dynamo.client import make_client
    from local.stack import EmbeddedStack, free_port

    with EmbeddedStack(http_port=free_port()):
        import app as fasthook

        settings = wiring.container().settings
        shadow = make_client("dynamodb", region=settings.region, endpoint=settings.aws_endpoint)
        meter = QueryMeter(shadow, settings.records_table).install()
        try:
            wiring.reset()  # the app's clients are made after install(), so they carry the meter's hooks
            # Settings are read now: chalice's test Client exports its own stage's variables while open.
            wiring.container()
            with Client(fasthook.app) as client:
                login = client.http.post("/v1/auth/demo/login")
                token = json.loads(login.body)["token"]
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                made = client.http.post(
                    "/v1/connections",
                    headers=headers,
                    body=json.dumps(
                        {
                            "name": "bench-reads",
                            "source": {"name": "bench-reads-source"},
                            "destination": {"name": "bench-reads-dest", "config": {"url": "https://example.test/h"}},
                        }
                    ),
                )
                connection = json.loads(made.body)
                connection["destination_id"] = connection["destination"]["id"]
                team_id = connection["team_id"]
                records = wiring.container().records
                now = datetime.now(UTC)
                step = SPREAD / count
                started = time.perf_counter()
                for i in range(count):
                    request = _request(i, team_id, connection["source"]["id"], now - SPREAD + step * i)
                    records.put_request(request)
                    records.put_event(_event(request, connection, i))
                write_s = time.perf_counter() - started
                result = {
                    "stored": {
                        "requests": count,
                        "events": count,
                        "spread_hours": SPREAD.total_seconds() / 3600,
                        "write_s": round(write_s, 1),
                    },
                    "units_source": (
                        "computed from item sizes as DynamoDB bills a Query (moto's ConsumedCapacity is a "
                        "constant per call: see moto_units)"
                    ),
                    "goal": f"a page of {PAGE} costs at most {GOAL_RATIO}x the read units of the items it returns",
                    "requests": _list_figures(meter, client, "/v1/requests", token),
                    "events": _list_figures(meter, client, "/v1/events", token),
                    "metrics_requests": _metrics_figures(meter, client, "/v1/metrics/requests", token),
                    "metrics_events": _metrics_figures(meter, client, "/v1/metrics/events", token),
                }
        finally:
            meter.uninstall()
            wiring.reset()
    return result
