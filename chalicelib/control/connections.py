"""Connections: one route from a source to a destination, with the rules applied on the way."""

from __future__ import annotations

from typing import Any

from chalicelib.control import resources as res
from chalicelib.control.destinations import present_destination, upsert_destination
from chalicelib.control.sources import present_source, upsert_source
from chalicelib.control.transformations import upsert_transformation
from chalicelib.domain import rules as rules_domain
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ids import Prefix, is_id, new_id
from chalicelib.domain.timefmt import iso
from chalicelib.domain.models import (
    ConnectionCreate,
    ConnectionUpdate,
    ConnectionUpsert,
    DestinationCreate,
    SourceCreate,
    TransformationCreate,
)
from chalicelib.domain.validation import validate
from chalicelib.ports import Clock, Doc, ResourceStore

KIND = res.CONNECTION


def present_connection(doc: Doc, *, source: Doc, destination: Doc, ingest_url: str, include_auth: bool) -> Doc:
    return {
        "id": doc["id"], "team_id": doc["team_id"], "name": doc["name"],
        "full_name": f"{source['name']} -> {destination['name']}", "description": doc.get("description"),
        "source": present_source(source, ingest_url=ingest_url, include_auth=include_auth),
        "destination": present_destination(destination, include_auth=include_auth),
        "rules": doc.get("rules", []), "disabled_at": doc.get("disabled_at"), "paused_at": doc.get("paused_at"),
        "created_at": doc["created_at"], "updated_at": doc["updated_at"],
    }


def _reference(store: ResourceStore, team_id: str, kind: res.Kind, field: str, given_id: str | None,
               inline: dict[str, Any] | None, clock: Clock) -> Doc:
    """Resolve `source_id` / `source: {id}` / `source: {name, ...}` (upserted by name) to a stored doc."""
    ref_id = given_id or (inline or {}).get("id")
    if ref_id is not None:
        doc = store.get(team_id, kind.name, ref_id) if is_id(ref_id, kind.prefix) else None
        if doc is None:
            raise ValidationError(f"{field}: {kind.name} {str(ref_id):.64} not found", field=field)
        return doc
    if inline is None:
        raise ValidationError(f"{field}: is required ({field} or {kind.name} object)", field=field)
    if kind is res.SOURCE:
        return upsert_source(team_id=team_id, body=validate(SourceCreate, inline, prefix="source"), store=store,
                             clock=clock)[0]
    return upsert_destination(team_id=team_id, body=validate(DestinationCreate, inline, prefix="destination"),
                              store=store, clock=clock)[0]


def _rules(store: ResourceStore, team_id: str, raw: list[Any] | None, clock: Clock) -> list[Doc]:
    """Validate and normalise rules; inline transformations are upserted by name and linked by id."""
    if not raw:
        return []
    dumped = rules_domain.dump_rules(rules_domain.normalize_rules(rules_domain.parse_rules(raw)))
    for index, rule in enumerate(dumped):
        if rule.get("type") != "transform":
            continue
        if "transformation" in rule:
            body = validate(TransformationCreate, rule["transformation"], prefix=f"rules[{index}].transformation")
            doc, _ = upsert_transformation(team_id=team_id, body=body, store=store, clock=clock)
            dumped[index] = {"type": "transform", "transformation_id": doc["id"]}
        elif store.get(team_id, res.TRANSFORMATION.name, rule["transformation_id"]) is None:
            field = f"rules[{index}].transformation_id"
            raise ValidationError(f"{field}: transformation {rule['transformation_id']} not found", field=field)
    return dumped


def create_connection(*, team_id: str, body: ConnectionCreate, store: ResourceStore, clock: Clock) -> Doc:
    rules = _rules(store, team_id, body.rules, clock)
    source = _reference(store, team_id, res.SOURCE, "source_id", body.source_id, body.source, clock)
    destination = _reference(store, team_id, res.DESTINATION, "destination_id", body.destination_id,
                             body.destination, clock)
    doc = res.stamp_new({
        "id": new_id(Prefix.CONNECTION), "team_id": team_id, "name": body.name, "description": body.description,
        "source_id": source["id"], "destination_id": destination["id"], "rules": rules,
        "disabled_at": source.get("disabled_at"), "disabled_by": "source" if source.get("disabled_at") else None,
        "paused_at": None,
    }, clock)
    return res.create_resource(store, team_id, KIND, doc)


def update_connection(*, team_id: str, connection_id: str, body: ConnectionUpdate, store: ResourceStore,
                      clock: Clock) -> Doc:
    given = body.model_dump(exclude_unset=True)
    rules = _rules(store, team_id, body.rules, clock) if "rules" in given else None
    destination = None
    if body.destination_id is not None or body.destination is not None:
        destination = _reference(store, team_id, res.DESTINATION, "destination_id", body.destination_id,
                                 body.destination, clock)

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


def upsert_connection(*, team_id: str, body: ConnectionUpsert, store: ResourceStore,
                      clock: Clock) -> tuple[Doc, bool]:
    """Upsert by id when given, otherwise by source and name."""
    fields = body.model_dump(exclude_unset=True)
    update = ConnectionUpdate.model_validate({k: v for k, v in fields.items() if k in ConnectionUpdate.model_fields})
    if body.id is not None:
        return update_connection(team_id=team_id, connection_id=body.id, body=update, store=store, clock=clock), False
    source = _reference(store, team_id, res.SOURCE, "source_id", body.source_id, body.source, clock)
    existing = store.get_by_unique(team_id, KIND.name, f"{source['id']}/{body.name}")
    if existing is None:
        create = ConnectionCreate.model_validate({**{k: v for k, v in fields.items() if k != "id"},
                                                  "source_id": source["id"], "source": None})
        return create_connection(team_id=team_id, body=create, store=store, clock=clock), True
    return update_connection(team_id=team_id, connection_id=existing["id"], body=update, store=store,
                             clock=clock), False


def set_connection_enabled(*, team_id: str, connection_id: str, enabled: bool, store: ResourceStore,
                           clock: Clock) -> Doc:
    def change(doc: Doc) -> Doc | None:
        if bool(doc.get("disabled_at")) != enabled:
            return None
        return {**doc, "disabled_at": None if enabled else iso(clock.now()), "disabled_by": None}

    return res.change_resource(store, team_id, KIND, connection_id, change, clock)


def set_connection_paused(*, team_id: str, connection_id: str, paused: bool, store: ResourceStore,
                          clock: Clock) -> Doc:
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
