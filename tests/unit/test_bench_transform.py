"""bench/transform.py: the transformation line of `make bench` reports what it measured (figures live in bench/)."""

from __future__ import annotations

from bench.transform import GOAL_US, measure_transform


def test_the_transform_bench_reports_median_and_p99_per_call_against_the_goal():
    # When
    result = measure_transform(calls=20, warmup=2)
    # Then
    assert result["calls"] == 20
    assert 0 < result["p50_us"] <= result["p99_us"]
    assert result["goal_us"] == GOAL_US
    assert result["met"] == (result["p50_us"] < GOAL_US)
