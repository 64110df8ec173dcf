"""Destinations: where events are delivered (an HTTP endpoint, or the built-in mock API)."""

from __future__ import annotations

from typing import Any

from chalicelib.control import resources as res
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.models import (
    DESTINATION_AUTH_MODELS,
    DestinationConfig,
    DestinationCreate,
    DestinationUpdate,
    check_auth,
)
from chalicelib.domain.validation import validate
from chalicelib.ports import Clock, Doc, ResourceStore

KIND = res.DESTINATION


def check_config(destination_type: str, raw: dict[str, Any], *, prefix: str = "config") -> dict[str, Any]:
    """The stored form of a destination config, or a 422 naming the field under `prefix`."""
    model = validate(DestinationConfig, raw, prefix=prefix)
    if (model.rate_limit is None) != (model.rate_limit_period is None):
        missing = "rate_limit_period" if model.rate_limit_period is None else "rate_limit"
        raise ValidationError(
            f"{prefix}.{missing}: is required when the other rate limit field is set", field=f"{prefix}.{missing}"
        )
    model.auth = check_auth(model.auth_type, model.auth, DESTINATION_AUTH_MODELS, prefix=prefix)
    if destination_type == "HTTP" and not model.url:
        raise ValidationError(f"{prefix}.url: is required for an HTTP destination", field=f"{prefix}.url")
    if destination_type == "MOCK_API" and not model.path:
        raise ValidationError(f"{prefix}.path: is required for a MOCK_API destination", field=f"{prefix}.path")
    if destination_type == "MOCK_API":
        model.url = None
    return model.model_dump(exclude_none=True)


def present_destination(doc: Doc, *, include_auth: bool) -> Doc:
    config = dict(doc["config"])
    if not include_auth:
        config.pop("auth", None)
    return {
        "id": doc["id"],
        "team_id": doc["team_id"],
        "name": doc["name"],
        "description": doc.get("description"),
        "type": doc["type"],
        "config": config,
        "disabled_at": doc.get("disabled_at"),
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def create_destination(*, team_id: str, body: DestinationCreate, store: ResourceStore, clock: Clock) -> Doc:
    doc = res.stamp_new(
        {
            "id": new_id(Prefix.DESTINATION),
            "team_id": team_id,
            "name": body.name,
            "description": body.description,
            "type": body.type,
            "config": check_config(body.type, body.config.model_dump(exclude_none=True)),
            "disabled_at": None,
        },
        clock,
    )
    return res.create_resource(store, team_id, KIND, doc)


def _apply(doc: Doc, body: DestinationUpdate) -> Doc:
    given = body.model_dump(exclude_unset=True)
    for field in ("name", "description", "type"):
        if field in given and given[field] is not None:
            doc[field] = given[field]
    if "config" in given or "type" in given:
        doc["config"] = check_config(doc["type"], res.merge_config(doc["config"], given.get("config")))
    return doc


def update_destination(
    *, team_id: str, destination_id: str, body: DestinationUpdate, store: ResourceStore, clock: Clock
) -> Doc:
    return res.change_resource(store, team_id, KIND, destination_id, lambda d: _apply(d, body), clock)


def upsert_destination(
    *, team_id: str, body: DestinationCreate, store: ResourceStore, clock: Clock
) -> tuple[Doc, bool]:
    return res.upsert_by_name(
        store,
        team_id,
        KIND,
        body.name,
        create=lambda: create_destination(team_id=team_id, body=body, store=store, clock=clock),
        update=lambda existing_id: update_destination(
            team_id=team_id,
            destination_id=existing_id,
            store=store,
            clock=clock,
            body=DestinationUpdate.model_validate(body.model_dump(exclude_unset=True)),
        ),
    )


def set_destination_enabled(
    *, team_id: str, destination_id: str, enabled: bool, store: ResourceStore, clock: Clock
) -> Doc:
    return res.set_flag(store, team_id, KIND, destination_id, "disabled_at", not enabled, clock)


def delete_destination(*, team_id: str, destination_id: str, store: ResourceStore) -> Doc:
    """Connections to a deleted destination would route nowhere: they are deleted with it."""
    doc = res.get_resource(store, team_id, KIND, destination_id)
    for conn in store.list(team_id, res.CONNECTION.name):
        if conn["destination_id"] == doc["id"]:
            store.delete(team_id, res.CONNECTION.name, conn["id"], unique=res.CONNECTION.unique(conn))
    return res.delete_resource(store, team_id, KIND, doc["id"])
