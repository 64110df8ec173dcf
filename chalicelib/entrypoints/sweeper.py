"""Sweeper: the scheduled Lambda (`@app.schedule("rate(1 minute)")`) that keeps accepted work moving.

It re-sends deliver messages for overdue pending events (flow/sweep.py: `sweep`) and drains both
dead-letter queues (`fail_dead_letters`): deliver dead letters become FAILED events, route dead
letters Requests marked `routing_error: DEAD_LETTERED`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from chalicelib import wiring
from chalicelib.flow.sweep import DeadLetter, DeadLetterOutcome, fail_dead_letters, sweep
from chalicelib.logs import service_logger

logger = service_logger("fasthook-sweeper")

# 10 receives of 10 messages: a sweep stays well inside a minute; a bigger backlog takes a few sweeps.
MAX_DEAD_LETTER_BATCHES: Final = 10


def handle_sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run one sweep; the summary is logged and returned."""
    deps = wiring.container()
    swept = sweep(records=deps.records, queues=deps.queues, clock=deps.clock)
    summary: dict[str, Any] = {"resent": len(swept.resent), "more_due": swept.more_due}
    dlq_urls = [url for url in (deps.settings.deliver_dlq_url, deps.settings.route_dlq_url) if url]
    if not dlq_urls:
        logger.info("swept", extra=summary)
        return summary
    dead = DeadLetterOutcome()
    for dlq_url in dlq_urls:
        dead = dead.merge(
            drain_dead_letters(
                deps.sqs,
                dlq_url,
                lambda letters: fail_dead_letters(messages=letters, records=deps.records, clock=deps.clock),
            )
        )
    summary.update(
        dead_lettered_failed=len(dead.failed),
        dead_lettered_skipped=len(dead.skipped),
        dead_lettered_unrouted=len(dead.unrouted),
        dead_lettered_unreadable=len(dead.unreadable),
    )
    for request_id in dead.unrouted:
        logger.error("routing gave up on a request; marked DEAD_LETTERED", extra={"request_id": request_id})
    for message_id in dead.unreadable:
        logger.error("unreadable dead-lettered message dropped", extra={"message_id": message_id})
    logger.info("swept", extra=summary)
    return summary


def drain_dead_letters(
    sqs: Any,
    queue_url: str,
    handle: Callable[[list[DeadLetter]], DeadLetterOutcome],
    *,
    max_batches: int = MAX_DEAD_LETTER_BATCHES,
) -> DeadLetterOutcome:
    """Receive up to `max_batches` batches from a dead-letter queue, handle each, then delete it.

    A batch is deleted only after `handle` returned; if it raises, its messages come back after the
    queue's visibility timeout and the next sweep handles them again (handling is idempotent).
    """
    total = DeadLetterOutcome()
    for _ in range(max_batches):
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        batch = received.get("Messages") or []
        if not batch:
            break
        letters = [
            DeadLetter(
                body=item.get("Body", ""),
                message_id=item.get("MessageId", ""),
                receive_count=_int(item.get("Attributes", {}).get("ApproximateReceiveCount")),
            )
            for item in batch
        ]
        total = total.merge(handle(letters))
        deleted = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "ReceiptHandle": item["ReceiptHandle"]} for index, item in enumerate(batch)],
        )
        for failure in deleted.get("Failed") or ():
            # Harmless: the message returns and is handled again, which changes nothing the second time.
            logger.warning("dead letter not deleted", extra={"code": failure.get("Code"), "id": failure.get("Id")})
    return total


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
