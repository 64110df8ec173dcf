"""Fuzz tier: schemathesis against the local HTTP server, the way a client on the network meets FastHook.

One embedded stack and server serve the whole fuzz run (starting them costs seconds; every example
costs tens of milliseconds against moto). `make test` runs a few generated examples per operation;
`make fuzz` asks for many more and adds schemathesis's coverage phase (boundary and near-miss values
of every parameter and body field), which alone takes minutes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from local.server import LocalServer
from local.stack import EmbeddedStack

DEFAULT_EXAMPLES = 5


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help="Examples schemathesis generates per API operation (make fuzz raises it).",
    )
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="make fuzz: add the coverage phase (boundary values of every parameter) and fresh random examples.",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Runs before the test module builds its tests, so the settings reach every operation's test.
    from tests.fuzz.api_schema import control_api_schema

    long_run = config.getoption("--fuzz-long")
    schema = control_api_schema()
    # The short pass in `make test` sends the same examples every run, so it cannot flake; `make fuzz`
    # draws new ones each time to find what the short pass does not.
    # No example database: it would leave a .hypothesis/ folder in the work tree.
    schema.config.generation.update(
        max_examples=config.getoption("--fuzz-examples"), deterministic=not long_run, database="none"
    )
    schema.config.phases.update(phases=["examples", "fuzzing"] + (["coverage"] if long_run else []))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # schemathesis names each operation's test `test_x[GET /path]`, but pytest 9 builds node ids from
    # parametrize's callspec alone, so every operation would share one id (and one line in reports).
    for item in items:
        label = getattr(item, "operation_label", None)
        node_id = getattr(item, "_id", None)
        if label and node_id is not None and node_id.params is None:
            item._id = dataclasses.replace(node_id, params=label)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[LocalServer]:
    with LocalServer(0) as local, EmbeddedStack(http_port=local.port, stage="fuzz"):
        yield local
