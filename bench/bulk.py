"""What a bulk retry costs: wall time and Step Functions state transitions per 1,000 events, on the embedded stack.

    python -m bench.run --bulk-only [--bulk-count 2000]

`measure_bulk()` starts the embedded stack (moto with Step Functions execution on, the bulk task
Lambdas answered in-process, the local HTTP server, the workers) and a loopback receiver, stores
`count` FAILED events of one connection straight through the record store adapter (no HTTP, to keep
it quick), then does what an operator does: `POST /v1/events/bulk_operations {"status": "failed"}`
and polls `GET /v1/events/bulk_operations` until the operation is completed and every retry's
attempt has finished (`done_count == count`). It reports:
- the wall time until every retry was queued (the state machine finished) and until every retry
  was delivered (the deliver workers' share, which is not the state machine's). The workers start
  when the state machine has finished: in AWS they are separate Lambdas, while here one process (one
  GIL) runs moto, the tasks and the workers, and running both at once would bill the state machine
  for the workers' CPU (its pages slow down, so fewer fit in a task's time budget);
- the state transitions of the execution (every `*StateEntered` event of GetExecutionHistory,
  which is what Step Functions Standard bills) and task invocations, per 1,000 events.

Nothing here is asserted; the numbers go in the report. The goal is at most 5 transitions per 1,000.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

GOAL_TRANSITIONS_PER_1000 = 5


def _events(team_id: str, connection: dict[str, Any], count: int, records: Any) -> None:
    from chalicelib.domain.ids import Prefix, derived_id, new_id
    from chalicelib.domain.timefmt import iso

    start = datetime.now(UTC) - timedelta(hours=1)
    for n in range(count):
        at = start + timedelta(milliseconds=n)
        request_id = new_id(Prefix.REQUEST)
        expires_at = int((at + timedelta(days=30)).timestamp())
        records.put_request(
            {
                "id": request_id,
                "team_id": team_id,
                "source_id": connection["source"]["id"],
                "status": "accepted",
                "rejection_cause": None,
                "verified": True,
                "method": "POST",
                "path": "",
                "query": "",
                "headers": {"content-type": "application/json"},
                "body": b'{"bench":true}',
                "body_key": None,
                "body_size": 14,
                "content_type": "application/json",
                "external_id": None,
                "ingested_at": iso(at),
                "events_count": 1,
                "ignored_count": 0,
                "routed_at": iso(at),
                "is_retry": False,
                "retry_of": None,
                "retry_kind": None,
                "batch_operation_id": None,
                "expires_at": expires_at,
            }
        )
        records.put_event(
            {
                "id": derived_id(Prefix.EVENT, request_id, connection["id"]),
                "team_id": team_id,
                "request_id": request_id,
                "connection_id": connection["id"],
                "source_id": connection["source"]["id"],
                "destination_id": connection["destination"]["id"],
                "status": "FAILED",
                "attempts": 1,
                "next_trigger": "INITIAL",
                "next_attempt_at": None,
                "last_attempt_at": iso(at),
                "successful_at": None,
                "response_status": 503,
                "error_code": None,
                "created_at": iso(at),
                "updated_at": iso(at),
                "batch_operation_id": None,
                "data": None,
                "expires_at": expires_at,
            }
        )


def measure_bulk(count: int = 2000, *, timeout_s: float = 1500.0) -> dict[str, Any]:
    """Bulk-retry `count` failed events on the embedded stack; wall times and transitions per 1,000 events."""
    from bench.receiver import TimedReceiver
    from chalicelib import wiring
    from chalicelib.adapters.dynamo.client import make_client
    from local.server import LocalServer
    from local.stack import EmbeddedStack
    from local.workers import Workers

    receiver = TimedReceiver().start()
    server = LocalServer(0)
    stack = EmbeddedStack(http_port=server.port)
    # The workers start late (see below), so every queued retry is past due for the sweeper by then: it
    # would re-send them all as if their messages were lost. The run is short; the sweeper stays idle.
    workers = Workers(sweep_every_s=3600)
    workers_started = False
    try:
        stack.start()
        server.start()
        http = requests.Session()
        token = http.post(f"{server.url}/v1/auth/demo/login", timeout=30).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        answer = http.post(
            f"{server.url}/v1/connections",
            json={
                "name": "bench-bulk",
                "source": {"name": "bench-bulk-source"},
                "destination": {"name": "bench-bulk-receiver", "config": {"url": receiver.url("/hooks")}},
            },
            headers=headers,
            timeout=30,
        )
        answer.raise_for_status()
        connection = answer.json()
        team_id = http.get(f"{server.url}/v1/auth/me", headers=headers, timeout=30).json()["team"]["id"]
        deps = wiring.container()
        settings = deps.settings
        stored_at = time.perf_counter()
        _events(team_id, connection, count, deps.records)
        store_s = time.perf_counter() - stored_at

        started = time.perf_counter()
        created = http.post(
            f"{server.url}/v1/events/bulk_operations", json={"status": "failed"}, headers=headers, timeout=30
        )
        created.raise_for_status()
        operation_id = created.json()["id"]
        queued_s = delivered_s = None
        operation: dict[str, Any] = {}
        while time.perf_counter() - started < timeout_s:
            models = http.get(f"{server.url}/v1/events/bulk_operations?limit=100", headers=headers, timeout=30).json()[
                "models"
            ]
            operation = next(op for op in models if op["id"] == operation_id)
            now = time.perf_counter() - started
            if queued_s is None and operation["status"] in ("completed", "cancelled", "failed"):
                queued_s = now
                # The deliver workers start once every retry is queued: in AWS they are other Lambdas,
                # here they would share this process's one GIL with the state machine's tasks.
                workers.start()
                workers_started = True
            if queued_s is not None and operation["done_count"] >= operation["queued_count"]:
                delivered_s = now
                break
            time.sleep(0.25)

        stepfunctions = make_client("stepfunctions", region=settings.region, endpoint=settings.aws_endpoint)
        execution_arn = settings.bulk_state_machine_arn.replace(":stateMachine:", ":execution:") + f":{operation_id}"
        history: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = stepfunctions.get_execution_history(**kwargs)
            history += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        execution = stepfunctions.describe_execution(executionArn=execution_arn)
    finally:
        if workers_started:
            workers.stop()
        server.stop()
        stack.stop()
        receiver.stop()

    entered = [event["type"] for event in history if event["type"].endswith("StateEntered")]
    invocations = sum(1 for event in history if event["type"] == "LambdaFunctionScheduled")
    per_1000 = round(len(entered) * 1000 / count, 2) if count else None
    return {
        "events": count,
        "page_size": settings.bulk_page_size,
        "pages_per_task": settings.bulk_pages_per_task,
        "store_s": round(store_s, 2),
        "operation": {key: operation.get(key) for key in ("status", "total_count", "queued_count", "done_count")},
        "execution_status": execution["status"],
        "wall_s_to_all_queued": round(queued_s, 2) if queued_s is not None else None,
        "wall_s_to_all_delivered": round(delivered_s, 2) if delivered_s is not None else None,
        "state_transitions": len(entered),
        "task_invocations": invocations,
        "transitions_per_1000_events": per_1000,
        "goal_transitions_per_1000_events": GOAL_TRANSITIONS_PER_1000,
        "meets_goal": per_1000 is not None and per_1000 <= GOAL_TRANSITIONS_PER_1000,
        "states_entered": entered,
    }
