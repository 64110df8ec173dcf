"""`make chaos`: webhooks through the embedded stack while everything that can go wrong does (issue 9, part 1).

    python -m bench.chaos [--count 10000] [--rate 2] [--destinations 3] [--seed 7] [--no-write]

While `count` webhooks arrive at a steady `rate`, spread over `destinations` source -> destination
connections (each with a linear retry rule, so 5xx answers and timeouts are retried):
- the loopback receiver answers 503 to a share of calls and sits past the destination's HTTP timeout
  on another share (FastHook records a TIMEOUT; the receiver answers 200 late, so it did get the event);
- deliver worker invocations crash mid-batch: a share of deliveries raise before the HTTP call (the
  event stays leased by a dead worker) and a share right after the receiver answered (the answer is
  never recorded); the crash takes the whole invocation down, so none of its messages is deleted;
- a share of DynamoDB and SQS calls are throttled (chalicelib/adapters/faults.py, switched on by
  FASTHOOK_FAULTS): most are absorbed by botocore's retries, a smaller share outlasts them;
- a share of route and deliver messages are sent twice, as SQS may hand a message out twice.

Then the faults stop and the run waits for quiescence: the sweeper (on a short timer here) re-sends
what a crashed worker left leased, and the queues' visibility timeouts (shortened for the run, see
Params.visibility_s) hand back what crashed invocations did not delete. The report:
- accepted vs delivered: lost must be 0 (an accepted webhook whose event never reached the receiver
  with a 2xx and did not end FAILED with a recorded reason);
- duplicate deliveries the receiver saw (an event answered 2xx more than once), each with its cause:
  a worker crash after the HTTP call, a result that was never stored, a held answer past the timeout
  or an answer FastHook's client gave up on (its attempt says TIMEOUT) followed by the retry; any
  other is unexplained (must be 0: it would be a bug; examples are kept in the results);
- overlapping in-flight deliveries of one event (must be 0): a delivery is in flight from its arrival
  until the receiver answered or FastHook gave up (its HTTP timeout), whichever came first;
- events not final 2 minutes after the faults stopped (must be 0);
- attempts consistent with events: per event, the attempts recorded equal its `attempts` count, are
  numbered 1..n, the final status matches the last attempt, and every receiver visit is an attempt
  or one of the injected crashes after the HTTP call.

Results: bench/results/chaos-<UTC stamp>.json and chaos-latest.md. tests/e2e/test_chaos_small.py runs
the same `run` with a few hundred webhooks, so the bench and the test are one code path.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import logging
import os
import platform
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import requests

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
FINAL: Final = frozenset({"SUCCESSFUL", "FAILED", "CANCELLED"})
QUIET_LOGGERS: Final = ("fasthook-ingest", "fasthook-route", "fasthook-deliver", "fasthook-sweeper", "local")


@dataclass(frozen=True)
class Params:
    count: int = 10_000
    # Below the embedded stack's throughput with these faults on (2.75 first deliveries/s at 4/s sent on a
    # shared 2-core machine, botocore's standard retry mode), so the backlog stays small: a 10,000 run is
    # 10,000 / 2.5 s = 67 min of load, then the drain and one Scan per check of the outcome.
    rate: float = 2.5
    destinations: int = 3
    threads: int = 8
    seed: int = 7
    http_timeout_s: int = 1  # the destinations' timeout: a lease lasts this + 15 s
    retry_count: int = 8
    retry_interval_ms: int = 1000
    receiver_5xx: float = 0.05
    receiver_timeout: float = 0.03
    crash_before: float = 0.01  # share of deliveries whose invocation crashes before the HTTP call
    crash_after: float = 0.01  # ... right after the receiver answered
    duplicate: float = 0.05  # share of route and deliver messages sent twice
    # Share of DynamoDB/SQS HTTP attempts throttled (botocore retries them). At 3% the embedded stack's
    # throughput fell from ~3/s to ~0.6/s (botocore's adaptive mode slows a whole shared client after a
    # throttle), too slow for a 10,000 run; 0.5% keeps every path exercised.
    dynamodb_throttle: float = 0.005
    sqs_throttle: float = 0.005
    persistent_throttle: float = 0.001  # share of DynamoDB/SQS calls throttled on every attempt
    # Every 10 s, not the deployed minute, so a lost message is re-sent within the run; not every 2 s,
    # because moto answers each of the sweep's index Queries by walking the whole table (50,000 items
    # by the end of a 10,000 run).
    sweep_every_s: float = 10.0
    sweep_grace_s: int = 60  # the deployed sweeper's grace (flow/sweep.py SWEEP_GRACE_S)
    # AWS: route 180 s, deliver 450 s (above the Lambda timeouts). Shortened so a crashed invocation's
    # messages come back within the run; still above the longest lease (http_timeout + 15 s).
    visibility_s: int = 30
    final_within_s: float = 120.0  # events not final this long after the faults stopped are "stuck"
    drain_timeout_s: float = 300.0  # how long to wait for the last events before counting them lost
    deliver_pollers: int = 2
    # Faults stay on after the last webhook was sent until every one reached the receiver, or at most this
    # long (None: no limit but drain_timeout_s); the small run in `make test` caps it to stay short.
    faults_after_send_s: float | None = None
    progress_every_s: float = 0.0  # print progress to stderr this often (0: quiet)

    def faults_spec(self) -> str:
        return ",".join(
            [
                f"dynamodb_throttle={self.dynamodb_throttle}",
                f"sqs_throttle={self.sqs_throttle}",
                f"dynamodb_throttle_persistent={self.persistent_throttle}",
                f"sqs_throttle_persistent={self.persistent_throttle}",
                f"seed={self.seed}",
            ]
        )


class Switch:
    """Faults on or off, for every injector of a run at once."""

    def __init__(self) -> None:
        self.on = False


# ---- the receiver ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One delivery as the receiver lived it."""

    event_id: str
    request_id: str
    attempt: str  # x-fasthook-attempt-count
    destination: str
    arrived: float
    answered: float
    status: int
    late: bool  # held past the destination's timeout: FastHook gave up, the receiver still took it

    def in_flight_until(self, http_timeout_s: float) -> float:
        """When FastHook stopped waiting: the answer, or its HTTP timeout if that came first."""
        return min(self.answered, self.arrived + http_timeout_s)


