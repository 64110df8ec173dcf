"""Cold start of each deployed Lambda, and the size of what `make package` ships.

A cold Lambda container imports the module its handler names, then runs the first invocation. Both
are measured in fresh interpreters with bytecode writing off (Lambda's /var/task is read-only, so
nothing is compiled ahead unless it ships .pyc files): `import_ms` is the handler's import alone, the
part a function's own code decides; `first_client_ms` adds what the first invocation of ingest pays
before its first AWS call (boto3 and the clients wiring builds), which every Python Lambda that calls
AWS pays and which the import deliberately leaves out.

    python -m bench.coldstart            # print the table; --write adds bench/results/coldstart-*.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
PACKAGE_DIR = ROOT / "build" / "package"
IMPORT_GOAL_MS = 150.0
APP_ZIP_GOAL_MB = 5.0

# What each function's handler string imports when it starts (infra/stack.py points ingest at its own
# module; the others run app.py, as chalice generates them).
HANDLERS = {
    "ingest": "chalicelib.entrypoints.ingress",
    "api_handler (app.py)": "app",
}

_PROBE_IMPORT = "import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
_PROBE_CLIENTS = (
    "import os, time; t = time.perf_counter(); import {module}; "
    "from chalicelib import wiring; c = wiring.container(); c._aws('dynamodb'); c._aws('sqs'); "
    "print((time.perf_counter() - t) * 1000)"
)


def _run(code: str) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    env.setdefault("AWS_ACCESS_KEY_ID", "offline")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "offline")
    command = [sys.executable, "-c", code]  # our own probe, run by this interpreter
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)  # noqa: S603
    return float(out.stdout.strip().splitlines()[-1])


def _median(code: str, runs: int) -> float:
    return round(statistics.median(_run(code) for _ in range(runs)), 1)


def measure_imports(runs: int = 7) -> dict[str, Any]:
    functions = {name: {"import_ms": _median(_PROBE_IMPORT.format(module=m), runs)} for name, m in HANDLERS.items()}
    functions["ingest"]["first_client_ms"] = _median(_PROBE_CLIENTS.format(module=HANDLERS["ingest"]), runs)
    return {
        "runs": runs,
        "functions": functions,
        "goal_ms": IMPORT_GOAL_MS,
        "met": functions["ingest"]["import_ms"] < IMPORT_GOAL_MS,
    }


def measure_package(package_dir: Path = PACKAGE_DIR) -> dict[str, Any] | None:
    """Zip sizes of the last `make package` (None when it has not run): app code and dependency layer."""
    app, layer = package_dir / "deployment.zip", package_dir / "layer-deployment.zip"
    if not app.exists():
        return None

    def mb(path: Path) -> float | None:
        return round(path.stat().st_size / 1e6, 2) if path.exists() else None

    with zipfile.ZipFile(app) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return {
        "app_zip_mb": mb(app),
        "app_unzipped_mb": round(unzipped / 1e6, 2),
        "layer_zip_mb": mb(layer),
        "goal_app_zip_mb": APP_ZIP_GOAL_MB,
        "met": (mb(app) or 0) < APP_ZIP_GOAL_MB,
        "note": "every function ships the same app zip and layer (chalice packages one deployment)",
    }


def markdown(result: dict[str, Any]) -> str:
    lines = ["| function | import, ms (median) | + boto3 clients, ms |", "|---|---:|---:|"]
    for name, figures in result["imports"]["functions"].items():
        lines.append(f"| {name} | {figures['import_ms']} | {figures.get('first_client_ms', '')} |")
    verdict = "met" if result["imports"]["met"] else "NOT met"
    lines.append(f"\nGoal: ingest import < {IMPORT_GOAL_MS:.0f} ms: {verdict}.")
    package = result.get("package")
    if package:
        lines.append(
            f"Package: app code {package['app_zip_mb']} MB zipped ({package['app_unzipped_mb']} MB unzipped), "
            f"dependency layer {package['layer_zip_mb']} MB zipped; goal app < {APP_ZIP_GOAL_MB:.0f} MB: "
            f"{'met' if package['met'] else 'NOT met'}."
        )
    else:
        lines.append("Package: run `make package` first to measure the zips.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per figure")
    parser.add_argument("--write", action="store_true", help="also write bench/results/coldstart-<time>.json")
    args = parser.parse_args(argv)
    result = {
        "bench": "coldstart",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "imports": measure_imports(args.runs),
        "package": measure_package(),
    }
    print(markdown(result))
    if args.write:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"coldstart-{result['started_at'].replace('-', '').replace(':', '')}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
