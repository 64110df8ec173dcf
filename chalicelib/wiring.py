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
from chalicelib.ports import AccountStore, Clock, ResourceStore
from chalicelib.settings import Settings, get_settings


@dataclass
class Container:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    overrides: dict[str, Any] = field(default_factory=dict)

    def _aws(self, service: str) -> Any:
        from chalicelib.adapters.dynamo.client import make_client

        return make_client(service, region=self.settings.region, endpoint=self.settings.aws_endpoint)

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
