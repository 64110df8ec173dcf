"""Synthesize one stage's CloudFormation template in a child process, for tests and tools that need the JSON.

Why a child process: chalice's packager imports app.py and copies the stage's environment variables
(here CDK tokens) into os.environ, and jsii keeps a node process for the interpreter's lifetime;
neither may leak into a test session. Why `app_without_requirements`: `chalice package` builds the
Lambda layer from requirements.txt by downloading Linux wheels, which the template does not depend
on; a copy of the app with an empty requirements.txt synthesizes the same resources offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
APP_SCRIPT = REPO / "infra" / "app.py"

# What synthesis needs so that nothing can reach an account: fake credentials, a region for chalice,
# no instance-metadata lookups. Values already set by the caller win (e.g. a region).
OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "offline",
    "AWS_SECRET_ACCESS_KEY": "offline",
    "AWS_SESSION_TOKEN": "offline",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    # jsii warns loudly about the node version it runs on; the warning is not ours to act on here.
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}


def app_without_requirements(destination: Path) -> Path:
    """Copy what `chalice package` reads (app.py, chalicelib/, .chalice/config.json) with no requirements."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "app.py", destination)
    shutil.copytree(REPO / "chalicelib", destination / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (destination / ".chalice").mkdir(exist_ok=True)
    shutil.copy(REPO / ".chalice" / "config.json", destination / ".chalice")
    (destination / "requirements.txt").write_text("")
    return destination


def synthesize(
    outdir: Path,
    *,
    stage: str,
    source_dir: Path = REPO,
    alarm_email: str | None = None,
    timeout_s: float = 300,
) -> dict[str, Any]:
    """Run infra/app.py for `stage` into `outdir` and return the stack's template.

    No CDK_DEFAULT_ACCOUNT/REGION are passed, so the template is environment-agnostic, as the cdk
    CLI would produce without credentials.
    """
    context: dict[str, str] = {"stage": stage, "source_dir": str(source_dir)}
    if alarm_email:
        context["alarm_email"] = alarm_email
    env = {**OFFLINE_ENV, **{k: v for k, v in os.environ.items() if not k.startswith("CDK_")}}
    env.update({"CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_EC2_METADATA_DISABLED"):
        env[name] = OFFLINE_ENV[name]  # never the caller's real credentials
    env.pop("AWS_PROFILE", None)
    result = subprocess.run(  # noqa: S603 (our interpreter running our script)
        [sys.executable, str(APP_SCRIPT)],
        cwd=REPO / "infra",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthesis of stage {stage} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads((outdir / f"{stage}.template.json").read_text())
