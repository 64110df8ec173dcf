"""The bulk operation state machine's task Lambdas: plan, run pages, and mark failed.

Each handler takes the execution's state (`BulkTaskInput`: ids only), calls one use case of
chalicelib/bulk and answers the next state. The deployed Lambdas run these functions; the embedded
stack answers moto's Lambda invocations by calling the very same functions in-process.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib import wiring
from chalicelib.bulk.payload import BulkTaskInput
from chalicelib.bulk.plan import plan_bulk_operation
from chalicelib.bulk.run import fail_bulk_operation, run_bulk_pages
from chalicelib.domain.statuses import BulkStatus
from chalicelib.logs import service_logger

logger = service_logger("fasthook-bulk")

# Time kept free at the end of a pages invocation: the last page (up to 100 retries) must fit in it.
PAGE_MARGIN_S = 30


def handle_plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = BulkTaskInput.parse(event)
    deps = wiring.container()
    operation = plan_bulk_operation(
        team_id=task.team_id,
        operation_id=task.operation_id,
        bulk=deps.bulk,
        records=deps.records,
        resources=deps.resources,
        clock=deps.clock,
    )
    logger.info(
        "bulk operation planned",
        extra={"operation_id": task.operation_id, "status": operation["status"], "total": operation["total_count"]},
    )
    return task.answer(status=operation["status"], more=operation["status"] == BulkStatus.RUNNING)


def handle_pages(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = BulkTaskInput.parse(event)
    deps = wiring.container()
    settings = deps.settings
    started = time.monotonic()

    def out_of_time() -> bool:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None and remaining() < PAGE_MARGIN_S * 1000:
            return True
        return time.monotonic() - started > settings.bulk_task_budget_s

    result = run_bulk_pages(
        team_id=task.team_id,
        operation_id=task.operation_id,
        bulk=deps.bulk,
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        queues=deps.queues,
        clock=deps.clock,
        page_size=settings.bulk_page_size,
        max_pages=settings.bulk_pages_per_task,
        out_of_time=out_of_time,
    )
    logger.info(
        "bulk pages run",
        extra={"operation_id": task.operation_id, "pages": result.pages, "status": result.status, "more": result.more},
    )
    return task.answer(status=result.status, more=result.more)


def handle_fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = BulkTaskInput.parse(event)
    deps = wiring.container()
    error = event.get("error") or {}
    # The full cause (an exception message) goes to the log; the operation shows only the error's name.
    name = str(error.get("Error") or "States.TaskFailed")
    logger.error(
        "bulk operation failed",
        extra={"operation_id": task.operation_id, "error": name, "cause": str(error.get("Cause", ""))[:2000]},
    )
    status = fail_bulk_operation(
        team_id=task.team_id, operation_id=task.operation_id, bulk=deps.bulk, clock=deps.clock, cause=name
    )
    return task.answer(status=status, more=False)
