"""`make bench`: the webhook pipeline on the embedded stack, measured (issue 4, item 6).

    python -m bench.run [--count 300] [--rate 50] [--steady-rate 3] [--steady-count 150] [--threads 16]
                        [--floor-count 300] [--serial-count 200]

The embedded stack (moto and every worker in one Python process) delivers only a few webhooks a second
on a small machine, so the default count keeps `make bench` to a few minutes; at 50/s it measures the
stack saturated (the report says so), and `--rate` below the reported throughput measures it unloaded.

One process runs what `make run` runs (moto server, the local HTTP server, the route/deliver pollers
and the sweeper timer), a loopback receiver, and the load. Phases:
1. floor: a raw PutItem (1 KB item, records table) + SendMessage (route queue), one at a time, against
   the same endpoint with the adapters' client settings: the least an ingest can cost.
2. ingest_serial: webhooks one at a time with the workers stopped, the floor's conditions (their route
   messages are purged before the workers start).
3. steady: `steady_count` 1 KB webhooks at `steady_rate`, a rate the embedded stack keeps up with: ack
   latency, ingest-to-receiver latency (matched by x-fasthook-request-id), lost (must be 0), and every
   AWS call the app made meanwhile, turned into billed units and $ per million webhooks
   (bench/report.py). The cost is read here because Lambda bills each invocation's own wall time: in a
   saturated run every handler also waits for the others' share of the one GIL, which no Lambda does.
4. ingest: `count` webhooks at `rate` (50/s: beyond the embedded stack) for sustained throughput; its
   latencies measure the backlog and its calls are reported beside the steady phase's.

Results: bench/results/pipeline-<UTC stamp>.json and bench/results/latest.md, also printed. Speed
goals are measured here and never asserted: the machine is shared and every component competes for
one Python process.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import requests

from bench import report
from bench.meter import AwsMeter
from bench.prices import price_table
from bench.receiver import TimedReceiver

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
PROJECT_DIR: Final = Path(__file__).resolve().parent.parent
# Handler functions the local server and pollers look up by name on every call, so a timing wrapper set
# on the module is what they call: (module, attribute) per Lambda function.
HANDLERS: Final = {
    "ingest": ("chalicelib.entrypoints.ingress", "handle_function_url"),
    "route": ("chalicelib.entrypoints.route_worker", "handle_route_batch"),
    "deliver": ("chalicelib.entrypoints.deliver_worker", "handle_deliver_batch"),
    "sweeper": ("chalicelib.entrypoints.sweeper", "handle_sweep"),
}
LOGGER_STAGES: Final = {
    "fasthook-ingest": "ingest",
    "fasthook-route": "route",
    "fasthook-deliver": "deliver",
    "fasthook-sweeper": "sweeper",
}
WARMUP: Final = 20


@dataclass(frozen=True)
class Params:
    count: int = 300
    rate: float = 50.0
    threads: int = 16
    floor_count: int = 300
    serial_count: int = 200
    body_bytes: int = 1024
    drain_timeout_s: float | None = None  # default: 60 s + 0.5 s per webhook (the embedded stack is slow)
    # About half the embedded stack's throughput with no faults (5-6/s on a shared 2-core machine).
    steady_rate: float = 3.0
    steady_count: int = 150
    # The deployed stage the bill models (.chalice/config.json): memory per function, log level.
    profile: dict[str, Any] = field(default_factory=report.stage_profile)

    @property
    def drain_s(self) -> float:
        return self.drain_timeout_s if self.drain_timeout_s is not None else 60.0 + 0.5 * self.count


# ---- measuring shims (no behaviour change) ------------------------------------------------------------


class HandlerClock:
    """Wall time of every handler call, by function; swaps in a timing wrapper and puts the original back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.in_flight = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> HandlerClock:
        for stage, (module_name, attribute) in HANDLERS.items():
            module = importlib.import_module(module_name)
            original = getattr(module, attribute)
            self._saved.append((module, attribute, original))
            setattr(module, attribute, self._timed(stage, original))
        return self

    def uninstall(self) -> None:
        for module, attribute, original in self._saved:
            setattr(module, attribute, original)
        self._saved.clear()

    def reset(self) -> None:
        with self._lock:
            self.ms = defaultdict(list)

    def _timed(self, stage: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def timed(event: Any, context: Any) -> Any:
            with self._lock:
                self.in_flight += 1
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                with self._lock:
                    self.in_flight -= 1
                    self.ms[stage].append(elapsed)

        return timed


class _CountingStream(io.TextIOBase):
    def __init__(self, sink: LogMeter, stage: str) -> None:
        self._sink, self._stage = sink, stage

    def write(self, text: str) -> int:
        self._sink.add(self._stage, len(text.encode()))
        return len(text)


class LogMeter:
    """Bytes the handlers' powertools loggers write (what CloudWatch Logs would ingest), kept off the console.

    The loggers run at `level`, the modelled stage's FASTHOOK_LOG_LEVEL: they were built at import with
    this process's settings, so the level is set on them (and their module loggers) and put back after.
    """

    def __init__(self, level: str = "INFO") -> None:
        self._lock = threading.Lock()
        self.level = level
        self.bytes: dict[str, int] = defaultdict(int)
        self._saved: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._levels: dict[str, int] = {}

    def install(self) -> LogMeter:
        for name, stage in LOGGER_STAGES.items():
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, logging.StreamHandler):
                    self._saved.append((handler, handler.setStream(_CountingStream(self, stage))))
        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] in LOGGER_STAGES:
                logger = logging.getLogger(name)
                self._levels[name] = logger.level
                logger.setLevel(self.level)
        return self

    def uninstall(self) -> None:
        for handler, stream in self._saved:
            handler.setStream(stream)
        self._saved.clear()
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._levels.clear()

    def add(self, stage: str, size: int) -> None:
        with self._lock:
            self.bytes[stage] += size

    def reset(self) -> None:
        with self._lock:
            self.bytes = defaultdict(int)


