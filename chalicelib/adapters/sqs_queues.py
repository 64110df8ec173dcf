"""The route and deliver queues on SQS.

A send that SQS did not accept raises, so the caller (a worker) reports its own message as failed
and SQS hands it back later: nothing accepted is dropped because a downstream send failed.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import FastHookError

MAX_DELAY_S = 900  # SQS's largest DelaySeconds; longer waits are chained or left to the sweeper
_BATCH = 10  # SQS's largest SendMessageBatch


class QueueSendError(FastHookError):
    """SQS refused messages even after one retry of exactly those entries."""

    status_code = 503
    error = "queue_unavailable"


def _clamp(delay_s: int) -> int:
    return max(0, min(MAX_DELAY_S, int(delay_s)))


class SqsQueues:
    """Queues on two SQS queue URLs."""

    def __init__(self, client: Any, route_url: str, deliver_url: str) -> None:
        self._sqs = client
        self._route_url = route_url
        self._deliver_url = deliver_url

    def send_route(self, body: str) -> None:
        self._sqs.send_message(QueueUrl=self._route_url, MessageBody=body)

    def send_deliver(self, bodies: list[tuple[str, int]]) -> None:
        for start in range(0, len(bodies), _BATCH):
            entries = [
                {"Id": str(n), "MessageBody": body, "DelaySeconds": _clamp(delay_s)}
                for n, (body, delay_s) in enumerate(bodies[start : start + _BATCH])
            ]
            failed = self._send_batch(entries)
            if failed:
                # Entries fail one by one (throttling, a transient internal error): resend only those, once.
                failed = self._send_batch([e for e in entries if e["Id"] in failed])
            if failed:
                reasons = ", ".join(sorted(set(failed.values())))
                raise QueueSendError(f"SQS refused {len(failed)} deliver message(s): {reasons}")

    def _send_batch(self, entries: list[dict[str, Any]]) -> dict[str, str]:
        """Entry id -> failure code of the entries SQS did not take."""
        answer = self._sqs.send_message_batch(QueueUrl=self._deliver_url, Entries=entries)
        return {f["Id"]: f.get("Code", "unknown") for f in answer.get("Failed", [])}
