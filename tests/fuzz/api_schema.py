"""The schemathesis schema of FastHook's control API, shared by the fuzz tests and their conftest.

It is built from the route declarations the server publishes its document from (a test holds the two
equal), so pytest can collect one test per operation before any server runs, and a route another
module declares tomorrow is fuzzed tomorrow.
"""

from __future__ import annotations

import functools
from typing import Any

import schemathesis


@functools.cache
def control_api_schema() -> Any:
    import app  # noqa: F401  (registers every blueprint, so every route is declared)
    from chalicelib.entrypoints import openapi

    return schemathesis.openapi.from_dict(openapi.document())
