"""Turns what a bench run measured into billed units, $ per million webhooks, and the markdown table.

Lambda is modelled from what the run observed: one ingest invocation per webhook (a function URL call),
one route or deliver invocation per ReceiveMessage that returned messages (what an SQS event source
mapping turns into an invocation), each billed for the handler's measured wall time at the memory
size the modelled stage gives that function in `.chalice/config.json` (arm64), plus the sweeper's
runs if one fell in the window. CloudWatch Logs: the bytes the handlers' loggers wrote at the
stage's log level, plus Lambda's own START/END/REPORT lines per invocation.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

from bench.meter import Snapshot
from bench.prices import ANCHORS, PRICES

MODELLED_STAGE: Final = "prod"
CHALICE_CONFIG: Final = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
# The bench's names of the pipeline's Lambda functions -> their names in app.py / .chalice/config.json.
FUNCTIONS: Final = {"ingest": "ingest", "route": "route_worker", "deliver": "deliver_worker", "sweeper": "sweeper"}
PLATFORM_LOG_BYTES: Final = 340  # START + END + REPORT lines Lambda writes per invocation (typical sizes)
LOG_GB: Final = 1024**3
TARGET_RATIO: Final = 1.3
TARGET_USD_PER_MILLION: Final = 1.50
_WRITES: Final = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_READS: Final = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


def stage_profile(stage: str = MODELLED_STAGE, config_path: Path = CHALICE_CONFIG) -> dict[str, Any]:
    """What the bill depends on in a deployed stage: each function's memory (MB) and the log level.

    Chalice's precedence: a function's own setting, then the stage's, then the top level.
    """
    config = json.loads(config_path.read_text())
    stage_config = config["stages"][stage]
    functions = stage_config.get("lambda_functions", {})

    def memory_mb(function: str) -> int:
        for scope in (functions.get(function, {}), stage_config, config):
            if "lambda_memory_size" in scope:
                return int(scope["lambda_memory_size"])
        return 128  # Lambda's default

    env = {**config.get("environment_variables", {}), **stage_config.get("environment_variables", {})}
    return {
        "stage": stage,
        "memory_mb": {name: memory_mb(function) for name, function in FUNCTIONS.items()},
        "log_level": env.get("FASTHOOK_LOG_LEVEL", "INFO"),
    }


def percentiles(values: list[float]) -> dict[str, float | int]:
    """n, p50, p99 (nearest rank), mean and max of a sample, in the sample's unit, rounded to 0.01."""
    if not values:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "n": len(ordered),
        "p50": round(rank(50), 2),
        "p99": round(rank(99), 2),
        "mean": round(sum(ordered) / len(ordered), 2),
        "max": round(ordered[-1], 2),
    }


def aws_usage(snapshot: Snapshot, webhooks: int) -> dict[str, Any]:
    """Calls per webhook by operation (and by stage), and the billed units they add up to."""
    per_op: dict[str, float] = defaultdict(float)
    by_stage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    units = {"dynamodb_wru": 0.0, "dynamodb_rru": 0.0, "moto_wru": 0.0, "moto_rru": 0.0}
    units |= {"sqs_requests": 0.0, "s3_put": 0.0, "s3_get": 0.0, "errors": 0.0}
    latency: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    billed: dict[str, float] = defaultdict(float)
    for (stage, op), stats in snapshot.ops.items():
        service, _, operation = op.partition(".")
        per_op[op] += stats.calls
        by_stage[stage][op] += stats.calls
        latency[op][0] += stats.ms_total
        latency[op][1] += stats.calls
        billed[f"{stage}:{op}"] += stats.billed
        units["errors"] += stats.errors
        if service == "dynamodb":
            kind = "wru" if operation in _WRITES else "rru" if operation in _READS else None
            if kind:
                units[f"dynamodb_{kind}"] += stats.billed
                units[f"moto_{kind}"] += stats.moto_capacity
        elif service == "sqs":
            units["sqs_requests"] += stats.billed
        elif service == "s3":
            units["s3_get" if operation in ("GetObject", "HeadObject") else "s3_put"] += stats.billed
    n = max(1, webhooks)
    return {
        "calls_per_webhook": {op: round(c / n, 3) for op, c in sorted(per_op.items())},
        "calls_per_webhook_total": round(sum(per_op.values()) / n, 3),
        "calls_per_webhook_by_stage": {
            stage: {op: round(c / n, 3) for op, c in sorted(ops.items())} for stage, ops in sorted(by_stage.items())
        },
        "units_per_webhook": {name: round(value / n, 4) for name, value in units.items()},
        "billed_units_per_webhook_by_stage_op": {key: round(v / n, 3) for key, v in sorted(billed.items()) if v},
        "call_ms_mean": {op: round(total / calls, 2) for op, (total, calls) in sorted(latency.items()) if calls},
    }


