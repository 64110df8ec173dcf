"""Contract tier: one store suite, run against the in-memory fake and against DynamoDB on moto."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.adapters.memory import MemoryControlStore


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest):
    if request.param == "memory":
        yield MemoryControlStore()
        return
    aws = request.getfixturevalue("aws")
    import boto3

    from chalicelib.adapters.dynamo.control import DynamoControlStore

    yield DynamoControlStore(boto3.client("dynamodb"), aws["FASTHOOK_CONTROL_TABLE"])


@pytest.fixture(params=["memory", "dynamodb"])
def records(request: pytest.FixtureRequest):
    """A RecordStore: the in-memory fake, then DynamoDB on moto with the records table from infra/."""
    from chalicelib.adapters.memory import MemoryRecordStore

    if request.param == "memory":
        yield MemoryRecordStore()
        return
    aws = request.getfixturevalue("aws")
    import boto3

    from chalicelib.adapters.dynamo.records import DynamoRecordStore

    yield DynamoRecordStore(AtomicCalls(boto3.client("dynamodb")), aws["FASTHOOK_RECORDS_TABLE"])


class AtomicCalls:
    """A boto3 client whose calls run one at a time, as each DynamoDB request is atomic in AWS.

    moto evaluates a ConditionExpression and then applies the write without a lock, so two threads can
    both pass one condition; real DynamoDB never lets that happen. Serializing single calls restores
    exactly that guarantee and no more: a read-then-conditional-write by the adapter still interleaves
    with other threads between its calls, which is what the concurrency tests exercise.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@pytest.fixture()
def payloads(aws):
    import boto3

    from chalicelib.adapters.s3_payloads import S3PayloadStore

    yield S3PayloadStore(boto3.client("s3"), aws["FASTHOOK_PAYLOAD_BUCKET"])


@pytest.fixture()
def sqs(aws):
    """A moto SQS client and the queue URLs provisioned from infra/."""
    import boto3

    yield boto3.client("sqs"), aws["FASTHOOK_ROUTE_QUEUE_URL"], aws["FASTHOOK_DELIVER_QUEUE_URL"]