class ChaosReceiver:
    """A loopback receiver that answers 503 or past the timeout for a share of calls, and logs every visit."""

    def __init__(self, p: Params, switch: Switch) -> None:
        self.p, self.switch = p, switch
        self._lock = threading.Lock()
        self._dice = random.Random(p.seed)  # noqa: S311  (seeded dice, not secrets)
        self.visits: list[Visit] = []
        self.ok_requests: set[str] = set()  # request ids answered 2xx at least once
        self.visited: set[str] = set()  # request ids that reached the receiver at all
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="chaos-receiver", daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ChaosReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def decide(self) -> tuple[int, float]:
        """(status, seconds to wait before answering) for the next call."""
        with self._lock:
            roll = self._dice.random()
        if self.switch.on and roll < self.p.receiver_5xx:
            return 503, 0.0
        if self.switch.on and roll < self.p.receiver_5xx + self.p.receiver_timeout:
            return 200, self.p.http_timeout_s + 0.4
        return 200, 0.0

    def log(self, visit: Visit) -> None:
        with self._lock:
            self.visits.append(visit)
            self.visited.add(visit.request_id)
            if 200 <= visit.status < 300:
                self.ok_requests.add(visit.request_id)

    def wait_for_visits(self, request_ids: set[str], timeout_s: float) -> None:
        """Until every one of these requests reached the receiver at least once, whatever the answer."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if request_ids <= self.visited:
                    return
            time.sleep(0.5)

    def delivered_count(self, request_ids: set[str]) -> int:
        with self._lock:
            return len(request_ids & self.ok_requests)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    receiver: ChaosReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # FastHook hangs up on a receiver past its timeout; that is the point


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        receiver = self.server.receiver
        status, wait_s = receiver.decide()
        if wait_s:
            time.sleep(wait_s)
        receiver.log(
            Visit(
                event_id=self.headers.get("x-fasthook-event-id") or "",
                request_id=self.headers.get("x-fasthook-request-id") or "",
                attempt=self.headers.get("x-fasthook-attempt-count") or "",
                destination=self.path.partition("?")[0],
                arrived=arrived,
                answered=time.monotonic(),
                status=status,
                late=bool(wait_s),
            )
        )
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the late answers: FastHook already gave up on this connection

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _handle


# ---- worker crashes and duplicate messages -------------------------------------------------------------


class WorkerCrashed(Exception):
    """The deliver invocation died (killed, out of memory, timed out) in the middle of its batch."""


class CrashingSender:
    """The real sender, but a share of deliveries crash the worker just before or just after the HTTP call."""

    def __init__(self, real: Any, p: Params, switch: Switch) -> None:
        self._real, self.p, self.switch = real, p, switch
        self._lock = threading.Lock()
        self._dice = random.Random(p.seed + 1)  # noqa: S311
        self.crashes: list[tuple[str, str, str, float]] = []  # (event id, attempt header, before|after, when)

    def send(self, req: Any) -> Any:
        with self._lock:
            roll = self._dice.random()
        where = None
        if self.switch.on and roll < self.p.crash_before:
            where = "before"
        elif self.switch.on and roll < self.p.crash_before + self.p.crash_after:
            where = "after"
        if where == "after":
            self._real.send(req)
        if where:
            with self._lock:
                self.crashes.append(
                    (
                        req.header("x-fasthook-event-id") or "",
                        req.header("x-fasthook-attempt-count") or "",
                        where,
                        time.monotonic(),
                    )
                )
            raise WorkerCrashed(f"the deliver worker died {where} the HTTP call")
        return self._real.send(req)

    def crashed_since(self, moment: float) -> bool:
        with self._lock:
            return any(when >= moment for *_, when in self.crashes)


def crashing_deliver_handler(sender: CrashingSender) -> Callable[[dict[str, Any], Any], Any]:
    """The real deliver handler; when one of its deliveries crashed, the whole invocation raises.

    Raising is what a crashed Lambda looks like to SQS: no message of the batch is deleted, so every
    one of them comes back after the visibility timeout, finished or not.
    """
    from chalicelib.entrypoints.deliver_worker import handle_deliver_batch

    def handler(event: dict[str, Any], context: Any) -> Any:
        started = time.monotonic()
        result = handle_deliver_batch(event, context)
        if sender.crashed_since(started):
            raise WorkerCrashed("a deliver invocation crashed mid-batch")
        return result

    return handler


class DuplicatingQueues:
    """The real queues, but a share of route and deliver messages are sent twice (SQS is at-least-once)."""

    def __init__(self, real: Any, p: Params, switch: Switch) -> None:
        self._real, self.p, self.switch = real, p, switch
        self._lock = threading.Lock()
        self._dice = random.Random(p.seed + 2)  # noqa: S311
        self.doubled: Counter[str] = Counter()

    def _twice(self, kind: str) -> bool:
        with self._lock:
            hit = self.switch.on and self._dice.random() < self.p.duplicate
            if hit:
                self.doubled[kind] += 1
        return hit

    def send_route(self, body: str) -> None:
        self._real.send_route(body)
        if self._twice("route"):
            self._real.send_route(body)

    def send_deliver(self, bodies: list[tuple[str, int]]) -> None:
        self._real.send_deliver(bodies + [entry for entry in bodies if self._twice("deliver")])


def sweeper(grace_s: int) -> Callable[[dict[str, Any], Any], Any]:
    """The scheduled sweeper's work (re-send overdue events, drain the deliver DLQ) with the given grace."""
    from chalicelib import wiring
    from chalicelib.entrypoints.sweeper import drain_dead_letters
    from chalicelib.flow.sweep import fail_dead_letters, sweep

    def handler(event: dict[str, Any], context: Any) -> Any:
        deps = wiring.container()
        swept = sweep(records=deps.records, queues=deps.queues, clock=deps.clock, grace_s=grace_s)
        dead = drain_dead_letters(
            deps.sqs,
            deps.settings.deliver_dlq_url,
            lambda letters: fail_dead_letters(messages=letters, records=deps.records, clock=deps.clock),
        )
        return {"resent": len(swept.resent), "dead_lettered": len(dead.failed)}

    return handler


