"""Transformations: named JavaScript functions a connection's transform rule runs on each request."""

from __future__ import annotations

import hashlib

from chalicelib.control import resources as res
from chalicelib.domain.errors import InUseError, ValidationError
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.models import TransformationCreate, TransformationUpdate
from chalicelib.domain.transforms import (
    TransformationRun,
    TransformResult,
    logs_of,
    read_transformed_request,
    transform_input,
)
from chalicelib.ports import Clock, Doc, ResourceStore, Transformer

KIND = res.TRANSFORMATION


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def present_transformation(doc: Doc) -> Doc:
    return {
        k: doc.get(k)
        for k in ("id", "team_id", "name", "code", "env", "code_hash", "created_at", "updated_at", "deleted_at")
    }


def create_transformation(*, team_id: str, body: TransformationCreate, store: ResourceStore, clock: Clock) -> Doc:
    doc = res.stamp_new(
        {
            "id": new_id(Prefix.TRANSFORMATION),
            "team_id": team_id,
            "name": body.name,
            "code": body.code,
            "env": body.env or {},
            "code_hash": _hash(body.code),
            "deleted_at": None,
        },
        clock,
    )
    return res.create_resource(store, team_id, KIND, doc)


def _apply(doc: Doc, body: TransformationUpdate) -> Doc:
    given = body.model_dump(exclude_unset=True)
    if given.get("name") is not None:
        doc["name"] = given["name"]
    if given.get("code") is not None:
        doc["code"] = given["code"]
        doc["code_hash"] = _hash(given["code"])
    if "env" in given:
        doc["env"] = given["env"] or {}
    return doc


def update_transformation(
    *, team_id: str, transformation_id: str, body: TransformationUpdate, store: ResourceStore, clock: Clock
) -> Doc:
    return res.change_resource(store, team_id, KIND, transformation_id, lambda d: _apply(d, body), clock)


def upsert_transformation(
    *, team_id: str, body: TransformationCreate, store: ResourceStore, clock: Clock
) -> tuple[Doc, bool]:
    existing = store.get_by_unique(team_id, KIND.name, body.name)
    if existing is None:
        return create_transformation(team_id=team_id, body=body, store=store, clock=clock), True
    update = TransformationUpdate.model_validate(body.model_dump(exclude_unset=True))
    return update_transformation(
        team_id=team_id, transformation_id=existing["id"], body=update, store=store, clock=clock
    ), False


def delete_transformation(*, team_id: str, transformation_id: str, store: ResourceStore) -> Doc:
    doc = res.get_resource(store, team_id, KIND, transformation_id)
    users = [
        f"{c['name']} ({c['id']})"
        for c in store.list(team_id, res.CONNECTION.name)
        if any(r.get("transformation_id") == doc["id"] for r in c.get("rules", []))
    ]
    if users:
        raise InUseError(
            f"Transformation {doc['name']} is used by connection(s) {', '.join(users[:5])}; "
            "remove it from their rules first"
        )
    return res.delete_resource(store, team_id, KIND, doc["id"])


# What a test run's code sees as `context`: there is no connection, so the summaries are empty
# rather than missing (code reading `context.connection.name` runs as it would in the pipeline).
RUN_CONTEXT: Doc = {
    "connection": {"id": None, "name": None},
    "source": {"id": None, "name": None},
    "destination": {"id": None, "name": None, "type": None},
}


def run_transformation(*, team_id: str, body: TransformationRun, store: ResourceStore, transformer: Transformer) -> Doc:
    """Run code (or a stored transformation) on a sample request: `{request, logs, duration_ms}`.

    TransformationError (422 with the console lines) when the code throws, breaks a limit or
    returns something that is not a request. `env` defaults to the stored transformation's.
    """
    if (body.code is None) == (body.transformation_id is None):
        raise ValidationError("code: give either code or transformation_id", field="code")
    if body.transformation_id is not None:
        stored = res.get_resource(store, team_id, KIND, body.transformation_id)
        code, env = stored["code"], body.env if body.env is not None else stored.get("env") or {}
    else:
        code, env = body.code or "", body.env or {}
    sample = body.request
    given = transform_input(
        method=sample.method, path=sample.path, query=sample.query, headers=sample.headers, body=sample.body
    )
    returned = transformer.transform(code=code, env=env, request=given, context=RUN_CONTEXT)
    request = read_transformed_request(returned, original=given)
    duration_ms = returned.duration_ms if isinstance(returned, TransformResult) else 0.0
    return {"request": request, "logs": logs_of(returned), "duration_ms": duration_ms}
