"""Connections: one route from a source to a destination, with the rules applied on the way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.control import resources as res
from chalicelib.control.destinations import check_config as check_destination_config
from chalicelib.control.destinations import present_destination, upsert_destination
from chalicelib.control.retries import release_held_events
from chalicelib.control.sources import check_config as check_source_config
from chalicelib.control.sources import present_source, upsert_source
from chalicelib.control.transformations import upsert_transformation
from chalicelib.domain import rules as rules_domain
from chalicelib.domain.errors import AlreadyExistsError, ValidationError
from chalicelib.domain.ids import Prefix, is_id, new_id
from chalicelib.domain.models import (
    ConnectionCreate,
    ConnectionUpdate,
    ConnectionUpsert,
    DestinationCreate,
    SourceCreate,
    TransformationCreate,
)
from chalicelib.domain.timefmt import iso
from chalicelib.domain.validation import validate
from chalicelib.ports import Clock, Doc, Queues, RecordStore, ResourceStore

KIND = res.CONNECTION


def present_connection(doc: Doc, *, source: Doc, destination: Doc, ingest_url: str, include_auth: bool) -> Doc:
    return {
        "id": doc["id"],
        "team_id": doc["team_id"],
        "name": doc["name"],
        "full_name": f"{source['name']} -> {destination['name']}",
        "description": doc.get("description"),
        "source": present_source(source, ingest_url=ingest_url, include_auth=include_auth),
        "destination": present_destination(destination, include_auth=include_auth),
        "rules": doc.get("rules", []),
        "disabled_at": doc.get("disabled_at"),
        "paused_at": doc.get("paused_at"),
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


@dataclass
class _Ref:
    """A source or destination a connection names: stored already, or to be upserted by name."""

    doc: Doc | None = None
    pending: Any = None  # a validated SourceCreate/DestinationCreate, written only once all else is valid


def _check_reference(
    store: ResourceStore, team_id: str, kind: res.Kind, field: str, given_id: str | None, inline: dict[str, Any] | None
) -> _Ref:
    ref_id = given_id or (inline or {}).get("id")
    if ref_id is not None:
        doc = store.get(team_id, kind.name, ref_id) if is_id(ref_id, kind.prefix) else None
        if doc is None:
            raise ValidationError(f"{field}: {kind.name} {ref_id!s:.64} not found", field=field)
        return _Ref(doc=doc)
    if inline is None:
        raise ValidationError(f"{field}: is required ({field} or a {kind.name} object)", field=field)
    if kind is res.SOURCE:
        body = validate(SourceCreate, inline, prefix="source")
        check_source_config(body.config.model_dump(exclude_none=True) if body.config else None, prefix="source.config")
    else:
        body = validate(DestinationCreate, inline, prefix="destination")
        check_destination_config(body.type, body.config.model_dump(exclude_none=True), prefix="destination.config")
    existing = store.get_by_unique(team_id, kind.name, body.name)
    return _Ref(doc=existing, pending=body)


def _write_reference(store: ResourceStore, team_id: str, kind: res.Kind, ref: _Ref, clock: Clock) -> Doc:
    if ref.pending is None:
        assert ref.doc is not None
        return ref.doc
    upsert = upsert_source if kind is res.SOURCE else upsert_destination
    return upsert(team_id=team_id, body=ref.pending, store=store, clock=clock)[0]


@dataclass
class _Rules:
    rules: list[Doc]
    inline: dict[int, TransformationCreate]  # position in `rules` -> transformation to upsert and link


def _check_rules(store: ResourceStore, team_id: str, raw: list[Any] | None) -> _Rules:
    """Validate rules and their transformations; errors name rules[i] as the caller sent them."""
    if not raw:
        return _Rules([], {})
    dumped = rules_domain.dump_rules(rules_domain.parse_rules(raw))
    # Normalising keeps transforms in their given order, so the k-th transform is the k-th one sent.
    sent_at = [
        i
        for i, rule in enumerate(raw)
        if isinstance(rule, dict) and rule.get("type") in ("transform", rules_domain.TRANSFORMATION_ALIAS)
    ]
    inline: dict[int, TransformationCreate] = {}
    transforms = [i for i, rule in enumerate(dumped) if rule.get("type") == "transform"]
    for position, original in zip(transforms, sent_at, strict=True):
        rule = dumped[position]
        if "transformation" in rule:
            inline[position] = validate(
                TransformationCreate, rule["transformation"], prefix=f"rules[{original}].transformation"
            )
        elif store.get(team_id, res.TRANSFORMATION.name, rule["transformation_id"]) is None:
            field = f"rules[{original}].transformation_id"
            raise ValidationError(f"{field}: transformation {rule['transformation_id']} not found", field=field)
    return _Rules(dumped, inline)


def _write_rules(store: ResourceStore, team_id: str, checked: _Rules, clock: Clock) -> list[Doc]:
    rules = list(checked.rules)
    for position, body in checked.inline.items():
        doc, _ = upsert_transformation(team_id=team_id, body=body, store=store, clock=clock)
        rules[position] = {"type": "transform", "transformation_id": doc["id"]}
    return rules


def create_connection(*, team_id: str, body: ConnectionCreate, store: ResourceStore, clock: Clock) -> Doc:
    """Check everything the body names first, then write: a rejected body leaves nothing behind."""
    checked_rules = _check_rules(store, team_id, body.rules)
    source_ref = _check_reference(store, team_id, res.SOURCE, "source_id", body.source_id, body.source)
    destination_ref = _check_reference(
        store, team_id, res.DESTINATION, "destination_id", body.destination_id, body.destination
    )
    if source_ref.doc is not None:
        existing = store.get_by_unique(team_id, KIND.name, f"{source_ref.doc['id']}/{body.name}")
        if existing is not None:
            raise KIND.duplicate(
                {"name": body.name, "source_id": source_ref.doc["id"]}, AlreadyExistsError("", data=existing)
            )
    source = _write_reference(store, team_id, res.SOURCE, source_ref, clock)
    destination = _write_reference(store, team_id, res.DESTINATION, destination_ref, clock)
    doc = res.stamp_new(
        {
            "id": new_id(Prefix.CONNECTION),
            "team_id": team_id,
            "name": body.name,
            "description": body.description,
            "source_id": source["id"],
            "destination_id": destination["id"],
            "rules": _write_rules(store, team_id, checked_rules, clock),
            "disabled_at": source.get("disabled_at"),
            "disabled_by": "source" if source.get("disabled_at") else None,
            "paused_at": None,
        },
        clock,
    )
    return res.create_resource(store, team_id, KIND, doc)


def update_connection(
    *, team_id: str, connection_id: str, body: ConnectionUpdate, store: ResourceStore, clock: Clock
) -> Doc:
    given = body.model_dump(exclude_unset=True)
    checked_rules = _check_rules(store, team_id, body.rules) if "rules" in given else None
    destination_ref = None
    if body.destination_id is not None or body.destination is not None:
        destination_ref = _check_reference(
            store, team_id, res.DESTINATION, "destination_id", body.destination_id, body.destination
        )
    res.get_resource(store, team_id, KIND, connection_id)  # 404 before any write
    rules = _write_rules(store, team_id, checked_rules, clock) if checked_rules is not None else None
    destination = (
        _write_reference(store, team_id, res.DESTINATION, destination_ref, clock)
        if destination_ref is not None
        else None
    )

    def change(doc: Doc) -> Doc:
        if given.get("name") is not None:
            doc["name"] = given["name"]
        if "description" in given:
            doc["description"] = given["description"]
        if rules is not None:
            doc["rules"] = rules
        if destination is not None:
            doc["destination_id"] = destination["id"]
        return doc

    return res.change_resource(store, team_id, KIND, connection_id, change, clock)


def upsert_connection(*, team_id: str, body: ConnectionUpsert, store: ResourceStore, clock: Clock) -> tuple[Doc, bool]:
    """Upsert by id when given, otherwise by source and name."""
    fields = body.model_dump(exclude_unset=True)
    update = ConnectionUpdate.model_validate({k: v for k, v in fields.items() if k in ConnectionUpdate.model_fields})
    if body.id is not None:
        return update_connection(team_id=team_id, connection_id=body.id, body=update, store=store, clock=clock), False
    source_ref = _check_reference(store, team_id, res.SOURCE, "source_id", body.source_id, body.source)
    existing = (
        store.get_by_unique(team_id, KIND.name, f"{source_ref.doc['id']}/{body.name}")
        if source_ref.doc is not None
        else None
    )
    if existing is None:
        create = ConnectionCreate.model_validate({k: v for k, v in fields.items() if k != "id"})
        return create_connection(team_id=team_id, body=create, store=store, clock=clock), True
    return update_connection(
        team_id=team_id, connection_id=existing["id"], body=update, store=store, clock=clock
    ), False


def set_connection_enabled(
    *, team_id: str, connection_id: str, enabled: bool, store: ResourceStore, clock: Clock
) -> Doc:
    def change(doc: Doc) -> Doc | None:
        if not enabled and doc.get("disabled_at"):
            # Already off because its source is: this explicit disable must survive re-enabling the source.
            return {**doc, "disabled_by": None}
        if bool(doc.get("disabled_at")) != enabled:
            return None
        return {**doc, "disabled_at": None if enabled else iso(clock.now()), "disabled_by": None}

    return res.change_resource(store, team_id, KIND, connection_id, change, clock)


def unpause_connection(
    *, team_id: str, connection_id: str, store: ResourceStore, records: RecordStore, queues: Queues, clock: Clock
) -> Doc:
    """Unpause, then release what the pause held: HOLD events become QUEUED with trigger UNPAUSE.

    The flag goes first, so an event routed meanwhile is not held again; releasing is idempotent, so a
    second unpause finishes a release a crash interrupted.
    """
    doc = set_connection_paused(team_id=team_id, connection_id=connection_id, paused=False, store=store, clock=clock)
    release_held_events(team_id=team_id, connection_id=doc["id"], records=records, queues=queues, clock=clock)
    return doc


def set_connection_paused(*, team_id: str, connection_id: str, paused: bool, store: ResourceStore, clock: Clock) -> Doc:
    return res.set_flag(store, team_id, KIND, connection_id, "paused_at", paused, clock)


def delete_connection(*, team_id: str, connection_id: str, store: ResourceStore) -> Doc:
    return res.delete_resource(store, team_id, KIND, connection_id)


def load_connection_parts(store: ResourceStore, team_id: str, docs: list[Doc]) -> tuple[dict[str, Doc], dict[str, Doc]]:
    """Sources and destinations for presenting connections, read once per page rather than per row."""
    source_ids = {d["source_id"] for d in docs}
    destination_ids = {d["destination_id"] for d in docs}
    if len(docs) > 3:
        sources = {s["id"]: s for s in store.list(team_id, res.SOURCE.name) if s["id"] in source_ids}
        destinations = {d["id"]: d for d in store.list(team_id, res.DESTINATION.name) if d["id"] in destination_ids}
        return sources, destinations
    sources = {sid: doc for sid in source_ids if (doc := store.get(team_id, res.SOURCE.name, sid))}
    destinations = {did: doc for did in destination_ids if (doc := store.get(team_id, res.DESTINATION.name, did))}
    return sources, destinations