def lambda_usage(
    *,
    webhooks: int,
    handler_ms: dict[str, list[float]],
    receives: dict[str, dict[str, int]],
    queue_urls: dict[str, str],
    log_bytes: dict[str, int],
    memory_mb: dict[str, int],
) -> dict[str, Any]:
    """Invocations, billed GB-s (at each function's `memory_mb`) and log bytes per webhook, by function."""
    invocations = {
        "ingest": len(handler_ms.get("ingest", [])),
        "route": receives.get(queue_urls["route"], {}).get("nonempty", 0),
        "deliver": receives.get(queue_urls["deliver"], {}).get("nonempty", 0),
        "sweeper": len(handler_ms.get("sweeper", [])),
    }
    billed_ms = {name: sum(math.ceil(ms) for ms in handler_ms.get(name, [])) for name in invocations}
    gb_s = {name: ms / 1000 * memory_mb[name] / 1024 for name, ms in billed_ms.items()}
    n = max(1, webhooks)
    total_invocations = sum(invocations.values())
    app_log = sum(log_bytes.values())
    return {
        "invocations": invocations,
        "handler_calls_measured": {name: len(ms) for name, ms in sorted(handler_ms.items())},
        "invocations_per_webhook": round(total_invocations / n, 4),
        "messages_per_invocation": {
            name: round(receives.get(queue_urls[name], {}).get("messages", 0) / invocations[name], 2)
            for name in ("route", "deliver")
            if invocations[name]
        },
        "handler_ms": {name: percentiles(ms) for name, ms in sorted(handler_ms.items())},
        "memory_mb": dict(memory_mb),
        "gb_s_per_webhook": round(sum(gb_s.values()) / n, 7),
        "gb_s_per_webhook_by_function": {name: round(v / n, 7) for name, v in gb_s.items()},
        "log_bytes_per_webhook": {
            "app": round(app_log / n, 1),
            "app_by_function": {name: round(b / n, 1) for name, b in sorted(log_bytes.items())},
            "platform_model": round(PLATFORM_LOG_BYTES * total_invocations / n, 1),
        },
    }


def _memory_unit(memory_mb: dict[str, int]) -> str:
    sizes = sorted(set(memory_mb.values()))
    return f"GB-s ({'/'.join(str(s) for s in sizes)} MB arm64)"


def costs(aws: dict[str, Any], lam: dict[str, Any]) -> dict[str, Any]:
    """$ per million webhooks, one line per component, from units per webhook and PRICES."""
    units = aws["units_per_webhook"]
    logs = lam["log_bytes_per_webhook"]
    lines = [
        ("lambda_requests", lam["invocations_per_webhook"], "invocations", "lambda_request"),
        ("lambda_duration", lam["gb_s_per_webhook"], _memory_unit(lam["memory_mb"]), "lambda_arm64_gb_s"),
        ("dynamodb_writes", units["dynamodb_wru"], "WRU (modelled)", "dynamodb_wru"),
        ("dynamodb_reads", units["dynamodb_rru"], "RRU (modelled)", "dynamodb_rru"),
        ("sqs_requests", units["sqs_requests"], "requests (64 KB chunks)", "sqs_request"),
        ("s3_puts", units["s3_put"], "PUT requests", "s3_put"),
        ("s3_gets", units["s3_get"], "GET requests", "s3_get"),
        ("cloudwatch_logs", (logs["app"] + logs["platform_model"]) / LOG_GB, "GB ingested", "cloudwatch_logs_gb"),
        ("step_functions", 0.0, "transitions (bulk operations only)", "stepfunctions_transition"),
    ]
    components = [
        {
            "component": name,
            "units_per_webhook": round(per_webhook, 9),
            "unit": unit,
            "usd_per_million": round(per_webhook * PRICES[price].usd * 1_000_000, 4),
        }
        for name, per_webhook, unit, price in lines
    ]
    total = round(sum(c["usd_per_million"] for c in components), 4)
    moto_dynamo = units["moto_wru"] * PRICES["dynamodb_wru"].usd + units["moto_rru"] * PRICES["dynamodb_rru"].usd
    return {
        "components": components,
        "total_usd_per_million": total,
        "dynamodb_usd_per_million_if_moto_capacity": round(moto_dynamo * 1_000_000, 4),
    }


