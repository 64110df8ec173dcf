"""Route worker entry point: a batch of route-queue messages, each routed on its own.

app.py registers `handle_route_batch` on the route queue (partial batch responses on); the local
stack's poller calls the same function. A message that fails is reported in `batchItemFailures`
so SQS redelivers only it; routing is idempotent, so a redelivery finishes what a failed or
interrupted run started.

A body that is not a route message of a version this code knows (`UnknownMessageError`) cannot
succeed on any retry, but it is still reported as a failure rather than dropped: after the queue's
maxReceiveCount it lands in the dead-letter queue, where the sweeper records it. Deleting it here
would lose the only trace of it; the price is a few extra receives of a message that should never
exist.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import wiring
from chalicelib.domain import messages
from chalicelib.domain.errors import RequestNotStoredError
from chalicelib.flow.route import route_request
from chalicelib.logs import service_logger

logger = service_logger("fasthook-route")

# Receives after which a route message whose Request is still missing is dropped: ingest's write
# failed (its provider got an error and will send again) or the Request expired.
NOT_STORED_RECEIVES = 3


def _route_record(record: SQSRecord) -> None:
    try:
        message = messages.decode(record.body)
        if not isinstance(message, messages.RouteRequest):
            raise messages.UnknownMessageError(f"a {message.kind} message on the route queue")
    except messages.UnknownMessageError as exc:
        logger.error(
            "unreadable route message; it will reach the dead-letter queue",
            extra={"message_id": record.message_id, "error": str(exc)},
        )
        raise
    deps = wiring.container()
    try:
        route_request(
            message=message,
            records=deps.records,
            resources=deps.resources,
            payloads=deps.payloads,
            queues=deps.queues,
            transformer=deps.transformer,
            routing=deps.routing,
            clock=deps.clock,
            inline_body_bytes=deps.settings.inline_body_bytes,
            executions=deps.executions,
        )
    except RequestNotStoredError:
        receives = int(record.attributes.approximate_receive_count or 1)
        extra = {"request_id": message.request_id, "receives": receives}
        if receives < NOT_STORED_RECEIVES:
            logger.info("route message arrived before its request; SQS will redeliver it", extra=extra)
            raise
        logger.warning("route message for a request that was never stored; dropped", extra=extra)


def handle_route_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route every message of an SQS batch; `{"batchItemFailures": [...]}` names the ones to redeliver."""
    # A processor per batch: it keeps per-batch state, and the local poller may call this from threads.
    # A batch whose every message failed still answers with the list (not an exception), so SQS and
    # the local poller see one shape; the effect is the same, every message is redelivered.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=_route_record, processor=processor, context=context)
    )
