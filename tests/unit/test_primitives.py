"""Ids, time expressions and cursors: the small pieces every API response depends on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.errors import InvalidParameterError, NotFoundError
from chalicelib.domain.ids import Prefix, is_id, new_id, parse_id
from chalicelib.domain.paging import paginate
from chalicelib.domain.timefmt import iso, parse_time

NOW = datetime(2026, 4, 17, 12, 0, 0, tzinfo=UTC)


def test_ids_carry_their_prefix_and_sort_in_creation_order():
    # When
    ids = [new_id(Prefix.EVENT) for _ in range(1000)]
    # Then
    assert all(is_id(i, Prefix.EVENT) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000


@pytest.mark.parametrize(
    "value",
    [
        "",
        "src",
        "src_",
        "evt_01M8547MZCKAJCA8VS2MAZA7PF",
        "src_01m8547mzckajca8vs2maza7pf",
        "src_01M8547MZCKAJCA8VS2MAZA7P",
        "src_01M8547MZCKAJCA8VS2MAZA7PFX",
        None,
        7,
    ],
)
def test_anything_but_a_well_formed_id_of_the_right_prefix_is_not_found(value):
    with pytest.raises(NotFoundError):
        parse_id(value, Prefix.SOURCE, "Source")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-30s", datetime(2026, 4, 17, 11, 59, 30, tzinfo=UTC)),
        ("now-15m", datetime(2026, 4, 17, 11, 45, tzinfo=UTC)),
        ("now-1h", datetime(2026, 4, 17, 11, 0, tzinfo=UTC)),
        ("now-7d", datetime(2026, 4, 10, 12, 0, tzinfo=UTC)),
        ("2026-04-17T00:00:00.000Z", datetime(2026, 4, 17, tzinfo=UTC)),
        ("2026-04-17T02:00:00+02:00", datetime(2026, 4, 17, tzinfo=UTC)),
        ("2026-04-17", datetime(2026, 4, 17, tzinfo=UTC)),
    ],
)
def test_time_expressions_are_read_as_iso_or_relative(text, expected):
    assert parse_time(text, now=NOW, name="from") == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "now-1y", "now-", "2026-13-01", "now-99999999999d", "now-999999999w", ""]
)
def test_a_bad_time_expression_is_a_400_naming_the_parameter(text):
    with pytest.raises(InvalidParameterError) as caught:
        parse_time(text, now=NOW, name="from")
    assert "from" in caught.value.message


def test_timestamps_are_utc_with_milliseconds():
    assert iso(datetime(2026, 4, 17, 1, 2, 3, 456789, tzinfo=UTC)) == "2026-04-17T01:02:03.456Z"


def test_a_page_boundary_stays_put_when_items_are_added_before_it():
    # Given
    items = [{"id": f"src_{i:02d}", "created_at": f"2026-04-17T00:00:{i:02d}.000Z"} for i in range(6)]
    first, pagination = paginate(items, order_by="created_at", direction="asc", limit=3, cursor=None)
    # When
    items.insert(0, {"id": "src_new", "created_at": "2026-04-16T00:00:00.000Z"})
    second, _ = paginate(items, order_by="created_at", direction="asc", limit=3, cursor=pagination["next"])
    # Then
    assert [i["id"] for i in first] == ["src_00", "src_01", "src_02"]
    assert [i["id"] for i in second] == ["src_03", "src_04", "src_05"]


def test_the_queue_names_the_workers_subscribe_to_are_the_ones_infra_creates():
    from chalicelib.settings import Settings
    from infra.resources import DELIVER, ROUTE, physical_name

    settings = Settings(stage="prod")
    assert settings.queue_name("route") == physical_name("prod", ROUTE.name)
    assert settings.queue_name("deliver") == physical_name("prod", DELIVER.name)
