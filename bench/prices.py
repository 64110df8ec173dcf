"""us-east-1 list prices the bench turns billed units into dollars with, each with where it was read.

One place for every price, so a price change is one edit and every figure in bench/results says which
prices it used (the report copies this table). List prices only: no free tier, no Savings Plans, no
volume tiers (every tier here is the first one, which covers well over a billion webhooks a month).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

READ_ON: Final = "2026-11-23"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    read_on: str = READ_ON
    note: str = ""


PRICES: Final[dict[str, Price]] = {
    "lambda_request": Price(
        0.20 / 1_000_000,
        "request (invocation); a function URL call costs only this, no API Gateway charge",
        "https://aws.amazon.com/lambda/pricing/",
        note="confirmed via https://git.mcrn.ar/mariano/lambda_local_runner (docs/lambdas-md/lambda-13-cost.md)",
    ),
    "lambda_arm64_gb_s": Price(
        0.0000133334,
        "GB-second, arm64, first 7.5 billion GB-s per month; duration rounded up to 1 ms",
        "https://aws.amazon.com/lambda/pricing/",
        note="confirmed via https://cloudchipr.com/blog/aws-lambda-pricing",
    ),
    "dynamodb_wru": Price(
        0.625 / 1_000_000,
        "on-demand write request unit (1 KB; each GSI write is billed too)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        note="price after the 1 Nov 2024 50% on-demand reduction; confirmed via "
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing",
    ),
    "dynamodb_rru": Price(
        0.125 / 1_000_000,
        "on-demand read request unit (one strongly consistent read of 4 KB, or two eventually consistent)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        note="price after the 1 Nov 2024 50% on-demand reduction; confirmed via "
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing",
    ),
    "sqs_request": Price(
        0.40 / 1_000_000,
        "standard queue request, per 64 KB chunk of payload (empty receives count)",
        "https://aws.amazon.com/sqs/pricing/",
        note="confirmed via https://cloudburn.io/blog/amazon-sqs-pricing",
    ),
    "s3_put": Price(
        0.005 / 1000,
        "S3 Standard PUT, COPY, POST, LIST request",
        "https://aws.amazon.com/s3/pricing/",
        note="the stored copy of the pricing page renders these cells as template tokens; "
        "figure as published on the page, not re-confirmed from a second source",
    ),
    "s3_get": Price(
        0.0004 / 1000,
        "S3 Standard GET, SELECT and all other requests",
        "https://aws.amazon.com/s3/pricing/",
        note="as for s3_put",
    ),
    "cloudwatch_logs_gb": Price(
        0.50,
        "GB ingested, standard log class (Lambda logs go here)",
        "https://aws.amazon.com/cloudwatch/pricing/",
        note="confirmed via https://c3x.dev/blog/cloudwatch-logs-cost-optimization",
    ),
    "stepfunctions_transition": Price(
        0.025 / 1000,
        "standard workflow state transition (bulk operations only; never on the per-webhook path)",
        "https://aws.amazon.com/step-functions/pricing/",
        note="confirmed via aws/agent-toolkit-for-aws plugins/aws-startup-advisor/.../step-functions.md",
    ),
}

# Published per-million anchors the targets are set against (issue 4, "Must show").
ANCHORS: Final[dict[str, str]] = {
    "hookdeck": "$3.30-10 per million",
    "eventbridge_with_front_door": "about $2.40 per million",
}


def price_table() -> dict[str, Any]:
    """The prices as plain data, for the results JSON."""
    return {name: asdict(price) for name, price in PRICES.items()}
