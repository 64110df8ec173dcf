"""CDK entry point: `make synth` runs it directly, `npx aws-cdk deploy` runs it through infra/cdk.json.

One stage per run (`-c stage=prod`, default `dev`), so `cdk deploy` needs no stack name and a synth
never packages the app twice. `-c alarm_email=ops@example.com` adds the SNS topic alarms notify;
`-c source_dir=...` packages another copy of the app (the tests use a copy without requirements).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run as a script from infra/ (`python app.py`), the repo root is not on sys.path yet.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aws_cdk as cdk  # noqa: E402

from infra.stack import FastHookStack  # noqa: E402


def build(app: cdk.App) -> FastHookStack:
    stage = app.node.try_get_context("stage") or "dev"
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    return FastHookStack(
        app,
        stage,
        source_dir=Path(app.node.try_get_context("source_dir") or REPO),
        alarm_email=app.node.try_get_context("alarm_email") or None,
        # The cdk CLI sets both from the caller's credentials; without them the template stays
        # environment-agnostic (AWS::Region / AWS::AccountId pseudo parameters).
        env=cdk.Environment(account=account, region=region) if account and region else None,
    )


def main() -> None:
    app = cdk.App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
