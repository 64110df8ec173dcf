"""Contract tier: one store suite, run against the in-memory fake and against DynamoDB on moto."""

from __future__ import annotations

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
