"""Composition root: the one module that knows both the ports and their adapters.

Adapters are built lazily, once per process (per Lambda container), on first use; nothing here runs
at import time. Tests install their own Container with `use()` and drop it with `reset()`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from chalicelib.adapters.clock import SystemClock
from chalicelib.domain.identity import IdentityVerifier
from chalicelib.ports import (
    AccountStore,
    BulkRunner,
    BulkStore,
    Clock,
    ExecutionStore,
    PayloadStore,
    Queues,
    RecordStore,
    ResourceStore,
    Sender,
    Transformer,
)
from chalicelib.settings import Settings, get_settings


@dataclass
class Container:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    overrides: dict[str, Any] = field(default_factory=dict)

    def _aws(self, service: str) -> Any:
        from chalicelib.adapters.dynamo.client import make_client

        return make_client(
            service, region=self.settings.region, endpoint=self.settings.aws_endpoint, faults=self.settings.faults
        )

    @cached_property
    def _control(self) -> Any:
        if "control" in self.overrides:
            return self.overrides["control"]
        from chalicelib.adapters.dynamo.control import DynamoControlStore

        return DynamoControlStore(self._aws("dynamodb"), self.settings.control_table)

    @property
    def resources(self) -> ResourceStore:
        return self._control

    @property
    def accounts(self) -> AccountStore:
        return self._control

    @cached_property
    def records(self) -> RecordStore:
        if "records" in self.overrides:
            return self.overrides["records"]
        from chalicelib.adapters.dynamo.records import DynamoRecordStore

        return DynamoRecordStore(self._aws("dynamodb"), self.settings.records_table)

    @cached_property
    def executions(self) -> ExecutionStore:
        if "executions" in self.overrides:
            return self.overrides["executions"]
        from chalicelib.adapters.dynamo.executions import DynamoExecutionStore

        return DynamoExecutionStore(self._aws("dynamodb"), self.settings.records_table)

    @cached_property
    def bulk(self) -> BulkStore:
        if "bulk" in self.overrides:
            return self.overrides["bulk"]
        from chalicelib.adapters.dynamo.bulk import DynamoBulkStore

        return DynamoBulkStore(self._aws("dynamodb"), self.settings.records_table)

    @cached_property
    def bulk_runner(self) -> BulkRunner:
        if "bulk_runner" in self.overrides:
            return self.overrides["bulk_runner"]
        from chalicelib.adapters.stepfunctions import StepFunctionsBulkRunner

        return StepFunctionsBulkRunner(self._aws("stepfunctions"), self.settings.bulk_state_machine_arn)

    @cached_property
    def payloads(self) -> PayloadStore:
        if "payloads" in self.overrides:
            return self.overrides["payloads"]
        from chalicelib.adapters.s3_payloads import S3PayloadStore

        return S3PayloadStore(self._aws("s3"), self.settings.payload_bucket)

    @cached_property
    def queues(self) -> Queues:
        if "queues" in self.overrides:
            return self.overrides["queues"]
        from chalicelib.adapters.sqs_queues import SqsQueues

        return SqsQueues(self._aws("sqs"), self.settings.route_queue_url, self.settings.deliver_queue_url)

    @cached_property
    def sqs(self) -> Any:
        """A raw SQS client, for the sweeper's dead-letter draining."""
        return self._aws("sqs")

    @cached_property
    def sender(self) -> Sender:
        if "sender" in self.overrides:
            return self.overrides["sender"]
        from chalicelib.adapters.http_sender import HttpSender

        return HttpSender(allow_private=self.settings.allow_private_destinations)

    @cached_property
    def mock_sender(self) -> Sender:
        from chalicelib.adapters.mock_sender import MockSender

        return MockSender()

    @cached_property
    def transformer(self) -> Transformer:
        if "transformer" in self.overrides:
            return self.overrides["transformer"]
        from chalicelib.adapters.quickjs_engine import QuickJsTransformer

        return QuickJsTransformer()

    @cached_property
    def routing(self) -> Any:
        from chalicelib.flow.routing import RoutingCache

        return RoutingCache()

    @cached_property
    def identity(self) -> IdentityVerifier:
        if "identity" in self.overrides:
            return self.overrides["identity"]
        from chalicelib.adapters.google_tokens import GoogleIdTokenVerifier

        return GoogleIdTokenVerifier(self.settings.google_client_id, self.settings.google_jwks_url)


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container(settings=get_settings())
    return _container


def use(replacement: Container) -> None:
    global _container
    _container = replacement


def reset() -> None:
    global _container
    _container = None
    get_settings.cache_clear()
