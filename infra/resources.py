"""Every table, index, TTL attribute, queue, dead-letter queue and bucket FastHook uses, as plain data.

The deploy stack, the embedded local stack (`make run`) and the tests all build their resources from
these definitions, so the three cannot drift apart. Names are logical; `physical_name(stage, name)`
gives the name a stage uses, and `.chalice/config.json` passes the same names to the Lambdas.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    # ALL copies whole items into the index (every write of the item writes the copy too: its size in
    # WRU); KEYS_ONLY copies the keys, written only when an index key changes, and readers fetch the
    # items from the table. Indexes that only find items to act on are KEYS_ONLY.
    projection: str = "ALL"


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    sort_key: str | None
    ttl_attribute: str | None
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    description: str = ""


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout_s: int
    retention_s: int
    dead_letter: str | None = None
    max_receive_count: int = 5
    description: str = ""


@dataclass(frozen=True)
class Bucket:
    name: str
    expire_after_days: int
    description: str = ""


CONTROL = Table(
    name="control",
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="expires_at",
    description="Teams, users, sessions, API keys, sources, destinations, connections, transformations.",
)

RECORDS = Table(
    name="records",
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="expires_at",
    indexes=(
        # Team timelines: lists, counts and metrics filter and page on the copies themselves.
        Index("gsi1", "gsi1pk", "gsi1sk"),
        # Children of a request or event: read rarely (detail pages, a re-run), written on every change.
        Index("gsi2", "gsi2pk", "gsi2sk", projection="KEYS_ONLY"),
        # Sparse work index: only SCHEDULED/QUEUED (DUE#<shard>) and HOLD (HOLD#<connection>) events carry it.
        Index("gsi3", "gsi3pk", "gsi3sk", projection="KEYS_ONLY"),
    ),
    description="Requests, events, attempts and ignored branches; expire with the team's retention.",
)

TABLES: tuple[Table, ...] = (CONTROL, RECORDS)

# Visibility timeouts sit above the handlers' Lambda timeouts (route 30 s, deliver 75 s = the longest
# destination HTTP timeout of 60 s plus margin), so SQS never hands a message to a second worker while
# the first can still be running.
ROUTE_DLQ = Queue("route-dlq", visibility_timeout_s=60, retention_s=14 * 86400)
ROUTE = Queue(
    "route",
    visibility_timeout_s=180,
    retention_s=4 * 86400,
    dead_letter="route-dlq",
    description="One message per accepted Request; the route worker turns it into Events.",
)
DELIVER_DLQ = Queue("deliver-dlq", visibility_timeout_s=60, retention_s=14 * 86400)
DELIVER = Queue(
    "deliver",
    visibility_timeout_s=450,
    retention_s=4 * 86400,
    dead_letter="deliver-dlq",
    description="One message per Event delivery try; the deliver worker makes the HTTP call.",
)

QUEUES: tuple[Queue, ...] = (ROUTE_DLQ, ROUTE, DELIVER_DLQ, DELIVER)

PAYLOADS = Bucket(
    name="payloads",
    expire_after_days=30,
    description="Request bodies above the inline limit; lifecycle matches the default retention.",
)

BUCKETS: tuple[Bucket, ...] = (PAYLOADS,)


def physical_name(stage: str, logical: str) -> str:
    """The name a stage gives a resource: `fasthook-<stage>-<logical>`."""
    return f"fasthook-{stage}-{logical}"


def stack_name(stage: str) -> str:
    """The CloudFormation stack of a stage; it is also the prefix of every Lambda name of the stage."""
    return f"fasthook-{stage}"


@dataclass(frozen=True)
class StateMachine:
    """A Step Functions state machine: its ASL file in infra/ and, per ARN placeholder, the task Lambda's name."""

    name: str
    definition_file: str
    tasks: tuple[tuple[str, str], ...]
    description: str = ""


BULK = StateMachine(
    name="bulk",
    definition_file="bulk_operation.asl.json",
    # placeholder in the ASL -> chalice's name of the task Lambda (app.py's `@app.lambda_function(name=...)`)
    tasks=(
        ("BulkPlanFunctionArn", "bulk_plan"),
        ("BulkPagesFunctionArn", "bulk_pages"),
        ("BulkFailFunctionArn", "bulk_fail"),
    ),
    description="Bulk retry/replay: plan, then pages of matching items, until done or cancelled.",
)

STATE_MACHINES: tuple[StateMachine, ...] = (BULK,)


def state_machine_definition(machine: StateMachine, function_arns: dict[str, str]) -> str:
    """The machine's ASL with each placeholder replaced by the ARN of its task Lambda (keyed by chalice name)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent / machine.definition_file).read_text()
    for placeholder, function in machine.tasks:
        text = text.replace("${" + placeholder + "}", function_arns[function])
    return text
