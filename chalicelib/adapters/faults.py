"""Throttling faults injected into FastHook's own DynamoDB and SQS calls, for the fault run (`make chaos`).

FastHook promises that nothing accepted is lost when AWS pushes back. To show it, the adapters' clients
can be told (setting FASTHOOK_FAULTS, off by default) to answer a share of calls with the throttling
errors AWS sends: DynamoDB's ProvisionedThroughputExceededException and SQS's RequestThrottled.

    FASTHOOK_FAULTS="dynamodb_throttle=0.05,sqs_throttle=0.05,dynamodb_throttle_persistent=0.002,seed=7"

- `<service>_throttle`: the share of HTTP attempts answered with a throttle. botocore's retry handler
  sees a real throttling response (parsed from the wire format, code and status as AWS sends them),
  backs off and tries again, so almost all of these are absorbed by the SDK: what they cost is the
  backoff (and the retry quota of botocore's standard mode), as in AWS.
- `<service>_throttle_persistent`: the share of calls whose every attempt is throttled. These outlast
  botocore's retries and reach FastHook as ClientError, which is the case the pipeline must survive
  (a failed record in a batch, a 5xx to the provider, a message SQS hands out again).

Why `before-send`: handlers there run once per HTTP attempt, after the request is signed (and after
any client-side rate limiter), and whatever response they return is treated exactly as one
from the wire (parsed, then judged by the `needs-retry` handlers). Raising from `before-call` instead
would skip botocore's retries altogether (every injected fault would reach FastHook), and changing
the parsed response in `after-call` would come after the retry decision. Keys `dynamodb` and `sqs`
name services; calls to other services (S3) are never touched.

Only `install` is called from the adapters, and only when the setting is not empty: with faults off,
clients carry no extra handler at all.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from botocore.awsrequest import AWSResponse

# What AWS answers when it throttles: status, error code, and the wire format of each service's protocol.
THROTTLES: Final[Mapping[str, tuple[int, str, dict[str, str]]]] = {
    "dynamodb": (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        {"Content-Type": "application/x-amz-json-1.0"},
    ),
    # SQS speaks JSON with query-compatible error codes: botocore takes the code from this header.
    "sqs": (
        400,
        "com.amazonaws.sqs#RequestThrottled",
        {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": "RequestThrottled;Sender"},
    ),
}
_KINDS: Final = ("throttle", "throttle_persistent")


class FaultSpecError(ValueError):
    """FASTHOOK_FAULTS is not a list of `<service>_<kind>=<share>` items; the message names the item."""


@dataclass
class FaultPlan:
    """Shares per service and kind, a seeded die, a switch, and a count of what was injected.

    One plan per spec string in a process (`plan_for`), shared by every client built with it, so a
    fault run can pause injection (`pause`) and read the counts (`injected`) in one place.
    """

    shares: dict[tuple[str, str], float]
    seed: int | None = None
    active: bool = True
    injected: Counter[str] = field(default_factory=Counter)  # "dynamodb.PutItem throttle" -> count
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _dice: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._dice = random.Random(self.seed)  # noqa: S311  (seeded dice for repeatable runs, not secrets)

    def share(self, service: str, kind: str) -> float:
        return self.shares.get((service, kind), 0.0)

    def roll(self, share: float) -> bool:
        if share <= 0 or not self.active:
            return False
        with self._lock:
            return self._dice.random() < share

    def count(self, what: str) -> None:
        with self._lock:
            self.injected[what] += 1

    def pause(self) -> None:
        self.active = False

    def resume(self) -> None:
        self.active = True

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self.injected)


def parse_spec(spec: str) -> FaultPlan:
    """`dynamodb_throttle=0.05,sqs_throttle_persistent=0.001,seed=7` -> FaultPlan; FaultSpecError if malformed."""
    shares: dict[tuple[str, str], float] = {}
    seed: int | None = None
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep:
            raise FaultSpecError(f"FASTHOOK_FAULTS item {item!r} has no '=<share>'")
        if name == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise FaultSpecError(f"FASTHOOK_FAULTS seed must be an integer, got {value!r}") from None
            continue
        service, _, kind = name.partition("_")
        if service not in THROTTLES or kind not in _KINDS:
            known = ", ".join(f"{s}_{k}" for s in THROTTLES for k in _KINDS)
            raise FaultSpecError(f"FASTHOOK_FAULTS item {name!r} is unknown; known: {known}, seed")
        try:
            share = float(value)
        except ValueError:
            raise FaultSpecError(f"FASTHOOK_FAULTS {name} must be a number, got {value!r}") from None
        if not 0.0 <= share <= 1.0:
            raise FaultSpecError(f"FASTHOOK_FAULTS {name} must be between 0 and 1, got {share}")
        shares[(service, kind)] = share
    return FaultPlan(shares, seed)


@lru_cache(maxsize=8)
def plan_for(spec: str) -> FaultPlan:
    """The process's one plan for this spec: every client built with the same setting shares it."""
    return parse_spec(spec)


class _Body:
    """The `raw` of an AWSResponse: botocore reads a non-streaming body through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class _Injector:
    """The handlers one client carries: decide per call (`before-call`), answer per attempt (`before-send`)."""

    def __init__(self, service: str, plan: FaultPlan) -> None:
        self.service, self.plan = service, plan
        # A call runs in the thread that made it, so "this call is throttled to the end" is per thread.
        self._doomed = threading.local()

    def before_call(self, model: Any, **_: Any) -> None:
        self._doomed.call = self.plan.roll(self.plan.share(self.service, "throttle_persistent"))
        if self._doomed.call:
            self.plan.count(f"{self.service}.{model.name} throttle_persistent")  # once per call

    def before_send(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        persistent = getattr(self._doomed, "call", False)
        if not persistent and not self.plan.roll(self.plan.share(self.service, "throttle")):
            return None
        if not persistent:
            self.plan.count(f"{self.service}.{event_name.rsplit('.', 1)[-1]} throttle")  # per attempt
        status, code, headers = THROTTLES[self.service]
        body = json.dumps({"__type": code, "message": "Rate exceeded (injected by FASTHOOK_FAULTS)"}).encode()
        return AWSResponse(
            request.url,
            status,
            {**headers, "x-amzn-RequestId": uuid.uuid4().hex},
            _Body(body),  # type: ignore[arg-type]
        )


def install(client: Any, service: str, spec: str) -> None:
    """Register the fault handlers of `spec` on one client; a service the spec does not name is left alone."""
    plan = plan_for(spec)
    if not any(share for (named, _), share in plan.shares.items() if named == service):
        return
    injector = _Injector(service, plan)
    client.meta.events.register("before-call", injector.before_call)
    client.meta.events.register("before-send", injector.before_send)
