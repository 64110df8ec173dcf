"""The per-call cost of a small transformation on a warm quickjs-ng context (issue #5's goal: under 0.1 ms).

The route worker keeps compiled contexts warm per thread (adapters/quickjs_engine.py), so after a
worker's first run of a transformation each further run pays only the call: handing the request in,
running the handler, reading the request back. This measures exactly that on this thread, after a
warm-up, with the same Transformer the worker uses. `step` also times what the route step adds
around the engine call (building the input, checking what came back), for context.

Run alone: `python -m bench.transform` (prints JSON); `make bench` includes it in its report.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

SMALL = (
    "addHandler('transform', (request, context) => {"
    "  request.headers['x-order'] = String(request.body.id);"
    "  request.body.amount_cents = request.body.amount * 100;"
    "  return request;"
    "});"
)
GOAL_US = 100.0


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_transform(calls: int = 5000, warmup: int = 200) -> dict[str, Any]:
    """Median and p99 microseconds per call of a small transformation on a warm context."""
    from chalicelib.adapters.quickjs_engine import QuickJsTransformer
    from chalicelib.domain.transforms import read_transformed_request, transform_input

    engine = QuickJsTransformer()
    context = {
        "connection": {"id": "web_bench", "name": "bench"},
        "source": {"id": "src_bench", "name": "bench"},
        "destination": {"id": "des_bench", "name": "bench", "type": "HTTP"},
    }
    body = {"id": "ord_1", "amount": 12, "currency": "EUR", "customer": {"id": "cus_1", "email": "a@example.test"}}
    headers = {"content-type": "application/json", "user-agent": "bench", "x-request-id": "r-1"}

    def request() -> dict[str, Any]:
        return transform_input(method="POST", path="/orders", query="a=1", headers=headers, body=dict(body))

    for _ in range(warmup):
        engine.transform(code=SMALL, env={"RATE": "100"}, request=request(), context=context)

    engine_us: list[float] = []
    step_us: list[float] = []
    for _ in range(calls):
        given = request()
        started = time.perf_counter()
        returned = engine.transform(code=SMALL, env={"RATE": "100"}, request=given, context=context)
        engine_us.append((time.perf_counter() - started) * 1e6)
        started = time.perf_counter()
        read_transformed_request(
            engine.transform(code=SMALL, env={"RATE": "100"}, request=request(), context=context), original=given
        )
        step_us.append((time.perf_counter() - started) * 1e6)
    assert read_transformed_request(returned, original=given)["headers"]["x-order"] == "ord_1"
    p50 = round(statistics.median(engine_us), 1)
    return {
        "calls": calls,
        "p50_us": p50,
        "p99_us": round(_percentile(engine_us, 0.99), 1),
        "step_p50_us": round(statistics.median(step_us), 1),
        "goal_us": GOAL_US,
        "met": p50 < GOAL_US,
    }


if __name__ == "__main__":
    print(json.dumps(measure_transform(int(sys.argv[1]) if len(sys.argv) > 1 else 5000), indent=1))
