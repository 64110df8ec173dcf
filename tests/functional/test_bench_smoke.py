"""`make bench` in miniature: the bench runs end to end and reports every figure it promises.

Structure and invariants only (nothing lost, every phase and cost component present); speed goals are
measured by bench/ on a quiet machine, never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.prices import PRICES
from bench.report import stage_profile
from bench.run import Params, run, write

PER_WEBHOOK_COMPONENTS = (
    "lambda_requests",
    "lambda_duration",
    "dynamodb_writes",
    "dynamodb_reads",
    "sqs_requests",
    "cloudwatch_logs",
)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run(
        Params(
            count=20,
            rate=100.0,
            threads=4,
            floor_count=10,
            serial_count=5,
            drain_timeout_s=120.0,
            steady_rate=10.0,
            steady_count=10,
        )
    )


@pytest.mark.parametrize(("phase", "count"), [("steady", 10), ("ingest", 20)])
def test_every_accepted_webhook_reaches_the_receiver_once(result: dict[str, Any], phase: str, count: int) -> None:
    # Given / When: a small load through the embedded stack, at the steady rate and then flat out
    load = result["phases"][phase]
    # Then
    assert load["sent"] == count
    assert load["accepted"] == load["delivered"] == count
    assert load["lost"] == 0
    assert load["rejected"] == 0
    assert load["duplicates"] == 0


def test_every_phase_reports_its_latencies(result: dict[str, Any]) -> None:
    phases = result["phases"]
    samples = {
        "floor": phases["floor"]["total_ms"],
        "ingest_serial": phases["ingest_serial"]["ack_ms"],
        "steady_ack": phases["steady"]["ack_ms"],
        "steady_to_receiver": phases["steady"]["e2e_ms"],
        "ingest_ack": phases["ingest"]["ack_ms"],
        "ingest_to_receiver": phases["ingest"]["e2e_ms"],
    }
    for name, stats in samples.items():
        assert stats["n"] > 0, name
        assert 0 < stats["p50"] <= stats["p99"] <= stats["max"], name
    assert phases["ingest"]["throughput_per_s"] > 0
    assert result["targets"]["ingest_p50_over_floor_p50"]["value"] > 0


def test_aws_calls_are_counted_by_operation_and_stage(result: dict[str, Any]) -> None:
    aws = result["aws"]
    assert aws["calls_per_webhook"]["dynamodb.PutItem"] > 0
    assert aws["calls_per_webhook"]["sqs.SendMessage"] > 0
    assert {"ingest", "route", "deliver"} <= set(aws["calls_per_webhook_by_stage"])
    assert aws["calls_per_webhook_by_stage"]["ingest"]["sqs.SendMessage"] == 1.0
    assert aws["units_per_webhook"]["errors"] == 0


def test_lambda_invocations_follow_the_queue_receives(result: dict[str, Any]) -> None:
    lam = result["lambda"]
    # One ingest invocation per webhook; one route/deliver invocation per receive that returned messages,
    # which is exactly how often the pollers called the handlers.
    # The cost is read in the steady phase; the saturated phase's figures are reported beside it.
    assert lam["invocations"]["ingest"] == result["phases"]["steady"]["sent"]
    assert result["saturated"]["lambda"]["invocations"]["ingest"] == result["phases"]["ingest"]["sent"]
    for function in ("route", "deliver"):
        assert lam["invocations"][function] == lam["handler_calls_measured"][function] > 0


def test_cost_has_a_positive_line_per_component_and_a_total(result: dict[str, Any]) -> None:
    components = {c["component"]: c for c in result["cost"]["components"]}
    for name in PER_WEBHOOK_COMPONENTS:
        assert components[name]["usd_per_million"] > 0, name
    assert {"s3_puts", "s3_gets", "step_functions"} <= set(components)
    assert result["cost"]["total_usd_per_million"] == pytest.approx(
        sum(c["usd_per_million"] for c in components.values()), abs=1e-3
    )
    assert set(result["prices"]) == set(PRICES)
    assert all(price["source"].startswith("https://") for price in result["prices"].values())


def test_results_are_written_as_json_and_a_markdown_table(result: dict[str, Any], tmp_path: Path) -> None:
    # When
    json_path, md_path = write(result, tmp_path)
    # Then
    assert json.loads(json_path.read_text())["phases"]["ingest"]["lost"] == 0
    assert json_path.name.startswith("pipeline-")
    table = md_path.read_text()
    assert "| **total**" in table
    assert "ingest to receiver" in table


def test_the_bill_models_the_prod_stage_memory_and_log_level(result: dict[str, Any]) -> None:
    profile = result["params"]["profile"]
    # The memory sizes and log level come from .chalice/config.json's prod stage
    assert profile == stage_profile("prod")
    assert result["lambda"]["memory_mb"] == profile["memory_mb"]
    # At WARNING the handlers write no line for a webhook that went through untroubled
    app_bytes = result["lambda"]["log_bytes_per_webhook"]["app"]
    assert (app_bytes == 0) if profile["log_level"] == "WARNING" else (app_bytes > 0)


def test_stage_profile_takes_a_function_setting_over_the_stage_and_the_top_level(tmp_path: Path) -> None:
    # Given a config with memory at three levels
    config = {
        "lambda_memory_size": 512,
        "environment_variables": {"FASTHOOK_LOG_LEVEL": "INFO"},
        "stages": {
            "prod": {
                "lambda_memory_size": 1024,
                "environment_variables": {"FASTHOOK_LOG_LEVEL": "WARNING"},
                "lambda_functions": {"deliver_worker": {"lambda_memory_size": 256}},
            },
            "dev": {},
        },
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    # When / Then
    prod, dev = stage_profile("prod", path), stage_profile("dev", path)
    assert prod["memory_mb"] == {"ingest": 1024, "route": 1024, "deliver": 256, "sweeper": 1024}
    assert prod["log_level"] == "WARNING"
    assert dev["memory_mb"] == {"ingest": 512, "route": 512, "deliver": 512, "sweeper": 512}
    assert dev["log_level"] == "INFO"
