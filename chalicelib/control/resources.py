"""What every control resource shares: lookup by id, listing with order and cursor, optimistic updates.

Sources, destinations, connections and transformations differ in their fields and side effects;
the mechanics of reading, listing and changing a stored document live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import AlreadyExistsError, ConcurrentUpdateError, NotFoundError
from chalicelib.domain.ids import Prefix, parse_id
from chalicelib.domain.paging import paginate
from chalicelib.domain.timefmt import iso
from chalicelib.ports import Clock, Doc, ResourceStore

UPDATE_TRIES = 3


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    prefix: Prefix
    unique: Callable[[Doc], str]

    def duplicate(self, doc: Doc, exc: AlreadyExistsError) -> AlreadyExistsError:
        """The store's conflict, reworded for a person; `data` stays the stored document for presenting."""
        where = f" on source {doc['source_id']}" if "source_id" in doc else ""
        return AlreadyExistsError(f"A {self.name} named {doc['name']!r} already exists{where}", data=exc.data)


SOURCE = Kind("source", "Source", Prefix.SOURCE, lambda d: d["name"])
DESTINATION = Kind("destination", "Destination", Prefix.DESTINATION, lambda d: d["name"])
CONNECTION = Kind("connection", "Connection", Prefix.CONNECTION, lambda d: f"{d['source_id']}/{d['name']}")
TRANSFORMATION = Kind("transformation", "Transformation", Prefix.TRANSFORMATION, lambda d: d["name"])


@dataclass(frozen=True)
class ListQuery:
    order_by: str = "created_at"
    direction: str = "desc"
    limit: int = 100
    cursor: str | None = None


def get_resource(store: ResourceStore, team_id: str, kind: Kind, resource_id: str) -> Doc:
    rid = parse_id(resource_id, kind.prefix, kind.label)
    doc = store.get(team_id, kind.name, rid)
    if doc is None:
        raise NotFoundError(f"{kind.label} {rid} not found")
    return doc


def list_resources(
    store: ResourceStore, team_id: str, kind: Kind, query: ListQuery, keep: Callable[[Doc], bool] | None = None
) -> tuple[list[Doc], dict[str, Any]]:
    docs = [d for d in store.list(team_id, kind.name) if keep is None or keep(d)]
    return paginate(docs, order_by=query.order_by, direction=query.direction, limit=query.limit, cursor=query.cursor)


def stamp_new(doc: Doc, clock: Clock) -> Doc:
    now = iso(clock.now())
    return {**doc, "version": 1, "created_at": now, "updated_at": now}


def create_resource(store: ResourceStore, team_id: str, kind: Kind, doc: Doc) -> Doc:
    try:
        store.create(team_id, kind.name, doc, unique=kind.unique(doc))
    except AlreadyExistsError as exc:
        raise kind.duplicate(doc, exc) from exc
    return doc


def change_resource(
    store: ResourceStore, team_id: str, kind: Kind, resource_id: str, change: Callable[[Doc], Doc | None], clock: Clock
) -> Doc:
    """Apply `change` to the stored document and write it back conditionally, re-reading on a race.

    `change` returns the new document, or None when nothing changes (no write, no version bump).
    """
    for _ in range(UPDATE_TRIES):
        current = get_resource(store, team_id, kind, resource_id)
        updated = change(dict(current))
        if updated is None or updated == current:
            return current
        updated = {**updated, "version": current["version"] + 1, "updated_at": iso(clock.now())}
        try:
            store.replace(
                team_id,
                kind.name,
                updated,
                expected_version=current["version"],
                old_unique=kind.unique(current),
                unique=kind.unique(updated),
            )
        except ConcurrentUpdateError:
            continue
        except AlreadyExistsError as exc:
            raise kind.duplicate(updated, exc) from exc
        return updated
    raise ConcurrentUpdateError()


def upsert_by_name(
    store: ResourceStore,
    team_id: str,
    kind: Kind,
    name: str,
    *,
    create: Callable[[], Doc],
    update: Callable[[str], Doc],
) -> tuple[Doc, bool]:
    """PUT on a collection: update the resource of that name, or create it; the bool says it was created."""
    existing = store.get_by_unique(team_id, kind.name, name)
    if existing is None:
        return create(), True
    return update(existing["id"]), False


def delete_resource(store: ResourceStore, team_id: str, kind: Kind, resource_id: str) -> Doc:
    doc = get_resource(store, team_id, kind, resource_id)
    if not store.delete(team_id, kind.name, doc["id"], unique=kind.unique(doc)):
        raise NotFoundError(f"{kind.label} {doc['id']} not found")
    return doc


def set_flag(
    store: ResourceStore, team_id: str, kind: Kind, resource_id: str, field: str, on: bool, clock: Clock
) -> Doc:
    """Set a timestamp flag (`disabled_at`, `paused_at`) or clear it; setting it twice keeps the first time."""

    def change(doc: Doc) -> Doc | None:
        if bool(doc.get(field)) == on:
            return None
        doc[field] = iso(clock.now()) if on else None
        return doc

    return change_resource(store, team_id, kind, resource_id, change, clock)


def merge_config(stored: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """A config update replaces the keys it names; clearing auth_type also drops the stored auth."""
    if given is None:
        return dict(stored)
    merged = {**stored, **given}
    if "auth_type" in given and given["auth_type"] is None and "auth" not in given:
        merged.pop("auth", None)
    return {k: v for k, v in merged.items() if v is not None}
