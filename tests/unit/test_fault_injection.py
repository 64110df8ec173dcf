"""FASTHOOK_FAULTS: throttles answered inside botocore, before any byte leaves the process.

Clients point at a port nobody listens on; every call is answered by a `before-send` handler, either
the injected throttle or, registered after it, a stand-in for the wire that answers 200. So these
tests need no AWS and no moto, and show what FastHook's code would see: a throttle botocore retried
away, or a ClientError with AWS's code when every attempt was throttled.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.adapters import faults
from chalicelib.adapters.dynamo.client import make_client

NOWHERE = "http://127.0.0.1:9"


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _wire_answers_ok(request: Any, **_: Any) -> AWSResponse:
    """The stand-in for DynamoDB on the wire: every request that gets this far succeeds."""
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(b"{}"))  # type: ignore[arg-type]


def client(service: str, spec: str, *, attempts: int) -> Any:
    # Standard retries with few attempts keep the backoff (up to 2^n s with jitter) short.
    made = boto3.session.Session().client(
        service,
        region_name="us-east-1",
        endpoint_url=NOWHERE,
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=1, read_timeout=1),
    )
    faults.install(made, service, spec)
    made.meta.events.register("before-send", _wire_answers_ok)  # after the faults: they answer first
    return made


def test_a_throttled_attempt_is_retried_by_botocore_and_the_call_succeeds():
    # Given a DynamoDB client whose attempts are throttled 30% of the time (seeded)
    spec = "dynamodb_throttle=0.3,seed=3"
    faults.plan_for(spec).injected.clear()
    dynamodb = client("dynamodb", spec, attempts=8)
    # When FastHook's code makes ten calls
    answers = [dynamodb.get_item(TableName="t", Key={"pk": {"S": f"k{n}"}}) for n in range(10)]
    # Then every call succeeded, some only after botocore retried an injected throttle, and the plan counted them
    retried = sum(answer["ResponseMetadata"]["RetryAttempts"] for answer in answers)
    injected = faults.plan_for(spec).totals()
    assert retried > 0
    assert injected == {"dynamodb.GetItem throttle": retried}


def test_a_call_throttled_on_every_attempt_reaches_the_caller_as_dynamodbs_throttling_error():
    # Given a DynamoDB client whose every call is throttled on every attempt
    dynamodb = client("dynamodb", "dynamodb_throttle_persistent=1.0", attempts=2)
    # When a call is made
    with pytest.raises(ClientError) as caught:
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "k"}})
    # Then botocore tried twice and gave up with the code and status DynamoDB uses
    error = caught.value.response
    assert error["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["ResponseMetadata"]["RetryAttempts"]) == (400, 1)


def test_an_sqs_call_throttled_on_every_attempt_carries_sqss_request_throttled_code():
    # Given an SQS client whose every call is throttled
    sqs = client("sqs", "sqs_throttle_persistent=1.0", attempts=1)
    # When a message is sent
    with pytest.raises(ClientError) as caught:
        sqs.send_message(QueueUrl=f"{NOWHERE}/123456789012/q", MessageBody=json.dumps({"v": 1}))
    # Then the error is SQS's throttling error, as botocore parses it from the JSON protocol
    assert caught.value.response["Error"]["Code"] == "RequestThrottled"


def test_a_paused_plan_lets_every_call_through():
    # Given a client whose every call would be throttled, and its plan paused (as the fault run does when faults stop)
    spec = "dynamodb_throttle_persistent=1.0,dynamodb_throttle=1.0,seed=1"
    dynamodb = client("dynamodb", spec, attempts=1)
    faults.plan_for(spec).pause()
    try:
        # When a call is made
        answer = dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})
    finally:
        faults.plan_for(spec).resume()
    # Then it went through untouched
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0


def test_without_the_setting_the_adapters_clients_are_not_touched():
    # Given the adapters' client factory with faults off (the default)
    dynamodb = make_client("dynamodb", region="us-east-1", endpoint=NOWHERE)
    dynamodb.meta.events.register("before-send", _wire_answers_ok)
    # When a call is made, then nothing was injected and it succeeded on the first attempt
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "k"}})["ResponseMetadata"]["RetryAttempts"] == 0


def test_services_the_spec_does_not_name_are_left_alone():
    # Given an SQS client built with a spec that throttles every DynamoDB attempt
    sqs = make_client("sqs", region="us-east-1", endpoint=NOWHERE, faults="dynamodb_throttle_persistent=1.0")
    sqs.meta.events.register("before-send", _wire_answers_ok)
    # When SQS is called, then it is not throttled
    assert sqs.list_queues()["ResponseMetadata"]["RetryAttempts"] == 0


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("dynamodb_throttle", "has no '=<share>'"),
        ("s3_throttle=0.1", "'s3_throttle' is unknown"),
        ("sqs_throttle=lots", "sqs_throttle must be a number"),
        ("sqs_throttle=1.5", "between 0 and 1"),
        ("seed=x", "seed must be an integer"),
    ],
)
def test_a_malformed_fault_spec_is_refused_with_the_item_named(spec, named):
    # When the spec is parsed, then it is refused and the message names the bad item
    with pytest.raises(faults.FaultSpecError, match=named):
        faults.parse_spec(spec)
