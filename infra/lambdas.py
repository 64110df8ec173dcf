"""What each deployed Lambda is given: its chalice settings, the variables naming its resources, its rights.

There are two ways to deploy the app: the CDK stack (`infra/stack.py`, which embeds chalice) and an
app-only `chalice deploy --stage <stage>` against a stack's resources (`infra/chalice_stage.py` renders
its configuration). Both read this module, so they cannot give a function different settings, point it
at different resources or grant it different rights; a reviewer reads one short table of grants
instead of two policy builders.

The API handler and ingest exist so far. The route/deliver workers (SQS), the sweeper (schedule)
and the bulk-operation tasks (Step Functions) add their own entry to `FUNCTION_ACCESS` when their
handlers land in app.py; tests/functional/test_infra_stack.py fails until every function has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chalice.utils import to_cfn_resource_name

from chalicelib.settings import ENV_NAMES
from infra import resources as r

Kind = Literal["table", "queue", "bucket"]

LAMBDA_ARCHITECTURE = "arm64"  # Graviton: cheaper per GB-second, and every dependency ships aarch64 wheels
LOG_RETENTION_DAYS = 30
# A Lambda function URL accepts at most 6 MB per request, and binary bodies arrive base64-encoded
# (4/3 larger) inside a JSON envelope with the headers; 4 MiB of body leaves room for both. The
# embedded stack keeps its 10 MiB default (DESIGN.md section 4).
DEPLOYED_MAX_BODY_BYTES = 4 * 1024 * 1024
# The module-level handler the ingest Lambda runs: the same function app.py registers, imported
# without app.py (see FastHookStack._ingest_url). `chalice deploy` alone keeps app.py's handler.
INGEST_HANDLER = "chalicelib.entrypoints.ingress.handle_function_url"

# Which setting (a chalicelib/settings.py field) carries which resource's name or URL.
RESOURCE_SETTINGS: tuple[tuple[str, Kind, str], ...] = (
    ("control_table", "table", r.CONTROL.name),
    ("records_table", "table", r.RECORDS.name),
    ("route_queue_url", "queue", r.ROUTE.name),
    ("deliver_queue_url", "queue", r.DELIVER.name),
    ("route_dlq_url", "queue", r.ROUTE_DLQ.name),
    ("deliver_dlq_url", "queue", r.DELIVER_DLQ.name),
    ("payload_bucket", "bucket", r.PAYLOADS.name),
)


@dataclass(frozen=True)
class Grant:
    """Actions on one resource; a table grant may extend to every index the table declares."""

    kind: Kind
    name: str
    actions: tuple[str, ...]
    include_indexes: bool = False


# TransactWriteItems is not an IAM action: each item of a transaction is authorised as its own
# PutItem/UpdateItem/DeleteItem/ConditionCheckItem, so those are what the control table needs.
CONTROL_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
# The API reads requests/events/attempts (search, detail, metrics through the indexes) and writes
# them (ingest, retry, bulk operations). Records expire by TTL, so nothing deletes them by hand.
RECORDS_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
)
# SendMessageBatch is authorised as sqs:SendMessage too.
SEND_ACTIONS = ("sqs:SendMessage",)
PAYLOAD_ACTIONS = ("s3:GetObject", "s3:PutObject")
# The log group is created with the function (with its retention), so the function only writes to it.
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")

API_HANDLER: tuple[Grant, ...] = (
    Grant("table", r.CONTROL.name, CONTROL_ACTIONS),
    Grant("table", r.RECORDS.name, RECORDS_ACTIONS, include_indexes=True),
    # Ingest enqueues routing; retries and unpause enqueue deliveries. Nothing here reads a queue.
    Grant("queue", r.ROUTE.name, SEND_ACTIONS),
    Grant("queue", r.DELIVER.name, SEND_ACTIONS),
    Grant("bucket", r.PAYLOADS.name, PAYLOAD_ACTIONS),
)

# Ingest only accepts: it looks the source up, stores the Request (a conditional put, large bodies
# to S3 first) and enqueues routing. It never reads records back, updates them or touches delivery.
INGEST: tuple[Grant, ...] = (
    Grant("table", r.CONTROL.name, ("dynamodb:GetItem", "dynamodb:Query")),
    Grant("table", r.RECORDS.name, ("dynamodb:PutItem",)),
    Grant("queue", r.ROUTE.name, SEND_ACTIONS),
    Grant("bucket", r.PAYLOADS.name, ("s3:PutObject",)),
)

# chalice's name of a function (`api_handler` for the REST API, the `name=` of a handler) -> its grants.
RECEIVE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
WORKER_RECORDS_ACTIONS = (*RECORDS_ACTIONS, "dynamodb:DeleteItem")

ROUTE_WORKER: tuple[Grant, ...] = (
    Grant("table", r.CONTROL.name, ("dynamodb:GetItem", "dynamodb:Query")),
    Grant("table", r.RECORDS.name, WORKER_RECORDS_ACTIONS, include_indexes=True),
    Grant("queue", r.ROUTE.name, RECEIVE_ACTIONS),
    Grant("queue", r.DELIVER.name, SEND_ACTIONS),
    Grant("bucket", r.PAYLOADS.name, PAYLOAD_ACTIONS),
)

DELIVER_WORKER: tuple[Grant, ...] = (
    # PutItem/ConditionCheckItem: the team's project secrets are created on first use.
    Grant("table", r.CONTROL.name, CONTROL_ACTIONS),
    Grant("table", r.RECORDS.name, WORKER_RECORDS_ACTIONS, include_indexes=True),
    Grant("queue", r.DELIVER.name, (*RECEIVE_ACTIONS, *SEND_ACTIONS)),
    Grant("bucket", r.PAYLOADS.name, ("s3:GetObject",)),
)

SWEEPER: tuple[Grant, ...] = (
    Grant("table", r.RECORDS.name, WORKER_RECORDS_ACTIONS, include_indexes=True),
    Grant("queue", r.DELIVER.name, SEND_ACTIONS),
    Grant("queue", r.DELIVER_DLQ.name, RECEIVE_ACTIONS),
    Grant("queue", r.ROUTE_DLQ.name, RECEIVE_ACTIONS),
)

# The bulk operation state machine's tasks (infra/bulk_operation.asl.json). Operations live in the
# records table beside the records they retry; the control table is only read (routing resources).
BULK_PLAN: tuple[Grant, ...] = (
    Grant("table", r.CONTROL.name, ("dynamodb:GetItem", "dynamodb:Query")),
    # Query on gsi1 counts the matches; UpdateItem sets the operation running.
    Grant("table", r.RECORDS.name, ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"), include_indexes=True),
)
BULK_PAGES: tuple[Grant, ...] = (
    Grant("table", r.CONTROL.name, ("dynamodb:GetItem", "dynamodb:Query")),
    # Pages of matches (gsi1), event retries and replays (conditional writes), the operation's counters.
    Grant(
        "table",
        r.RECORDS.name,
        ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        include_indexes=True,
    ),
    # A retried event goes to the deliver queue; a replayed request to the route queue.
    Grant("queue", r.ROUTE.name, SEND_ACTIONS),
    Grant("queue", r.DELIVER.name, SEND_ACTIONS),
    # A replay of a request with a large body gets its own copy of the body.
    Grant("bucket", r.PAYLOADS.name, PAYLOAD_ACTIONS),
)
BULK_FAIL: tuple[Grant, ...] = (Grant("table", r.RECORDS.name, ("dynamodb:GetItem", "dynamodb:UpdateItem")),)
# The bulk tasks are invoked by the state machine only; the API handler only starts executions.
BULK_TASKS = ("bulk_plan", "bulk_pages", "bulk_fail")
START_EXECUTION_ACTIONS = ("states:StartExecution",)
INVOKE_ACTIONS = ("lambda:InvokeFunction",)

# Functions chalice subscribes to a queue (`@app.on_sqs_message`); they answer with partial batch failures.
SQS_WORKERS = ("route_worker", "deliver_worker")

FUNCTION_ACCESS: dict[str, tuple[Grant, ...]] = {
    "api_handler": API_HANDLER,
    "ingest": INGEST,
    "route_worker": ROUTE_WORKER,
    "deliver_worker": DELIVER_WORKER,
    "sweeper": SWEEPER,
    "bulk_plan": BULK_PLAN,
    "bulk_pages": BULK_PAGES,
    "bulk_fail": BULK_FAIL,
}


def logical_id(function: str) -> str:
    """The function's logical id in chalice's SAM template (chalice renames the REST API's to APIHandler)."""
    return "APIHandler" if function == "api_handler" else to_cfn_resource_name(function)


_TABLES = {table.name: table for table in r.TABLES}


def environment(stage: str, locate: Callable[[Kind, str], str]) -> dict[str, str]:
    """The FASTHOOK_* variables of a deployed function; `locate(kind, name)` gives a table or bucket
    name, or a queue URL, in the caller's terms (CDK tokens in the stack, strings when rendering)."""
    env = {
        ENV_NAMES["stage"]: stage,
        ENV_NAMES["max_body_bytes"]: str(DEPLOYED_MAX_BODY_BYTES),
        # In AWS a destination on a private or link-local address is an SSRF risk (the instance
        # metadata endpoint, the VPC), whatever a stage's config says.
        ENV_NAMES["allow_private_destinations"]: "false",
        # Stored bodies expire with the bucket's lifecycle: records must not outlive them.
        ENV_NAMES["retention_days"]: str(r.PAYLOADS.expire_after_days),
    }
    for setting, kind, name in RESOURCE_SETTINGS:
        env[ENV_NAMES[setting]] = locate(kind, name)
    return env


def stage_config(*, environment_variables: dict[str, str], iam_policy_file: str) -> dict[str, Any]:
    """Chalice stage settings both deploy paths share.

    Memory size and timeout are left to `.chalice/config.json` (512 MB / 30 s; more for prod) so that
    file stays the one place functions are sized. chalice's generated policy would be CloudWatch logs
    on `*` and nothing the app needs; with autogen off every function gets its own role with the
    policy file, which is why the file carries the function's grants (chalice deploy) or only its log
    rights with the grants attached by the stack (CDK).

    Log retention is not here: `chalice package` (1.34) names the API handler's log group after the
    function's id before renaming the function to APIHandler, so its template references a resource
    that does not exist. The stack creates that log group itself; `chalice deploy` has no such bug
    and gets `log_retention_in_days` from infra/chalice_stage.py.
    """
    return {
        "lambda_architecture": LAMBDA_ARCHITECTURE,
        "autogen_policy": False,
        "iam_policy_file": iam_policy_file,
        "environment_variables": environment_variables,
    }


def grant_resources(grant: Grant, arn_of: Callable[[Kind, str], str]) -> list[str]:
    """The ARNs a grant covers: the table (plus its indexes), the queue, or the bucket's objects."""
    arn = arn_of(grant.kind, grant.name)
    if grant.kind == "bucket":
        return [f"{arn}/*"]
    resources = [arn]
    if grant.kind == "table" and grant.include_indexes:
        resources += [f"{arn}/index/{index.name}" for index in _TABLES[grant.name].indexes]
    return resources


def grant_statements(grants: tuple[Grant, ...], arn_of: Callable[[Kind, str], str]) -> list[dict[str, Any]]:
    """IAM statements (policy JSON shape) for grants; CDK tokens concatenate like strings."""
    return [
        {"Effect": "Allow", "Action": list(grant.actions), "Resource": grant_resources(grant, arn_of)}
        for grant in grants
    ]


def log_statement(stage: str) -> dict[str, Any]:
    """Write to the stage's Lambda log groups and no other stage's or application's.

    CloudFormation names the stack's functions `fasthook-<stage>-<id>-<suffix>`; `chalice deploy` names
    the API handler `fasthook-<stage>` and other functions `fasthook-<stage>-<name>`.
    """
    prefix = r.stack_name(stage)
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": [
            f"arn:*:logs:*:*:log-group:/aws/lambda/{prefix}:*",
            f"arn:*:logs:*:*:log-group:/aws/lambda/{prefix}-*:*",
        ],
    }


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}
