"""The bulk retry bench in miniature: it runs end to end and reports every figure it promises.

Figures are measured by `python -m bench.run --bulk-only` on a quiet machine, never asserted here.
"""

from __future__ import annotations

from bench.bulk import measure_bulk
from bench.report import bulk_markdown


def test_the_bulk_bench_retries_every_event_and_reports_its_transitions():
    # Given / When a bulk retry of a dozen failed events is measured on the embedded stack
    result = measure_bulk(12, timeout_s=120)

    # Then every event was retried and delivered, and the report holds each promised figure
    assert result["operation"] == {"status": "completed", "total_count": 12, "queued_count": 12, "done_count": 12}
    assert result["execution_status"] == "SUCCEEDED"
    assert result["states_entered"][0] == "TaskStateEntered" and result["states_entered"][-1] == "SucceedStateEntered"
    assert result["state_transitions"] == len(result["states_entered"]) and result["task_invocations"] >= 2
    assert result["transitions_per_1000_events"] == round(result["state_transitions"] * 1000 / 12, 2)
    markdown = bulk_markdown(result)
    assert "transitions per 1,000 events" in markdown and "wall time to every retry delivered" in markdown