# ---- the stack -------------------------------------------------------------------------------------------


@dataclass
class Rig:
    url: str
    token: str
    receiver: ChaosReceiver
    sender: CrashingSender
    queues: DuplicatingQueues
    switch: Switch
    plan: Any  # adapters.faults.FaultPlan
    sources: list[str] = field(default_factory=list)


@contextmanager
def rig(p: Params) -> Iterator[Rig]:
    """Receiver, embedded stack with faults wired in, local server, workers, and `destinations` connections."""
    from chalicelib.adapters import faults

    for module in ("ingress", "route_worker", "deliver_worker", "sweeper"):
        importlib.import_module(f"chalicelib.entrypoints.{module}")  # creates their loggers, silenced below

    switch = Switch()
    spec = p.faults_spec()
    plan = faults.plan_for(spec)
    plan.pause()  # setting up is not part of the run
    plan.injected.clear()
    saved_faults = os.environ.get("FASTHOOK_FAULTS")
    os.environ["FASTHOOK_FAULTS"] = spec  # read by settings.py when the stack resets the wiring
    for module in ("chalicelib.flow.route", "local.workers", "local.server"):
        importlib.import_module(module)  # their loggers too
    # Injected crashes and throttles are logged with tracebacks by design; the report counts them.
    quiet = {
        name: logging.getLogger(name).level
        for name in list(logging.root.manager.loggerDict)
        if name.startswith(QUIET_LOGGERS)
    }
    for name in quiet:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    receiver = ChaosReceiver(p, switch).start()
    from local.server import LocalServer
    from local.stack import EmbeddedStack
    from local.workers import Workers

    server = LocalServer(0)
    stack = EmbeddedStack(http_port=server.port)
    workers: Workers | None = None
    try:
        stack.start()
        server.start()
        from chalicelib import wiring
        from chalicelib.adapters.dynamo.client import make_client
        from chalicelib.adapters.http_sender import HttpSender
        from chalicelib.adapters.sqs_queues import SqsQueues

        settings = wiring.container().settings
        sqs = make_client("sqs", region=settings.region, endpoint=settings.aws_endpoint, faults=settings.faults)
        for url in (settings.route_queue_url, settings.deliver_queue_url):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(p.visibility_s)})
        sender = CrashingSender(HttpSender(allow_private=True), p, switch)
        queues = DuplicatingQueues(SqsQueues(sqs, settings.route_queue_url, settings.deliver_queue_url), p, switch)
        wiring.use(wiring.Container(settings=settings, overrides={"sender": sender, "queues": queues}))
        http = requests.Session()
        token = http.post(f"{server.url}/v1/auth/demo/login", timeout=30).json()["token"]
        r = Rig(server.url, token, receiver, sender, queues, switch, plan)
        retry = {
            "type": "retry",
            "strategy": "linear",
            "count": p.retry_count,
            "interval": p.retry_interval_ms,
        }
        for n in range(p.destinations):
            answer = http.post(
                f"{server.url}/v1/connections",
                json={
                    "name": f"chaos-{n}",
                    "source": {"name": f"chaos-source-{n}"},
                    "destination": {
                        "name": f"chaos-receiver-{n}",
                        "config": {"url": receiver.url(f"/d{n}"), "http_timeout": p.http_timeout_s},
                    },
                    "rules": [retry],
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            answer.raise_for_status()
            r.sources.append(answer.json()["source"]["id"])
        workers = Workers(
            sweep_every_s=p.sweep_every_s,
            deliver_handler=crashing_deliver_handler(sender),
            sweep_handler=sweeper(p.sweep_grace_s),
            deliver_pollers=p.deliver_pollers,
        ).start()
        yield r
    finally:
        switch.on = False
        plan.pause()
        if workers is not None:
            workers.stop()
        server.stop()
        stack.stop()
        receiver.stop()
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        if saved_faults is None:
            os.environ.pop("FASTHOOK_FAULTS", None)
        else:
            os.environ["FASTHOOK_FAULTS"] = saved_faults


# ---- the load --------------------------------------------------------------------------------------------


@dataclass
class Sent:
    seq: int
    source_id: str
    tries: int = 0
    status: int = 0
    request_id: str | None = None


def _post(session: requests.Session, url: str, sent: Sent, body: bytes) -> Sent:
    """One webhook, retried like a provider does when FastHook answers 5xx or the connection fails."""
    for _ in range(6):
        sent.tries += 1
        try:
            answer = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            sent.status = answer.status_code
            if answer.status_code == 200:
                sent.request_id = answer.json().get("request_id")
                return sent
        except requests.RequestException:
            sent.status = 0
        time.sleep(0.5 * sent.tries)
    return sent


def send_at_rate(r: Rig, p: Params) -> list[Sent]:
    """Open loop: webhook i is handed to the pool at t0 + i/rate, round-robin over the sources."""
    local = threading.local()

    def work(sent: Sent) -> Sent:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body = json.dumps({"type": "chaos.webhook", "seq": sent.seq}).encode()
        return _post(local.session, f"{r.url}/e/{sent.source_id}", sent, body)

    with ThreadPoolExecutor(max_workers=p.threads, thread_name_prefix="chaos-load") as pool:
        t0 = time.monotonic()
        futures = []
        for i in range(p.count):
            delay = t0 + i / p.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(work, Sent(i, r.sources[i % len(r.sources)])))
        return [f.result() for f in futures]


# ---- waiting and checking ------------------------------------------------------------------------------------


class Snapshot:
    """Every event and attempt in the records table, read with one consistent Scan.

    Reading them back per request and per event (the API's way: an index Query each) costs a Query per
    record, and moto's index Query walks the whole table, so a 10,000-webhook run spent longer reading
    than running; one Scan reads each item once.
    """

    def __init__(self) -> None:
        from chalicelib import wiring
        from chalicelib.adapters.dynamo.client import make_client
        from chalicelib.adapters.dynamo.items import to_doc

        settings = wiring.container().settings
        db = make_client("dynamodb", region=settings.region, endpoint=settings.aws_endpoint)  # no faults
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by request id
        self.attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by event id
        kwargs: dict[str, Any] = {
            "TableName": settings.records_table,
            "ConsistentRead": True,
            "FilterExpression": "sk IN (:evt, :att)",
            "ExpressionAttributeValues": {":evt": {"S": "EVT"}, ":att": {"S": "ATT"}},
        }
        while True:
            page = db.scan(**kwargs)
            for item in page.get("Items", []):
                doc = to_doc(item) or {}
                if item["sk"]["S"] == "EVT":
                    self.events[doc["request_id"]].append(doc)
                else:
                    self.attempts[doc["event_id"]].append(doc)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def attempts_of_event(self, event_id: str) -> list[dict[str, Any]]:
        return sorted(self.attempts.get(event_id, []), key=lambda a: int(a["attempt_number"]))


def pending_requests(request_ids: set[str]) -> tuple[set[str], dict[str, list[dict[str, Any]]]]:
    """Of these requests, the ones without a final event; and the events of the others, by request."""
    snapshot = Snapshot()
    pending, done = set(), {}
    for request_id in request_ids:
        events = snapshot.events.get(request_id, [])
        if events and all(e["status"] in FINAL for e in events):
            done[request_id] = events
        else:
            pending.add(request_id)
    return pending, done


def wait_for_quiescence(
    r: Rig, p: Params, accepted: set[str], stopped_at: float, stopped_wall: datetime
) -> dict[str, Any]:
    """Poll until every accepted request has final events; then when each became final (its updated_at).

    Reading a thousand requests' events takes a while, so "final within 2 minutes" is judged from the
    events' own updated_at (the time their final state was written), not from when this loop saw them.
    """
    pending, events = set(accepted), {}
    deadline = stopped_at + p.drain_timeout_s
    polled_at = stopped_at - 3
    while True:
        # The receiver's count decides when to read the store (reading every request's events while most
        # are still moving would slow them down); every 10 s anyway, for events that end FAILED.
        # A read is a Scan of the whole table, so at most one every 3 s.
        now = time.monotonic()
        if now - polled_at >= 3 and (
            r.receiver.delivered_count(pending) >= len(pending)
            or now - polled_at >= 10
            or now >= stopped_at + p.final_within_s
        ):
            pending, done = pending_requests(pending)
            events.update(done)
            polled_at = time.monotonic()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    final_after_s = [
        (datetime.fromisoformat(e["updated_at"]) - stopped_wall).total_seconds()
        for of_request in events.values()
        for e in of_request
    ]
    return {
        "events": events,
        "not_final": sorted(pending),
        "stuck_after_final_within_s": len(pending) + sum(1 for s in final_after_s if s > p.final_within_s),
        "quiet_after_s": round(max([0.0, *final_after_s]), 1),
    }


def _overlaps(visits: list[Visit], http_timeout_s: float) -> list[tuple[Visit, Visit]]:
    by_event: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_event[visit.event_id].append(visit)
    pairs = []
    for same in by_event.values():
        ordered = sorted(same, key=lambda v: v.arrived)
        pairs += [(a, b) for a, b in itertools.pairwise(ordered) if b.arrived < a.in_flight_until(http_timeout_s)]
    return pairs


def analyse(r: Rig, p: Params, accepted: set[str], quiet: dict[str, Any]) -> dict[str, Any]:
    """The figures of the report, from the receiver's visits, the injected crashes and the stored records."""
    records = Snapshot()
    visits = list(r.receiver.visits)
    by_event: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_event[visit.event_id].append(visit)
    crashed_after = {(e, a) for e, a, where, _ in r.sender.crashes if where == "after"}
    crash_counts = Counter(where for _, _, where, _ in r.sender.crashes)

    events = [e for of_request in quiet["events"].values() for e in of_request]
    delivered = failed = 0
    failed_codes: Counter[str] = Counter()
    inconsistent: list[dict[str, Any]] = []
    duplicate_causes: Counter[str] = Counter()
    extra_causes: Counter[str] = Counter()  # receiver visits that are not an attempt of their own
    unexplained_visits = 0
    unexplained: list[dict[str, Any]] = []  # duplicates no cause above explains, with what the run saw
    for event in events:
        seen = sorted(by_event.get(event["id"], []), key=lambda v: v.arrived)
        ok = [v for v in seen if 200 <= v.status < 300]
        if event["status"] == "SUCCESSFUL" and ok:
            delivered += 1
        elif event["status"] == "FAILED":
            failed += 1
            failed_codes[str(event.get("error_code"))] += 1
        attempts = records.attempts_of_event(event["id"])
        recorded = {str(a["attempt_number"]): a for a in attempts}
        for earlier, later in itertools.pairwise(ok):
            if earlier.late:
                duplicate_causes["timeout, then the retry"] += 1
            elif (event["id"], earlier.attempt) in crashed_after:
                duplicate_causes["worker crashed after the HTTP call"] += 1
            elif earlier.attempt == later.attempt:
                # Same try number twice: the first try's result was never stored (a store call throttled
                # past the SDK's retries, or its lease ran out), so the event was tried again.
                duplicate_causes["result not stored (store error after the HTTP call), tried again"] += 1
            elif (recorded.get(earlier.attempt) or {}).get("error_code") == "TIMEOUT":
                # Not a held answer: the receiver answered in time by its own clock, but FastHook's client
                # gave up first (the answer was slowed on its way back by the loaded process).
                duplicate_causes["answer reached FastHook after its timeout, then the retry"] += 1
            else:
                duplicate_causes["unexplained"] += 1
                if len(unexplained) < 10:
                    unexplained.append(
                        {
                            "event_id": event["id"],
                            "visits": [asdict(v) for v in seen],
                            "attempts": [
                                {k: a.get(k) for k in ("attempt_number", "status", "error_code", "response_status")}
                                for a in attempts
                            ],
                        }
                    )
        numbers = [int(a["attempt_number"]) for a in attempts]
        last = attempts[-1]["status"] if attempts else None
        # A try that was never recorded (crash after the call, store error) is tried again under the same
        # number, so every number the receiver saw must be a recorded attempt.
        unrecorded = sorted({v.attempt for v in seen} - {str(n) for n in numbers})
        extra = len(seen) - len({v.attempt for v in seen})
        crashed_here = sum(1 for e, _ in crashed_after if e == event["id"])
        extra_causes["worker crashed after the HTTP call"] += min(extra, crashed_here)
        extra_causes["result not stored, tried again"] += max(0, extra - crashed_here)
        problems = []
        if numbers != list(range(1, len(numbers) + 1)) or len(numbers) != int(event.get("attempts") or 0):
            problems.append(f"attempts {numbers} but the event says {event.get('attempts')}")
        if event["status"] in ("SUCCESSFUL", "FAILED") and last != event["status"]:
            problems.append(f"event {event['status']} but its last attempt is {last}")
        if unrecorded:
            unexplained_visits += len(unrecorded)
            problems.append(f"the receiver saw try numbers {unrecorded} that no attempt records")
        if problems:
            inconsistent.append({"event_id": event["id"], "status": event["status"], "problems": problems})

    # Final, yet neither delivered nor FAILED with a cause (CANCELLED cannot happen here: nothing is deleted).
    lost = sorted(
        request_id
        for request_id, of_request in quiet["events"].items()
        if any(e["status"] not in ("SUCCESSFUL", "FAILED") for e in of_request)
    )
    extra_events = sum(len(of_request) - 1 for of_request in quiet["events"].values())
    overlaps = _overlaps(visits, p.http_timeout_s)
    first_ok = {}
    for visit in visits:
        if 200 <= visit.status < 300 and visit.request_id not in first_ok:
            first_ok[visit.request_id] = visit.answered
    return {
        "events": len(events),
        "delivered": delivered,
        "failed_final": failed,
        "failed_codes": dict(failed_codes),
        "lost": len(lost),
        "lost_request_ids": lost[:20],
        "requests_with_extra_events": extra_events,
        "receiver_visits": len(visits),
        "receiver_5xx": sum(1 for v in visits if v.status >= 500),
        "receiver_late": sum(1 for v in visits if v.late),
        "duplicates": sum(duplicate_causes.values()),
        "duplicate_causes": dict(duplicate_causes),
        "unexplained_duplicate_examples": unexplained,
        "overlaps": len(overlaps),
        "overlap_examples": [[asdict(a), asdict(b)] for a, b in overlaps[:5]],
        "attempts_inconsistent": len(inconsistent),
        "inconsistent_examples": inconsistent[:10],
        "unexplained_visits": unexplained_visits,
        "unrecorded_visits": dict(extra_causes),
        "crashes": dict(crash_counts),
        "first_delivery_times": first_ok,
    }


# ---- the run ----------------------------------------------------------------------------------------------


def _progress(r: Rig, p: Params, t0: float, done: threading.Event) -> None:
    while not done.wait(p.progress_every_s):
        with r.receiver._lock:
            visited, ok = len(r.receiver.visited), len(r.receiver.ok_requests)
        print(
            f"chaos: {time.monotonic() - t0:.0f} s, faults {'on' if r.switch.on else 'off'}, "
            f"{visited} of {p.count} webhooks reached the receiver, {ok} answered 2xx",
            file=sys.stderr,
            flush=True,
        )


def run(p: Params) -> dict[str, Any]:
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with rig(p) as r:
        r.switch.on = True
        r.plan.resume()
        t0 = time.monotonic()
        done = threading.Event()
        if p.progress_every_s:
            threading.Thread(target=_progress, args=(r, p, t0, done), name="chaos-progress", daemon=True).start()
        sent = send_at_rate(r, p)
        sending_s = time.monotonic() - t0
        accepted = {s.request_id for s in sent if s.status == 200 and s.request_id}
        # Faults stay on until every webhook reached the receiver once (delivery lags ingest on this
        # stack), so every delivery runs the gauntlet; what follows is recovery.
        r.receiver.wait_for_visits(
            accepted, timeout_s=min(p.drain_timeout_s, p.faults_after_send_s or p.drain_timeout_s)
        )
        r.switch.on = False
        r.plan.pause()
        stopped_at, stopped_wall = time.monotonic(), datetime.now(UTC)
        faults_s = stopped_at - t0
        quiet = wait_for_quiescence(r, p, accepted, stopped_at, stopped_wall)
        figures = analyse(r, p, accepted, quiet)
        injected = r.plan.totals()
        doubled = dict(r.queues.doubled)
        done.set()
    first_ok = figures.pop("first_delivery_times")
    wall_s = (max(first_ok.values()) - t0) if first_ok else 0.0
    unfinished = len(quiet["not_final"])
    figures["lost"] += unfinished  # accepted, and still not final when the run gave up waiting
    figures["lost_request_ids"] += quiet["not_final"][:20]
    throttles = Counter()
    for what, n in injected.items():
        throttles[what.split(".")[0] + " " + what.split(" ")[1]] += n
    return {
        "bench": "chaos",
        "schema": 1,
        "started_at": started_at,
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "params": asdict(p),
        "load": {
            "sent": len(sent),
            "accepted": len(accepted),
            "not_accepted": len(sent) - len(accepted),
            "ingest_retries": sum(s.tries - 1 for s in sent),
            "sending_s": round(sending_s, 1),
            "faults_on_s": round(faults_s, 1),
            "send_rate_per_s": round(len(sent) / sending_s, 2) if sending_s else 0.0,
            "wall_s": round(wall_s, 1),
            "throughput_per_s": round(len(first_ok) / wall_s, 2) if wall_s else 0.0,
        },
        "faults": {
            "throttles": dict(throttles),
            "throttles_by_call": injected,
            "duplicated_messages": doubled,
            "worker_crashes": figures.pop("crashes"),
        },
        "outcome": {
            **figures,
            "stuck_after_2_min": quiet["stuck_after_final_within_s"],
            "quiet_after_s": quiet["quiet_after_s"],
        },
    }


def passed(result: dict[str, Any]) -> bool:
    o = result["outcome"]
    unexplained = o["duplicate_causes"].get("unexplained", 0)
    return not (o["lost"] or o["overlaps"] or o["stuck_after_2_min"] or o["attempts_inconsistent"] or unexplained)


def markdown(result: dict[str, Any]) -> str:
    p, load, faults, o = result["params"], result["load"], result["faults"], result["outcome"]
    rows = [
        (
            "webhooks sent / accepted (ingest 5xx retried by the sender)",
            f"{load['sent']} / {load['accepted']} ({load['ingest_retries']} retries)",
        ),
        ("events delivered (SUCCESSFUL, receiver answered 2xx)", o["delivered"]),
        ("events FAILED (final, with a recorded cause)", f"{o['failed_final']} {o['failed_codes'] or ''}"),
        ("**lost** (must be 0)", o["lost"]),
        ("duplicate deliveries seen by the receiver", f"{o['duplicates']} {o['duplicate_causes'] or ''}"),
        ("**overlapping in-flight deliveries of one event** (must be 0)", o["overlaps"]),
        ("**events not final 2 min after the faults stopped** (must be 0)", o["stuck_after_2_min"]),
        ("**events whose attempts do not match** (must be 0)", o["attempts_inconsistent"]),
        ("last event final, s after the faults stopped", o["quiet_after_s"]),
        (
            "receiver visits / 503s / answered past the timeout",
            f"{o['receiver_visits']} / {o['receiver_5xx']} / {o['receiver_late']}",
        ),
        ("receiver visits that repeat a try (cause)", o["unrecorded_visits"] or 0),
        (
            "worker crashes (before / after the HTTP call)",
            f"{faults['worker_crashes'].get('before', 0)} / {faults['worker_crashes'].get('after', 0)}",
        ),
        (
            "messages sent twice (route / deliver)",
            f"{faults['duplicated_messages'].get('route', 0)} / {faults['duplicated_messages'].get('deliver', 0)}",
        ),
        ("throttles injected", ", ".join(f"{k}: {v}" for k, v in sorted(faults["throttles"].items())) or "0"),
        (
            "send rate, webhooks/s (sending took, s; faults on for, s)",
            f"{load['send_rate_per_s']} ({load['sending_s']}; {load['faults_on_s']})",
        ),
        ("throughput, first deliveries/s (wall, s)", f"{load['throughput_per_s']} ({load['wall_s']})"),
    ]
    head = (
        f"# FastHook fault run (`make chaos`, {result['started_at']})\n\n"
        f"{p['count']} webhooks at {p['rate']}/s over {p['destinations']} destinations (retry: linear, "
        f"{p['retry_count']} x {p['retry_interval_ms']} ms; http_timeout {p['http_timeout_s']} s), embedded "
        f"stack, {result['host']['cpus']} CPUs. Faults: receiver 503 {p['receiver_5xx']:.1%} and past the timeout "
        f"{p['receiver_timeout']:.1%} of calls; worker crash before/after the HTTP call {p['crash_before']:.1%}/"
        f"{p['crash_after']:.1%} of deliveries; DynamoDB/SQS throttles {p['dynamodb_throttle']:.1%}/"
        f"{p['sqs_throttle']:.1%} of attempts, {p['persistent_throttle']:.1%} of calls on every attempt; "
        f"{p['duplicate']:.0%} of messages sent twice. Sweeper every {p['sweep_every_s']} s (grace "
        f"{p['sweep_grace_s']} s), visibility timeouts {p['visibility_s']} s.\n\n"
        f"Result: **{'PASS' if passed(result) else 'FAIL'}**\n\n| figure | value |\n|---|---|\n"
    )
    body = "".join(f"| {name} | {value} |\n" for name, value in rows)
    extra = ""
    if o["inconsistent_examples"]:
        extra += "\nInconsistent events:\n" + "".join(f"- {json.dumps(x)}\n" for x in o["inconsistent_examples"])
    if o["lost_request_ids"]:
        extra += "\nLost or unfinished requests: " + ", ".join(o["lost_request_ids"]) + "\n"
    return head + body + extra


def write(result: dict[str, Any], results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace("-", "").replace(":", "")
    json_path = results_dir / f"chaos-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    md_path = results_dir / f"chaos-{stamp}.md"
    md_path.write_text(markdown(result))
    (results_dir / "chaos-latest.md").write_text(markdown(result))
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    defaults = Params()
    parser.add_argument("--count", type=int, default=defaults.count, help="webhooks sent while faults are on")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="webhooks per second")
    parser.add_argument("--destinations", type=int, default=defaults.destinations)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-write", action="store_true", help="print only; write nothing to bench/results")
    args = parser.parse_args(argv)
    # The embedded stack on loopback only: moto's credentials, never an account's or another endpoint.
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "FASTHOOK_AWS_ENDPOINT"):
        os.environ.pop(name, None)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # the deliver worker's EMF lines: noise here
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    params = Params(
        count=args.count, rate=args.rate, destinations=args.destinations, seed=args.seed, progress_every_s=30.0
    )
    print(f"chaos: {params.count} webhooks at {params.rate}/s, about {params.count / params.rate / 60:.0f} min of load")
    result = run(params)
    print(markdown(result))
    if not args.no_write:
        json_path, md_path = write(result)
        print(f"wrote {json_path.relative_to(PROJECT_DIR)} and {md_path.relative_to(PROJECT_DIR)}")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