def targets(ratio: float, serial_ratio: float, usd: float, *, saturated_ratio: float) -> dict[str, Any]:
    """`ratio`: ingest p50 / floor p50 at the steady rate; the serial and saturated ratios beside it."""
    return {
        "ingest_p50_over_floor_p50": {"value": round(ratio, 2), "target_at_most": TARGET_RATIO},
        "ingest_p50_over_floor_p50_serial": {"value": round(serial_ratio, 2), "target_at_most": TARGET_RATIO},
        "ingest_p50_over_floor_p50_saturated": {"value": round(saturated_ratio, 2)},
        "usd_per_million": {"value": round(usd, 4), "target_at_most": TARGET_USD_PER_MILLION, "anchors": ANCHORS},
        "met": {"latency": ratio <= TARGET_RATIO, "cost": usd <= TARGET_USD_PER_MILLION},
    }


def markdown(result: dict[str, Any]) -> str:
    phases, load, steady = result["phases"], result["phases"]["ingest"], result["phases"]["steady"]
    floor, serial = phases["floor"], phases["ingest_serial"]
    goals = result["targets"]
    p = result["params"]
    rows = [
        ("floor: PutItem + SendMessage, ms", floor["total_ms"]),
        ("ingest ack, one at a time (workers off), ms", serial["ack_ms"]),
        (f"ingest ack at a steady {p['steady_rate']:g}/s, ms", steady["ack_ms"]),
        (f"ingest to receiver at {p['steady_rate']:g}/s, ms", steady["e2e_ms"]),
        (f"ingest ack at {p['rate']:g}/s (saturated: backlog), ms", load["ack_ms"]),
        (f"ingest to receiver at {p['rate']:g}/s, ms", load["e2e_ms"]),
    ]
    saturated_usd = result["saturated"]["cost"]["total_usd_per_million"]
    profile = p["profile"]
    out = [
        f"# FastHook pipeline bench ({result['started_at']})",
        "",
        f"{p['steady_count']} webhooks of {p['body_bytes']} B JSON at a steady {p['steady_rate']:g}/s (latency "
        f"target, cost), then {p['count']} at {p['rate']:g}/s (throughput); one source -> one HTTP destination, "
        f"no rules; embedded stack (moto) on one machine, commit `{result['git']['commit']}`"
        + (" (dirty)" if result["git"]["dirty"] else "")
        + f". The bill models the `{profile['stage']}` stage of .chalice/config.json: Lambda memory "
        + ", ".join(f"{name} {mb} MB" for name, mb in profile["memory_mb"].items())
        + f"; log level {profile['log_level']}.",
        "",
        "| latency | p50 | p99 | max |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {v['p50']} | {v['p99']} | {v['max']} |" for name, v in rows),
        "",
        "| pipeline | value |",
        "|---|---:|",
        *(
            f"| accepted / delivered / lost / duplicates at {phase['rate']:g}/s | {phase['accepted']} / "
            f"{phase['delivered']} / {phase['lost']} / {phase['duplicates']} |"
            for phase in (steady, load)
        ),
        f"| sustained throughput (delivered / wall) | {load['throughput_per_s']}/s"
        + (f" (saturated: below the {p['rate']:g}/s sent)" if load["saturated"] else "")
        + " |",
        f"| ingest p50 / floor p50 at {p['steady_rate']:g}/s (target <= "
        f"{goals['ingest_p50_over_floor_p50']['target_at_most']}) | {goals['ingest_p50_over_floor_p50']['value']}x |",
        f"| same, ingest one at a time | {goals['ingest_p50_over_floor_p50_serial']['value']}x |",
        f"| same, at {p['rate']:g}/s (queueing) | {goals['ingest_p50_over_floor_p50_saturated']['value']}x |",
        *(
            [
                f"| small transformation per call, warm context, p50 / p99 (goal < {t['goal_us']:g} us) | "
                f"{t['p50_us']} / {t['p99_us']} us{'' if t['met'] else ' (goal missed)'} |"
            ]
            if (t := result.get("transform"))
            else []
        ),
        f"| AWS calls per webhook | {result['aws']['calls_per_webhook_total']} |",
        f"| Lambda invocations per webhook | {result['lambda']['invocations_per_webhook']} |",
        "",
        "| cost component | units / webhook | unit | $ / million webhooks |",
        "|---|---:|---|---:|",
        *(
            f"| {c['component']} | {c['units_per_webhook']:g} | {c['unit']} | {c['usd_per_million']:.4f} |"
            for c in result["cost"]["components"]
        ),
        f"| **total** (target <= ${goals['usd_per_million']['target_at_most']:.2f}) | | | "
        f"**{result['cost']['total_usd_per_million']:.4f}** |",
        f"| same calls priced in the saturated phase ({p['rate']:g}/s: fuller batches, GIL waits billed) | | | "
        f"{saturated_usd:.4f} |",
        "",
        "| AWS call | per webhook |",
        "|---|---:|",
        *(f"| {op} | {n} |" for op, n in result["aws"]["calls_per_webhook"].items()),
        "",
        "Anchors: Hookdeck $3.30-10 per million, EventBridge with a front door about $2.40. "
        "Prices: bench/prices.py (us-east-1 list prices, each with its source).",
        "",
    ]
    if result.get("reads"):
        out += [reads_markdown(result["reads"]), ""]
    if result.get("bulk"):
        out += [bulk_markdown(result["bulk"]), ""]
    return "\n".join(out)


