"""Render the `.chalice/config.json` stage block and IAM policy for an app-only `chalice deploy`.

`chalice deploy --stage <stage>` creates its own API and functions but must use the tables, queues
and bucket the CDK stack created. Every name is `fasthook-<stage>-<logical>` and every ARN and queue
URL follows from it, the account and the region, so this renders both files offline from the same
data as the stack (infra/resources.py, infra/lambdas.py), instead of someone copying outputs by hand:

    .venv/bin/python -m infra.chalice_stage --stage dev --region eu-west-1 --account 123456789012 \
        --ingest-url https://<id>.lambda-url.eu-west-1.on.aws --policy-dir .chalice

prints the JSON to put under `stages.<stage>` in `.chalice/config.json` and writes one policy file per
function (its logs plus its grants) and a logs-only one for any function without grants.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from chalicelib.settings import ENV_NAMES
from infra import lambdas
from infra import resources as r


def arn_of(kind: lambdas.Kind, name: str, *, stage: str, region: str, account: str) -> str:
    physical = r.physical_name(stage, name)
    if kind == "table":
        return f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
    if kind == "queue":
        return f"arn:aws:sqs:{region}:{account}:{physical}"
    return f"arn:aws:s3:::{physical}"


def locate(kind: lambdas.Kind, name: str, *, stage: str, region: str, account: str) -> str:
    physical = r.physical_name(stage, name)
    if kind == "queue":
        return f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
    return physical


def state_machine_arn(name: str, *, stage: str, region: str, account: str) -> str:
    return f"arn:aws:states:{region}:{account}:stateMachine:{r.physical_name(stage, name)}"


def policy_file(stage: str, function: str | None = None) -> str:
    """File name under .chalice/: one per function with grants, one logs-only for any other function."""
    return f"policy-{stage}-{function}.json" if function else f"policy-{stage}-logs.json"


def render(
    *, stage: str, region: str, account: str, ingest_url: str | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(stage block for .chalice/config.json, {policy file name: IAM policy}) of a stage in one account/region.

    `ingest_url` is the stack's IngestUrl output: chalice cannot create function URLs, so without it
    the stage keeps whatever FASTHOOK_INGEST_URL config.json already has.
    """
    where = {"stage": stage, "region": region, "account": account}
    policies = {policy_file(stage): lambdas.policy_document([lambdas.log_statement(stage)])}
    # The stack's state machine (bulk operations): the API starts executions of it and nothing else.
    bulk_arn = state_machine_arn(r.BULK.name, **where)
    start_bulk = {"Effect": "Allow", "Action": list(lambdas.START_EXECUTION_ACTIONS), "Resource": [bulk_arn]}
    for function, grants in lambdas.FUNCTION_ACCESS.items():
        statements = lambdas.grant_statements(grants, lambda kind, name: arn_of(kind, name, **where))
        if function == "api_handler":
            statements = [*statements, start_bulk]
        policies[policy_file(stage, function)] = lambdas.policy_document([lambdas.log_statement(stage), *statements])
    environment = lambdas.environment(stage, lambda kind, name: locate(kind, name, **where))
    environment[ENV_NAMES["bulk_state_machine_arn"]] = bulk_arn
    block = lambdas.stage_config(environment_variables=environment, iam_policy_file=policy_file(stage))
    if ingest_url:
        block["environment_variables"][ENV_NAMES["ingest_url"]] = ingest_url.rstrip("/")
    # chalice looks a function's policy file up under the stage's lambda_functions first.
    block["lambda_functions"] = {
        function: {"iam_policy_file": policy_file(stage, function)} for function in lambdas.FUNCTION_ACCESS
    }
    # chalice deploy (unlike chalice package) creates the log group with this retention correctly.
    block["log_retention_in_days"] = lambdas.LOG_RETENTION_DAYS
    return block, policies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--account", required=True, help="12-digit AWS account id")
    parser.add_argument("--ingest-url", help="the stack's IngestUrl output (FASTHOOK_INGEST_URL)")
    parser.add_argument("--policy-dir", type=Path, help="where to write the IAM policy files (.chalice)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"\d{12}", args.account):
        parser.error("--account must be the 12-digit account id")
    block, policies = render(stage=args.stage, region=args.region, account=args.account, ingest_url=args.ingest_url)
    if args.policy_dir:
        for name, policy in policies.items():
            (args.policy_dir / name).write_text(json.dumps(policy, indent=2) + "\n")
    json.dump({args.stage: block}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
