"""The routes every control resource has (list, get, create, upsert, update, enable/disable, delete).

Sources, destinations, connections and transformations declare what differs (models, use cases,
presentation, list filters) in a CrudSpec; the routes themselves are written once here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from chalicelib.control import resources as res
from chalicelib.domain.errors import AlreadyExistsError
from chalicelib.entrypoints.api import Api, Call, Param, Reply, list_envelope
from chalicelib.ports import Doc

LIST_PARAMS = (
    Param("order_by", "Sort field", {"type": "string", "enum": ["name", "created_at", "updated_at"]}),
    Param("dir", "Sort direction", {"type": "string", "enum": ["asc", "desc"]}),
    Param("limit", "Page size, at most 255", {"type": "integer", "minimum": 1, "maximum": 255}),
    Param("cursor", "Opaque pagination.next or pagination.prev of a previous page"),
    Param("name", "Only the resource with this name"),
)
INCLUDE = Param("include", "config.auth to show secrets in configs", {"type": "string", "enum": ["config.auth"]})


@dataclass(frozen=True)
class CrudSpec:
    path: str
    plural: str
    kind: res.Kind
    create_model: type[pydantic.BaseModel]
    update_model: type[pydantic.BaseModel]
    upsert_model: type[pydantic.BaseModel]
    response_model: type[pydantic.BaseModel]
    present: Callable[[Call, list[Doc]], list[Doc]]
    create: Callable[..., Doc]
    upsert: Callable[..., tuple[Doc, bool]]
    update: Callable[..., Doc]
    delete: Callable[..., Doc]
    set_enabled: Callable[..., Doc] | None = None
    list_filter: Callable[[Call], Callable[[Doc], bool]] | None = None
    extra_list_params: tuple[Param, ...] = ()
    has_auth: bool = False


def _named(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    fn.__name__ = name
    return fn


def register_crud(api: Api, spec: CrudSpec) -> None:
    label, plural, id_path = spec.kind.name, spec.plural, f"{spec.path}/{{resource_id}}"
    include = (INCLUDE,) if spec.has_auth else ()

    def one(call: Call, doc: Doc) -> Doc:
        return spec.present(call, [doc])[0]

    def presented_conflict(call: Call, exc: AlreadyExistsError) -> AlreadyExistsError:
        """A 409 carries the existing resource exactly as GET shows it (secrets only on request)."""
        data = spec.present(call, [exc.data])[0] if isinstance(exc.data, dict) else None
        return AlreadyExistsError(exc.message, data=data)

    def writing(call: Call, write: Callable[[], Any]) -> Any:
        try:
            return write()
        except AlreadyExistsError as exc:
            raise presented_conflict(call, exc) from exc

    def deps(call: Call) -> dict[str, Any]:
        return {"team_id": call.team_id, "store": call.deps.resources, "clock": call.deps.clock}

    def list_all(call: Call) -> dict[str, Any]:
        query = call.list_query()
        name = call.query.get("name")
        keep_extra = spec.list_filter(call) if spec.list_filter else None

        def keep(doc: Doc) -> bool:
            return (name is None or doc["name"] == name) and (keep_extra is None or keep_extra(doc))

        docs, pagination = res.list_resources(call.deps.resources, call.team_id, spec.kind, query, keep)
        return list_envelope(spec.present(call, docs), pagination)

    api.route(
        spec.path,
        ["GET"],
        summary=f"List {plural}",
        response=spec.response_model,
        list_response=True,
        params=LIST_PARAMS + spec.extra_list_params + include,
    )(_named(f"list_{plural}", list_all))

    def get_one(call: Call, resource_id: str) -> Doc:
        return one(call, res.get_resource(call.deps.resources, call.team_id, spec.kind, resource_id))

    api.route(id_path, ["GET"], summary=f"Retrieve a {label}", response=spec.response_model, params=include)(
        _named(f"get_{label}", get_one)
    )

    def create(call: Call) -> Reply:
        return Reply(one(call, writing(call, lambda: spec.create(body=call.body, **deps(call)))), 201)

    api.route(
        spec.path,
        ["POST"],
        summary=f"Create a {label}",
        body=spec.create_model,
        response=spec.response_model,
        status=201,
    )(_named(f"create_{label}", create))

    def upsert(call: Call) -> Reply:
        doc, created = writing(call, lambda: spec.upsert(body=call.body, **deps(call)))
        return Reply(one(call, doc), 201 if created else 200)

    api.route(
        spec.path,
        ["PUT"],
        summary=f"Create or update a {label} by name",
        also_status=(201,),
        # An upsert naming an id updates that resource, which may not exist.
        errors=(404,) if "id" in spec.upsert_model.model_fields else (),
        body=spec.upsert_model,
        response=spec.response_model,
    )(_named(f"upsert_{label}", upsert))

    def update(call: Call, resource_id: str) -> Doc:
        return one(call, writing(call, lambda: spec.update(resource_id=resource_id, body=call.body, **deps(call))))

    api.route(
        id_path, ["PUT", "PATCH"], summary=f"Update a {label}", body=spec.update_model, response=spec.response_model
    )(_named(f"update_{label}", update))

    if spec.set_enabled is not None:
        set_enabled = spec.set_enabled

        def enable(call: Call, resource_id: str) -> Doc:
            return one(call, set_enabled(resource_id=resource_id, enabled=True, **deps(call)))

        def disable(call: Call, resource_id: str) -> Doc:
            return one(call, set_enabled(resource_id=resource_id, enabled=False, **deps(call)))

        api.route(f"{id_path}/enable", ["PUT", "POST"], summary=f"Enable a {label}", response=spec.response_model)(
            _named(f"enable_{label}", enable)
        )
        api.route(f"{id_path}/disable", ["PUT", "POST"], summary=f"Disable a {label}", response=spec.response_model)(
            _named(f"disable_{label}", disable)
        )

    def delete(call: Call, resource_id: str) -> dict[str, str]:
        doc = spec.delete(resource_id=resource_id, team_id=call.team_id, store=call.deps.resources)
        return {"id": doc["id"]}

    api.route(
        id_path,
        ["DELETE"],
        summary=f"Delete a {label}",
        response={"type": "object", "properties": {"id": {"type": "string"}}},
    )(_named(f"delete_{label}", delete))