# ---- the stack ----------------------------------------------------------------------------------------


@dataclass
class Rig:
    url: str
    source_id: str
    receiver: TimedReceiver
    meter: AwsMeter
    clock: HandlerClock
    logs: LogMeter
    start_workers: Callable[[], None]


@contextmanager
def rig(log_level: str = "INFO") -> Iterator[Rig]:
    """Meters, receiver, embedded stack, local server, a demo login and one source -> receiver connection."""
    meter = AwsMeter().install()  # before the stack, so every client the app makes carries the hooks
    clock = HandlerClock().install()  # imports the entrypoints, which creates their loggers
    logs = LogMeter(log_level).install()
    receiver = TimedReceiver().start()
    from local.server import LocalServer
    from local.stack import EmbeddedStack
    from local.workers import Workers

    server = LocalServer(0)
    stack = EmbeddedStack(http_port=server.port)
    workers = Workers()
    started: list[Workers] = []
    try:
        stack.start()
        server.start()
        from chalicelib import wiring

        settings = wiring.container().settings
        meter.learn_tables(_client("dynamodb"), [settings.records_table, settings.control_table])
        http = requests.Session()
        token = http.post(f"{server.url}/v1/auth/demo/login", timeout=30).json()["token"]
        answer = http.post(
            f"{server.url}/v1/connections",
            json={
                "name": "bench",
                "source": {"name": "bench-source"},
                "destination": {"name": "bench-receiver", "config": {"url": receiver.url("/hooks")}},
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        answer.raise_for_status()

        def start_workers() -> None:
            started.append(workers.start())

        yield Rig(server.url, answer.json()["source"]["id"], receiver, meter, clock, logs, start_workers)
    finally:
        if started:
            workers.stop()
        server.stop()
        stack.stop()
        receiver.stop()
        logs.uninstall()
        clock.uninstall()
        meter.uninstall()


def _client(service: str) -> Any:
    from chalicelib import wiring
    from chalicelib.adapters.dynamo.client import make_client

    settings = wiring.container().settings
    return make_client(service, region=settings.region, endpoint=settings.aws_endpoint)


# ---- phases -------------------------------------------------------------------------------------------


def floor(count: int, body_bytes: int) -> dict[str, Any]:
    """PutItem of a 1 KB item + SendMessage of a route-sized message, timed one by one."""
    from chalicelib import wiring

    settings = wiring.container().settings
    dynamodb, sqs = _client("dynamodb"), _client("sqs")
    pad = os.urandom(body_bytes)
    put_ms, send_ms, total_ms = [], [], []
    for i in range(WARMUP + count):
        item = {"pk": {"S": f"BENCH#floor#{i}"}, "sk": {"S": "BENCH"}, "body": {"B": pad}}
        message = json.dumps({"v": 1, "kind": "route", "team_id": "tm_bench", "request_id": f"req_bench{i:020d}"})
        started = time.perf_counter()
        dynamodb.put_item(TableName=settings.records_table, Item=item)
        middle = time.perf_counter()
        sqs.send_message(QueueUrl=settings.route_queue_url, MessageBody=message)
        ended = time.perf_counter()
        if i >= WARMUP:
            put_ms.append((middle - started) * 1000)
            send_ms.append((ended - middle) * 1000)
            total_ms.append((ended - started) * 1000)
    return {
        "put_ms": report.percentiles(put_ms),
        "send_ms": report.percentiles(send_ms),
        "total_ms": report.percentiles(total_ms),
    }


def _body(seq: int, size: int) -> bytes:
    head = json.dumps({"id": f"evt_bench_{seq:08d}", "type": "bench.webhook", "seq": seq, "pad": ""})
    return json.dumps(
        {"id": f"evt_bench_{seq:08d}", "type": "bench.webhook", "seq": seq, "pad": "x" * max(0, size - len(head))}
    ).encode()


@dataclass
class Sent:
    seq: int
    scheduled: float
    started: float = 0.0
    acked: float = 0.0
    status: int = 0
    request_id: str | None = None


def _post(session: requests.Session, url: str, sent: Sent, body: bytes) -> Sent:
    sent.started = time.perf_counter()
    try:
        answer = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        sent.status = answer.status_code
        sent.request_id = answer.headers.get("x-fasthook-request-id")
    except requests.RequestException:
        sent.status = 0
    sent.acked = time.perf_counter()
    return sent


def ingest_serial(r: Rig, count: int, body_bytes: int) -> dict[str, Any]:
    session = requests.Session()
    url = f"{r.url}/e/{r.source_id}"
    acks = []
    for i in range(WARMUP + count):
        sent = _post(session, url, Sent(i, time.perf_counter()), _body(i, body_bytes))
        if i >= WARMUP and sent.status == 200:
            acks.append((sent.acked - sent.started) * 1000)
    return {"ack_ms": report.percentiles(acks), "accepted": len(acks)}


def send_at_rate(r: Rig, *, count: int, rate: float, threads: int, body_bytes: int, first_seq: int) -> list[Sent]:
    """Open loop: webhook i is handed to the pool at t0 + i/rate whatever the earlier ones are doing."""
    local = threading.local()
    url = f"{r.url}/e/{r.source_id}"

    def work(sent: Sent, body: bytes) -> Sent:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _post(local.session, url, sent, body)

    bodies = [_body(first_seq + i, body_bytes) for i in range(count)]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-load") as pool:
        t0 = time.perf_counter()
        futures = []
        for i in range(count):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(work, Sent(first_seq + i, due), bodies[i]))
        return [f.result() for f in futures]


def wait_delivered(r: Rig, request_ids: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while r.receiver.count_of(request_ids) < len(request_ids) and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_quiet(r: Rig, timeout_s: float = 10.0) -> None:
    """Until no handler has run for 0.3 s, so the last batches' deletes are in the window."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        if r.clock.in_flight == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 0.3:
                return
        else:
            quiet_since = None
        time.sleep(0.02)


def ingest_load(r: Rig, p: Params, *, count: int, rate: float, first_seq: int = 0) -> dict[str, Any]:
    # Warm the whole pipeline (imports, routing cache, connections) outside the window.
    warm = send_at_rate(
        r, count=WARMUP, rate=rate, threads=p.threads, body_bytes=p.body_bytes, first_seq=10**6 + first_seq
    )
    wait_delivered(r, {s.request_id for s in warm if s.request_id}, p.drain_s)
    wait_quiet(r)
    r.meter.reset()
    r.clock.reset()
    r.logs.reset()
    deliveries_before = r.receiver.deliveries

    sent = send_at_rate(r, count=count, rate=rate, threads=p.threads, body_bytes=p.body_bytes, first_seq=first_seq)
    accepted = {s.request_id: s for s in sent if s.status == 200 and s.request_id}
    wait_delivered(r, set(accepted), p.drain_s)
    wait_quiet(r)
    snapshot = r.meter.snapshot()
    handler_ms = {k: list(v) for k, v in r.clock.ms.items()}
    log_bytes = dict(r.logs.bytes)
    deliveries = r.receiver.deliveries - deliveries_before

    arrivals = {rid: r.receiver.arrivals[rid] for rid in accepted if rid in r.receiver.arrivals}
    first_send = min(s.started for s in sent)
    wall_s = (max(arrivals.values()) - first_send) if arrivals else 0.0
    load = {
        "sent": len(sent),
        "accepted": len(accepted),
        "rejected": len(sent) - len(accepted),
        "delivered": len(arrivals),
        "lost": len(accepted) - len(arrivals),
        "duplicates": deliveries - len(arrivals),
        "wall_s": round(wall_s, 2),
        "send_rate_achieved_per_s": round(len(sent) / max(1e-9, max(s.started for s in sent) - first_send), 1),
        "throughput_per_s": round(len(arrivals) / wall_s, 1) if wall_s else 0.0,
        # Delivery fell behind the send rate: latencies then measure the backlog, not the pipeline.
        "rate": rate,
        "saturated": bool(wall_s) and len(arrivals) / wall_s < 0.9 * rate,
        "ack_ms": report.percentiles([(s.acked - s.started) * 1000 for s in accepted.values()]),
        "e2e_ms": report.percentiles([(at - accepted[rid].started) * 1000 for rid, at in arrivals.items()]),
        "send_lag_ms": report.percentiles([(s.started - s.scheduled) * 1000 for s in sent]),
    }
    return {"load": load, "snapshot": snapshot, "handler_ms": handler_ms, "log_bytes": log_bytes}


# ---- the run ------------------------------------------------------------------------------------------


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(  # noqa: S603
                ["git", *args],  # noqa: S607
                cwd=PROJECT_DIR,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except OSError:
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown", "dirty": bool(git("status", "--porcelain"))}


def run(p: Params) -> dict[str, Any]:
    from bench.transform import measure_transform

    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with rig(p.profile["log_level"]) as r:
        floor_stats = floor(p.floor_count, p.body_bytes)
        serial = ingest_serial(r, p.serial_count, p.body_bytes)
        from chalicelib import wiring

        settings = wiring.container().settings
        _client("sqs").purge_queue(QueueUrl=settings.route_queue_url)  # floor and serial messages: not the load
        r.start_workers()
        steady_measured = ingest_load(r, p, count=p.steady_count, rate=p.steady_rate, first_seq=10**7)
        measured = ingest_load(r, p, count=p.count, rate=p.rate)
        queue_urls = {"route": settings.route_queue_url, "deliver": settings.deliver_queue_url}

    def usage(phase: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        snapshot, accepted = phase["snapshot"], phase["load"]["accepted"]
        receives = {
            url: {"messages": s.messages, "nonempty": s.nonempty, "calls": s.calls}
            for url, s in snapshot.receives.items()
        }
        lam = report.lambda_usage(
            webhooks=accepted,
            handler_ms=phase["handler_ms"],
            receives=receives,
            queue_urls=queue_urls,
            log_bytes=phase["log_bytes"],
            memory_mb=p.profile["memory_mb"],
        )
        return report.aws_usage(snapshot, accepted), lam

    load, steady = measured["load"], steady_measured["load"]
    aws, lam = usage(steady_measured)
    saturated_aws, saturated_lam = usage(measured)
    cost = report.costs(aws, lam)
    floor_p50 = floor_stats["total_ms"]["p50"] or 1e-9
    return {
        "bench": "pipeline",
        "schema": 1,
        "started_at": started_at,
        "git": _git(),
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "params": vars(p),
        "phases": {"floor": floor_stats, "ingest_serial": serial, "steady": steady, "ingest": load},
        "aws": aws,
        "lambda": lam,
        "cost": cost,
        # The same figures in the saturated phase, for comparison (batches fill up, handlers wait on the GIL).
        "saturated": {
            "aws": saturated_aws,
            "lambda": saturated_lam,
            "cost": report.costs(saturated_aws, saturated_lam),
        },
        # Measured after the stack stopped, on this thread alone: the engine's per-call cost, not the load's.
        "transform": measure_transform(),
        "targets": report.targets(
            steady["ack_ms"]["p50"] / floor_p50,
            serial["ack_ms"]["p50"] / floor_p50,
            cost["total_usd_per_million"],
            saturated_ratio=load["ack_ms"]["p50"] / floor_p50,
        ),
        "caveats": [
            "One Python process runs moto, the HTTP server, both workers, the receiver and the load: they share "
            "one GIL, so latencies under load include contention that separate Lambdas would not have.",
            "moto on loopback stands in for DynamoDB/SQS; its per-call latency is not AWS's.",
            "DynamoDB units are modelled from item sizes and GSI membership (moto reports a constant per call; "
            "its figure is kept as dynamodb_usd_per_million_if_moto_capacity).",
            "Lambda duration is the handler's wall time in the steady phase (moto latency, some contention); "
            "cold starts and init are not billed in this model. Route/deliver invocations = ReceiveMessage "
            "calls that returned messages; a real event source mapping batches differently (batch window, "
            "concurrency).",
            "Empty ReceiveMessage calls by idle pollers are billed per hour, not per webhook; only those inside "
            "the measured window are counted.",
        ],
        "prices": price_table(),
    }


def write(result: dict[str, Any], results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace("-", "").replace(":", "")
    json_path = results_dir / f"pipeline-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    md_path = results_dir / "latest.md"
    md_path.write_text(report.markdown(result))
    return json_path, md_path


def run_reads(count: int, *, write_results: bool) -> int:
    """The read-cost bench alone: list pages and metrics calls over `count` stored requests."""
    from bench.reads import measure_reads

    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = {"bench": "reads", "schema": 1, "started_at": started_at, "git": _git(), "reads": measure_reads(count)}
    print(report.reads_markdown(result["reads"]))
    if write_results:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        json_path = RESULTS_DIR / f"reads-{started_at.replace('-', '').replace(':', '')}.json"
        json_path.write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS_DIR / "reads-latest.md").write_text(report.reads_markdown(result["reads"]) + "\n")
        print(f"wrote {json_path.relative_to(PROJECT_DIR)} and bench/results/reads-latest.md")
    return 0


def run_bulk(count: int, *, write_results: bool) -> int:
    """The bulk retry bench alone: `count` failed events retried by one bulk operation (bench/bulk.py)."""
    from bench.bulk import measure_bulk

    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = {"bench": "bulk", "schema": 1, "started_at": started_at, "git": _git(), "bulk": measure_bulk(count)}
    print(report.bulk_markdown(result["bulk"]))
    if write_results:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        json_path = RESULTS_DIR / f"bulk-{started_at.replace('-', '').replace(':', '')}.json"
        json_path.write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS_DIR / "bulk-latest.md").write_text(report.bulk_markdown(result["bulk"]) + "\n")
        print(f"wrote {json_path.relative_to(PROJECT_DIR)} and bench/results/bulk-latest.md")
    return 0 if result["bulk"]["operation"]["status"] == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    defaults = Params()
    parser.add_argument("--count", type=int, default=defaults.count, help="webhooks in the measured load")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="webhooks per second sent")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="sender threads")
    parser.add_argument("--steady-rate", type=float, default=defaults.steady_rate, help="rate of the cost phase")
    parser.add_argument("--steady-count", type=int, default=defaults.steady_count)
    parser.add_argument("--floor-count", type=int, default=defaults.floor_count)
    parser.add_argument("--serial-count", type=int, default=defaults.serial_count)
    parser.add_argument("--body-bytes", type=int, default=defaults.body_bytes)
    parser.add_argument("--no-write", action="store_true", help="print only; write nothing to bench/results")
    parser.add_argument("--reads-only", action="store_true", help="only the read-cost bench (bench/reads.py)")
    parser.add_argument("--reads-count", type=int, default=10_000, help="requests stored for the read-cost bench")
    parser.add_argument("--bulk-only", action="store_true", help="only the bulk retry bench (bench/bulk.py)")
    parser.add_argument("--bulk-count", type=int, default=2000, help="failed events the bulk retry bench retries")
    parser.add_argument("--no-bulk", action="store_true", help="skip the bulk retry bench in the full run")
    args = parser.parse_args(argv)
    # The bench is the embedded stack on loopback: moto's credentials, never an account's or another endpoint.
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "FASTHOOK_AWS_ENDPOINT"):
        os.environ.pop(name, None)
    logging.basicConfig(level=logging.WARNING)
    # botocore's pool of 10 overflows when the deliver worker's 10 threads and its poller share a client;
    # urllib3 says so once per call. Reported in the results, not on the console.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if args.reads_only:
        return run_reads(args.reads_count, write_results=not args.no_write)
    if args.bulk_only:
        return run_bulk(args.bulk_count, write_results=not args.no_write)
    params = Params(
        args.count,
        args.rate,
        args.threads,
        args.floor_count,
        args.serial_count,
        args.body_bytes,
        steady_rate=args.steady_rate,
        steady_count=args.steady_count,
    )
    result = run(params)
    if not args.no_bulk:
        from bench.bulk import measure_bulk

        # Its own embedded stack, after the pipeline's stopped: the two loads must not share moto.
        result["bulk"] = measure_bulk(args.bulk_count)
    print(report.markdown(result))
    if not args.no_write:
        json_path, md_path = write(result)
        print(f"wrote {json_path.relative_to(PROJECT_DIR)} and {md_path.relative_to(PROJECT_DIR)}")
    phases = (result["phases"]["steady"], result["phases"]["ingest"])
    return 1 if any(phase["lost"] or phase["rejected"] for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
