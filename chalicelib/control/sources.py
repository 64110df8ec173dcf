"""Sources: the URLs providers send webhooks to, with their verification and accepted methods."""

from __future__ import annotations

from typing import Any

from chalicelib.control import resources as res
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.models import SOURCE_AUTH_MODELS, SourceConfig, SourceCreate, SourceUpdate, check_auth
from chalicelib.domain.validation import validate
from chalicelib.ports import Clock, Doc, ResourceStore

KIND = res.SOURCE


def check_config(raw: dict[str, Any] | None, *, prefix: str = "config") -> dict[str, Any]:
    """The stored form of a source config, or a 422 naming the field under `prefix`."""
    model = validate(SourceConfig, raw or {}, prefix=prefix)
    model.auth = check_auth(model.auth_type, model.auth, SOURCE_AUTH_MODELS, prefix=prefix)
    return model.model_dump(exclude_none=True)


def present_source(doc: Doc, *, ingest_url: str, include_auth: bool) -> Doc:
    config = dict(doc["config"])
    if not include_auth:
        config.pop("auth", None)
    return {
        "id": doc["id"],
        "team_id": doc["team_id"],
        "name": doc["name"],
        "description": doc.get("description"),
        "type": doc["type"],
        "url": f"{ingest_url.rstrip('/')}/e/{doc['id']}",
        "config": config,
        "disabled_at": doc.get("disabled_at"),
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def create_source(*, team_id: str, body: SourceCreate, store: ResourceStore, clock: Clock) -> Doc:
    doc = res.stamp_new(
        {
            "id": new_id(Prefix.SOURCE),
            "team_id": team_id,
            "name": body.name,
            "description": body.description,
            "type": body.type,
            "config": check_config(body.config.model_dump(exclude_none=True) if body.config else None),
            "disabled_at": None,
        },
        clock,
    )
    return res.create_resource(store, team_id, KIND, doc)


def _apply(doc: Doc, body: SourceUpdate) -> Doc:
    given = body.model_dump(exclude_unset=True)
    for field in ("name", "description", "type"):
        if field in given and given[field] is not None:
            doc[field] = given[field]
    if "config" in given:
        doc["config"] = check_config(res.merge_config(doc["config"], given["config"]))
    return doc


def update_source(*, team_id: str, source_id: str, body: SourceUpdate, store: ResourceStore, clock: Clock) -> Doc:
    return res.change_resource(store, team_id, KIND, source_id, lambda d: _apply(d, body), clock)


def upsert_source(*, team_id: str, body: SourceCreate, store: ResourceStore, clock: Clock) -> tuple[Doc, bool]:
    return res.upsert_by_name(
        store,
        team_id,
        KIND,
        body.name,
        create=lambda: create_source(team_id=team_id, body=body, store=store, clock=clock),
        update=lambda existing_id: update_source(
            team_id=team_id,
            source_id=existing_id,
            store=store,
            clock=clock,
            body=SourceUpdate.model_validate(body.model_dump(exclude_unset=True)),
        ),
    )


def set_source_enabled(*, team_id: str, source_id: str, enabled: bool, store: ResourceStore, clock: Clock) -> Doc:
    """Disabling a source disables its enabled connections; enabling it re-enables exactly those."""
    doc = res.set_flag(store, team_id, KIND, source_id, "disabled_at", not enabled, clock)
    for conn in store.list(team_id, res.CONNECTION.name):
        if conn["source_id"] != doc["id"]:
            continue
        if not enabled and not conn.get("disabled_at"):
            res.change_resource(
                store,
                team_id,
                res.CONNECTION,
                conn["id"],
                lambda c: {**c, "disabled_at": doc["disabled_at"], "disabled_by": "source"},
                clock,
            )
        elif enabled and conn.get("disabled_by") == "source":
            res.change_resource(
                store,
                team_id,
                res.CONNECTION,
                conn["id"],
                lambda c: {**c, "disabled_at": None, "disabled_by": None},
                clock,
            )
    return doc


def delete_source(*, team_id: str, source_id: str, store: ResourceStore) -> Doc:
    """A connection cannot outlive its source: deleting a source deletes its connections."""
    doc = res.get_resource(store, team_id, KIND, source_id)
    for conn in store.list(team_id, res.CONNECTION.name):
        if conn["source_id"] == doc["id"]:
            store.delete(team_id, res.CONNECTION.name, conn["id"], unique=res.CONNECTION.unique(conn))
    return res.delete_resource(store, team_id, KIND, doc["id"])
