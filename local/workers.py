"""In-process pollers: the route and deliver queues, the dead-letter queues and the sweeper timer.

In AWS, Lambda's SQS event source mappings and an EventBridge schedule call the worker handlers. Here
threads long-poll the same queues on the embedded endpoint and call the very same handler functions
with the same event shapes, including partial batch failures: only messages the handler reports as
failed stay on the queue, to come back after their visibility timeout (and reach the DLQ in the end).
A handler that raises is a crashed Lambda: nothing of its batch is deleted, every message comes back.

Tests inject faults by handing Workers their own handler (`deliver_handler=...` etc.), usually one
that wraps the real handler; without overrides the pollers call exactly what AWS calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("local.workers")

Handler = Callable[[dict[str, Any], Any], Any]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda hands an SQS-triggered function, built from ReceiveMessage output."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1",
            }
            for m in messages
        ]
    }


class QueuePoller(threading.Thread):
    def __init__(
        self,
        name: str,
        sqs: Any,
        queue_url: str,
        handler: Callable[[], Handler],
        stop: threading.Event,
        batch_size: int = 10,
    ) -> None:
        super().__init__(name=f"poll-{name}", daemon=True)
        self.sqs, self.queue_url, self.handler, self.stop_event, self.batch_size = (
            sqs,
            queue_url,
            handler,
            stop,
            batch_size,
        )
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:  # a poller must outlive any one bad batch, as Lambda's event source does
                log.exception("poller %s failed a round", self.name)
                self.stop_event.wait(1)

    def poll_once(self) -> int:
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        messages = got.get("Messages", [])
        if not messages:
            return 0
        result = self.handler()(sqs_event(messages, self.arn), None) or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        return len(messages)


class Timer(threading.Thread):
    def __init__(self, name: str, every_s: float, handler: Callable[[], Handler], stop: threading.Event) -> None:
        super().__init__(name=f"timer-{name}", daemon=True)
        self.every_s, self.handler, self.stop_event = every_s, handler, stop

    def run(self) -> None:
        while not self.stop_event.wait(self.every_s):
            try:
                self.handler()({"source": "local.timer"}, None)
            except Exception:  # same as a scheduled Lambda: one failed run must not stop the schedule
                log.exception("timer %s failed a run", self.name)


class Workers:
    """The route and deliver pollers and the sweeper, wired to the settings the stack exported.

    `route_handler`, `deliver_handler` and `sweep_handler` replace the entry points the pollers call
    (for fault injection in tests); `deliver_pollers` > 1 plays Lambda running several deliver
    functions at once, so one slow batch does not hold up the next and SQS duplicates can race.
    """

    def __init__(
        self,
        *,
        sweep_every_s: float = 60.0,
        route_handler: Handler | None = None,
        deliver_handler: Handler | None = None,
        sweep_handler: Handler | None = None,
        deliver_pollers: int = 1,
    ) -> None:
        if deliver_pollers < 1:
            raise ValueError("deliver_pollers must be at least 1")
        self.sweep_every_s = sweep_every_s
        self.deliver_pollers = deliver_pollers
        self._overrides = {"route": route_handler, "deliver": deliver_handler, "sweep": sweep_handler}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Workers:
        from chalicelib import wiring

        deps = wiring.container()
        sqs = deps.sqs
        settings = deps.settings

        def route() -> Handler:
            from chalicelib.entrypoints.route_worker import handle_route_batch

            return self._overrides["route"] or handle_route_batch

        def deliver() -> Handler:
            from chalicelib.entrypoints.deliver_worker import handle_deliver_batch

            return self._overrides["deliver"] or handle_deliver_batch

        def sweep() -> Handler:
            from chalicelib.entrypoints.sweeper import handle_sweep

            return self._overrides["sweep"] or handle_sweep

        delivers = [
            QueuePoller(f"deliver-{n}" if n else "deliver", sqs, settings.deliver_queue_url, deliver, self._stop)
            for n in range(self.deliver_pollers)
        ]
        self._threads = [
            QueuePoller("route", sqs, settings.route_queue_url, route, self._stop),
            *delivers,
            Timer("sweeper", self.sweep_every_s, sweep, self._stop),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
