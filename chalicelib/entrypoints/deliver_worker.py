"""Deliver worker: the Lambda on the deliver queue (`@app.on_sqs_message`, partial batch responses).

Each record is one `deliver_event` call. Records of a batch run side by side on a small thread pool,
so one receiver that takes its full timeout does not hold up the others; the batch size of the
deliver function must not exceed MAX_PARALLEL_DELIVERIES, or the last records would queue behind
the first and the Lambda timeout would have to cover two HTTP timeouts.

Failure semantics (powertools partial batch response): a delivery whose receiver misbehaved is a
success here (the Attempt says what happened); a message that is not a deliver message, or a store or
queue error, fails only its own record, so SQS retries that one and, after maxReceiveCount, moves it
to the dead-letter queue, where the sweeper turns it into a FAILED event.

Each batch that made attempts emits two CloudWatch metrics in the embedded metric format (a log
line, no API call): `Attempts` and `FailedAttempts` in the `FastHook` namespace with a `stage`
dimension. The stack's delivery-failure-rate alarm divides one by the other (infra/stack.py).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import wiring
from chalicelib.domain import messages
from chalicelib.domain.messages import DeliverEvent, UnknownMessageError
from chalicelib.flow.deliver import DeliverOutcome, deliver_event
from chalicelib.logs import service_logger

logger = service_logger("fasthook-deliver")

MAX_PARALLEL_DELIVERIES: Final = 10
METRICS_NAMESPACE: Final = "FastHook"
ATTEMPTS_METRIC: Final = "Attempts"
FAILED_ATTEMPTS_METRIC: Final = "FailedAttempts"


@functools.cache
def _pool() -> ThreadPoolExecutor:
    # One pool per process (Lambda container), made on first use: threads are kept for the next batch.
    return ThreadPoolExecutor(max_workers=MAX_PARALLEL_DELIVERIES, thread_name_prefix="fasthook-deliver")


def handle_deliver_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Deliver every record of an SQS batch; answers `{"batchItemFailures": [...]}` naming the records to retry."""
    deps = wiring.container()

    outcomes: list[DeliverOutcome] = []

    async def handle(record: SQSRecord) -> str:
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(_pool(), _deliver, deps, record.body, record.message_id)
        outcomes.append(outcome)
        return outcome.action.value

    # A processor per batch: it keeps the batch's state, and local pollers may call this from several threads.
    # Failures are reported per record even when all fail, rather than as one exception for the batch.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    answer = dict(
        async_process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )
    _emit_attempt_metrics(deps.settings.stage, outcomes)
    return answer


def _emit_attempt_metrics(stage: str, outcomes: list[DeliverOutcome]) -> None:
    """Attempts made by this batch and how many failed (no 2xx), as one EMF log line."""
    made = [outcome for outcome in outcomes if outcome.attempt_id is not None]
    if not made:
        return
    failed = sum(1 for outcome in made if outcome.error_code or not 200 <= (outcome.response_status or 0) < 300)
    # Ephemeral: its own metric set per batch, so concurrent local pollers never mix or flush each other's.
    metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE)
    metrics.add_dimension(name="stage", value=stage)
    metrics.add_metric(name=ATTEMPTS_METRIC, unit=MetricUnit.Count, value=len(made))
    metrics.add_metric(name=FAILED_ATTEMPTS_METRIC, unit=MetricUnit.Count, value=failed)
    metrics.flush_metrics()


def _deliver(deps: wiring.Container, body: str, message_id: str) -> DeliverOutcome:
    try:
        message = messages.decode(body)
        if not isinstance(message, DeliverEvent):
            raise UnknownMessageError(f"a {message.kind} message on the deliver queue")
    except UnknownMessageError as exc:
        # Permanent: retries cannot help, so it reaches the dead-letter queue after maxReceiveCount.
        logger.error("unreadable deliver message", extra={"message_id": message_id, "reason": str(exc)})
        raise
    log_keys = {"message_id": message_id, "event_id": message.event_id, "team_id": message.team_id}
    try:
        outcome = deliver_event(
            message=message,
            records=deps.records,
            resources=deps.resources,
            routing=deps.routing,
            accounts=deps.accounts,
            payloads=deps.payloads,
            queues=deps.queues,
            sender=deps.sender,
            mock_sender=deps.mock_sender,
            clock=deps.clock,
            bulk=deps.bulk,
        )
    except Exception:
        # Logged here because the batch processor keeps failures quiet; re-raised so SQS retries the record.
        logger.exception("delivery step failed; the message will be retried", extra=log_keys)
        raise
    logger.info(
        "deliver message handled",
        extra={
            **log_keys,
            "action": outcome.action.value,
            "reason": outcome.reason,
            "attempt_id": outcome.attempt_id,
            "response_status": outcome.response_status,
            "error_code": outcome.error_code,
            "resend_delay_s": outcome.resend_delay_s,
        },
    )
    return outcome
