"""The execution store: the in-memory fake and DynamoDB on moto store, page and filter executions alike.

Each test runs against MemoryExecutionStore and DynamoExecutionStore (the `executions` fixture),
except the two about DynamoDB itself: the read bound of one list call, and that no read ever Scans.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.executions import new_execution
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.timefmt import iso
from chalicelib.ports import TimelineQuery

TEAM = new_id(Prefix.TEAM)
OTHER_TEAM = new_id(Prefix.TEAM)
TRANSFORMATION = new_id(Prefix.TRANSFORMATION)
CONNECTION = new_id(Prefix.CONNECTION)
START = datetime(2026, 4, 17, tzinfo=UTC)
NOW = START + timedelta(days=1)
EXPIRES = int((START + timedelta(days=30)).timestamp())
WHOLE_DAY = TimelineQuery(start=iso(START), end=iso(START + timedelta(seconds=86_399)), now=NOW)


@pytest.fixture(params=["memory", "dynamodb"])
def executions(request: pytest.FixtureRequest):
    from chalicelib.adapters.memory import MemoryExecutionStore

    if request.param == "memory":
        yield MemoryExecutionStore()
        return
    aws = request.getfixturevalue("aws")
    import boto3

    from chalicelib.adapters.dynamo.executions import DynamoExecutionStore

    yield DynamoExecutionStore(boto3.client("dynamodb"), aws["FASTHOOK_RECORDS_TABLE"])


def an_execution(
    second: int,
    *,
    levels: tuple[str, ...] = ("log",),
    team_id: str = TEAM,
    transformation_id: str = TRANSFORMATION,
    error: str | None = None,
    expires_at: int = EXPIRES,
) -> dict[str, Any]:
    request = {"id": new_id(Prefix.REQUEST), "team_id": team_id, "source_id": new_id(Prefix.SOURCE)}
    return new_execution(
        request=request,
        connection_id=CONNECTION,
        transformation_id=transformation_id,
        rule_index=0,
        output=None if error else {"method": "POST", "path": "/p", "query": "", "headers": {}, "body": {"n": 1.5}},
        error=error,
        logs=[{"level": level, "message": f"{level} line"} for level in levels],
        duration_ms=0.25,
        created_at=iso(START + timedelta(seconds=second)),
        expires_at=expires_at,
    )


def stored(executions, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for doc in docs:
        assert executions.put_execution(doc)
    return docs


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [doc["id"] for doc in docs]


def every_page(executions, query: TimelineQuery, **kw: Any) -> tuple[list[str], int]:
    seen: list[str] = []
    pages, after = 0, None
    while True:
        page = executions.query_executions(TEAM, TRANSFORMATION, replace(query, after=after), **kw)
        seen += ids(page.items)
        pages += 1
        if page.resume is None:
            return seen, pages
        after = page.resume


def test_a_stored_execution_reads_back_as_it_was_written(executions):
    # Given
    execution = an_execution(5, levels=("log", "warn"))
    # When
    first = executions.put_execution(execution)
    # Then
    assert first is True
    assert executions.get_execution(execution["id"]) == execution
    assert executions.get_execution(new_id(Prefix.EXECUTION)) is None


def test_a_second_write_of_the_same_execution_id_keeps_the_first(executions):
    # Given
    execution = stored(executions, [an_execution(5)])[0]
    # When
    again = executions.put_execution({**execution, "status": "FAILED", "error": "a replay"})
    # Then
    assert again is False
    assert executions.get_execution(execution["id"]) == execution


def test_a_transformations_executions_page_newest_first_without_gaps_or_duplicates(executions):
    # Given
    made = stored(executions, [an_execution(i) for i in range(5)])
    # When
    seen, pages = every_page(executions, replace(WHOLE_DAY, limit=2))
    oldest_first, _ = every_page(executions, replace(WHOLE_DAY, limit=2, ascending=True))
    # Then
    assert seen == ids(reversed(made))
    assert oldest_first == ids(made)
    assert pages == 3


def test_the_list_holds_only_that_transformations_executions_of_that_team(executions):
    # Given
    mine = stored(executions, [an_execution(1)])
    stored(
        executions,
        [an_execution(2, team_id=OTHER_TEAM), an_execution(3, transformation_id=new_id(Prefix.TRANSFORMATION))],
    )
    # When
    page = executions.query_executions(TEAM, TRANSFORMATION, WHOLE_DAY)
    # Then
    assert ids(page.items) == ids(mine)


def test_the_window_bounds_are_inclusive(executions):
    # Given
    made = stored(executions, [an_execution(i) for i in range(5)])
    # When
    page = executions.query_executions(
        TEAM, TRANSFORMATION, replace(WHOLE_DAY, start=made[1]["created_at"], end=made[3]["created_at"])
    )
    # Then
    assert ids(page.items) == ids(reversed(made[1:4]))


def test_the_log_level_filter_keeps_executions_with_a_line_of_any_given_level(executions):
    # Given
    made = stored(
        executions,
        [an_execution(0, levels=("log",)), an_execution(1, levels=("log", "warn")), an_execution(2, levels=("error",))],
    )
    made.append(stored(executions, [an_execution(3, levels=())])[0])
    # When
    warned = executions.query_executions(TEAM, TRANSFORMATION, WHOLE_DAY, log_levels=("warn",))
    serious = executions.query_executions(TEAM, TRANSFORMATION, WHOLE_DAY, log_levels=("warn", "error"))
    # Then
    assert ids(warned.items) == [made[1]["id"]]
    assert ids(serious.items) == [made[2]["id"], made[1]["id"]]


def test_an_expired_execution_is_never_listed(executions):
    # Given
    live = stored(executions, [an_execution(1)])
    stored(executions, [an_execution(2, expires_at=int(NOW.timestamp()))])
    # When
    page = executions.query_executions(TEAM, TRANSFORMATION, WHOLE_DAY)
    # Then
    assert ids(page.items) == ids(live)


# ---- DynamoDB only ---------------------------------------------------------------------------------


@pytest.fixture()
def dynamo(aws):
    """A boto3 DynamoDB client on moto, and an execution store that reads at most one page of two items per call."""
    import boto3

    from chalicelib.adapters.dynamo.executions import DynamoExecutionStore

    client = boto3.client("dynamodb")
    return client, DynamoExecutionStore(client, aws["FASTHOOK_RECORDS_TABLE"], pages=1, page_items=2)


def test_a_rare_log_level_answers_a_partial_page_with_a_resume_position_instead_of_reading_on(dynamo):
    # Given
    _, executions = dynamo
    made = stored(executions, [an_execution(i, levels=("error",) if i in (1, 7) else ("log",)) for i in range(9)])
    query = replace(WHOLE_DAY, limit=5)
    # When
    first = executions.query_executions(TEAM, TRANSFORMATION, query, log_levels=("error",))
    seen, pages = every_page(executions, query, log_levels=("error",))
    # Then
    assert len(first.items) < 5 and first.resume is not None
    assert seen == [made[7]["id"], made[1]["id"]]
    assert pages > 2


def test_no_read_of_the_execution_store_ever_scans(dynamo):
    # Given
    client, executions = dynamo
    operations: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: operations.append(model.name))
    made = stored(executions, [an_execution(i) for i in range(3)])
    # When
    executions.query_executions(TEAM, TRANSFORMATION, WHOLE_DAY, log_levels=("warn",))
    executions.query_executions(TEAM, TRANSFORMATION, replace(WHOLE_DAY, limit=1))
    executions.get_execution(made[0]["id"])
    # Then
    assert "Query" in operations
    assert "Scan" not in operations