def bulk_markdown(bulk: dict[str, Any]) -> str:
    """The bulk retry section (bench/bulk.py): wall times and state transitions per 1,000 events."""
    missed = "" if bulk["meets_goal"] else " (missed)"
    op = bulk["operation"]
    return "\n".join(
        [
            f"## Bulk retry of {bulk['events']} failed events (Step Functions on moto, tasks in-process)",
            "",
            f"Pages of {bulk['page_size']}, up to {bulk['pages_per_task']} pages per task invocation. "
            "Transitions are the execution's `*StateEntered` events (GetExecutionHistory), which Step "
            "Functions Standard bills. One Python process runs moto, the server, the workers and the receiver; "
            "the deliver workers start once every retry is queued, so the tasks' pages do not share the GIL "
            "with deliveries (in AWS they are separate Lambdas).",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| operation | {op['status']}: total {op['total_count']}, queued {op['queued_count']}, "
            f"done {op['done_count']} |",
            f"| wall time to every retry queued (s) | {bulk['wall_s_to_all_queued']} |",
            f"| wall time to every retry delivered (s) | {bulk['wall_s_to_all_delivered']} |",
            f"| state transitions | {bulk['state_transitions']} |",
            f"| task invocations | {bulk['task_invocations']} |",
            f"| transitions per 1,000 events | {bulk['transitions_per_1000_events']}{missed} "
            f"(goal <= {bulk['goal_transitions_per_1000_events']}) |",
        ]
    )


def reads_markdown(reads: dict[str, Any]) -> str:
    """The read-cost section (bench/reads.py): units per list page and per metrics call."""
    stored = reads["stored"]
    rows = []
    for route, key in (("GET /v1/requests", "requests"), ("GET /v1/events", "events")):
        for page_name, page in reads[key].items():
            if page_name.endswith("latency_ms"):
                continue
            missed = "" if page["meets_goal"] else " (missed)"
            rows.append(
                f"| {route} {page_name.replace('_', ' ')} | {page['items']} | {page['items_evaluated']} | "
                f"{page['units']:g} | {page['ideal_units']:g} | {page['ratio']}x{missed} | {page['latency_ms']} |"
            )
    metric_rows = [
        f"| GET /v1/metrics/{name} (1 h, 1m) | {m['buckets']} | {m['records_counted']} | {m['items_evaluated']} | "
        f"{m['units']:g} | {m['units_per_1000_records']} | {m['latency_ms']} |"
        for name in ("requests", "events")
        if (m := reads[f"metrics_{name}"])
    ]
    return "\n".join(
        [
            f"## Read costs ({stored['requests']} requests + {stored['events']} events over "
            f"{stored['spread_hours']:g} h)",
            "",
            f"Read units: {reads['units_source']}. Goal: {reads['goal']}. Latency: in-process API call against "
            "moto on loopback (the code path, not DynamoDB's latency). The session check's own Query "
            "(memberships, about 0.5-1 unit) is not in these figures.",
            "",
            "| list page | items | items read | read units | units of the items returned | ratio | ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"First page latency, median of 5: requests {reads['requests']['first_page_latency_ms']['median']} ms, "
            f"events {reads['events']['first_page_latency_ms']['median']} ms.",
            "",
            "| metrics call | buckets | records counted | items read | read units | units / 1000 records | ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *metric_rows,
        ]
    )
