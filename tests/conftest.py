"""Shared fixtures: AWS credentials that can never reach a real account, and a fresh FastHook per test."""

from __future__ import annotations

import os

import pytest

# No test may talk to real AWS: fake credentials and a region before anything builds a client.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture()
def aws():
    """moto's in-process AWS with every FastHook resource created from infra/."""
    import boto3
    from moto import mock_aws

    from local.provision import provision

    with mock_aws():
        env = provision(
            stage="test",
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            s3=boto3.client("s3"),
            region="us-east-1",
        )
        yield env
