"""What metrics and team retention ask of the stores, on the in-memory fakes and on DynamoDB (moto) alike.

- `timeline_points`: every record a count counts, oldest first, with only the asked attributes.
- `lookup` of a source carries its team's retention, copied when the source is written, so ingest
  needs no second read.
"""

from __future__ import annotations

from datetime import timedelta

from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.statuses import EventStatus
from chalicelib.ports import TEAM_RETENTION_DAYS, TimelineQuery
from tests.contract.test_record_store import START, TEAM, a_request, an_event, an_ignored, at

NOW = START + timedelta(days=1)


def whole_day(**fields) -> TimelineQuery:
    return TimelineQuery(**{"start": at(0), "end": at(86_399), "now": NOW, **fields})


def test_points_are_every_counted_record_oldest_first_with_only_the_asked_attributes(records):
    # Given
    made = [a_request(ingested_at=at(i), status="rejected" if i % 2 else "accepted") for i in range(5)]
    for request in reversed(made):
        assert records.put_request(request)
    records.put_request(a_request(ingested_at=at(9), expires_at=int(START.timestamp())))  # expired
    query = whole_day(fields=(("status", ("accepted",)),), limit=1, ascending=False)
    # When
    points = records.timeline_points(TEAM, "REQ", query, ("ingested_at", "status"))
    # Then
    assert points == [{"ingested_at": at(i), "status": "accepted"} for i in (0, 2, 4)]
    assert len(points) == records.count_timeline(TEAM, "REQ", query)


def test_points_of_events_and_ignored_branches_come_from_their_own_timelines(records):
    # Given
    request = a_request()
    records.put_request(request)
    event = an_event(request, status=EventStatus.QUEUED, lease_until=at(99))
    records.put_event(event)
    records.put_ignored(an_ignored(request))
    # When
    events = records.timeline_points(TEAM, "EVT", whole_day(), ("created_at", "status", "lease_until"))
    ignored = records.timeline_points(TEAM, "IGN", whole_day(), ("created_at",))
    # Then
    assert events == [{"created_at": event["created_at"], "status": "QUEUED", "lease_until": at(99)}]
    assert len(ignored) == 1 and set(ignored[0]) == {"created_at"}


def test_points_read_with_queries_never_a_scan(aws):
    # Given
    import boto3

    from chalicelib.adapters.dynamo.records import DynamoRecordStore

    client = boto3.client("dynamodb")
    records = DynamoRecordStore(client, aws["FASTHOOK_RECORDS_TABLE"])
    for i in range(3):
        records.put_request(a_request(ingested_at=at(i)))
    operations: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: operations.append(model.name))
    # When
    points = records.timeline_points(TEAM, "REQ", whole_day(), ("ingested_at",))
    # Then
    assert len(points) == 3
    assert operations == ["Query"]


def test_a_looked_up_source_carries_its_teams_retention(store):
    # Given
    team = {"id": TEAM, "name": "Short memory", "created_at": at(0), "retention_days": 7}
    assert store.create_account("google#7", {"id": new_id(Prefix.USER), "name": "Ada", "version": 1}, team)
    source = {"id": new_id(Prefix.SOURCE), "name": "stripe", "version": 1}
    store.create(TEAM, "source", source, unique="stripe")
    # When
    team_id, found = store.lookup(source["id"])
    # Then
    assert team_id == TEAM and found[TEAM_RETENTION_DAYS] == 7
    assert TEAM_RETENTION_DAYS not in store.get(TEAM, "source", source["id"])


def test_a_source_of_a_team_without_a_retention_carries_none(store):
    # Given
    source = {"id": new_id(Prefix.SOURCE), "name": "github", "version": 1}
    store.create(TEAM, "source", source, unique="github")
    # When
    _, found = store.lookup(source["id"])
    # Then
    assert found == source
