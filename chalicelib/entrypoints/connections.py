"""Connection routes: /connections, plus pause and unpause."""

from __future__ import annotations

from chalicelib.control import connections as uc
from chalicelib.control import observe
from chalicelib.domain.models import Connection, ConnectionCreate, ConnectionUpdate, ConnectionUpsert
from chalicelib.entrypoints.api import Api, Call, Param
from chalicelib.entrypoints.crud import INCLUDE, CrudSpec, register_crud
from chalicelib.entrypoints.requests import REQUEST_LIST
from chalicelib.ports import Doc

api = Api("connections", "Connections")


def present(call: Call, docs: list[Doc]) -> list[Doc]:
    sources, destinations = uc.load_connection_parts(call.deps.resources, call.team_id, docs)
    url, include = call.deps.settings.ingest_url, call.include_auth()
    return [
        uc.present_connection(
            d,
            source=sources[d["source_id"]],
            destination=destinations[d["destination_id"]],
            ingest_url=url,
            include_auth=include,
        )
        for d in docs
        if d["source_id"] in sources and d["destination_id"] in destinations
    ]


def _filter(call: Call):  # type: ignore[no-untyped-def]
    source_id, destination_id = call.query.get("source_id"), call.query.get("destination_id")
    disabled, paused = call.flag("disabled"), call.flag("paused")
    return lambda doc: (
        (source_id is None or doc["source_id"] == source_id)
        and (destination_id is None or doc["destination_id"] == destination_id)
        and (disabled is None or bool(doc.get("disabled_at")) == disabled)
        and (paused is None or bool(doc.get("paused_at")) == paused)
    )


register_crud(
    api,
    CrudSpec(
        path="/connections",
        plural="connections",
        kind=uc.KIND,
        create_model=ConnectionCreate,
        update_model=ConnectionUpdate,
        upsert_model=ConnectionUpsert,
        response_model=Connection,
        present=present,
        has_auth=True,
        create=uc.create_connection,
        upsert=uc.upsert_connection,
        update=lambda resource_id, **kw: uc.update_connection(connection_id=resource_id, **kw),
        delete=lambda resource_id, **kw: uc.delete_connection(connection_id=resource_id, **kw),
        set_enabled=lambda resource_id, **kw: uc.set_connection_enabled(connection_id=resource_id, **kw),
        list_filter=_filter,
        extra_list_params=(
            Param("source_id", "Only connections from this source"),
            Param("destination_id", "Only connections to this destination"),
            Param("disabled", "true: only disabled; false: only enabled", {"type": "boolean"}),
            Param("paused", "true: only paused; false: only running", {"type": "boolean"}),
        ),
    ),
)


@api.route(
    "/connections/{resource_id}/pause",
    ["PUT", "POST"],
    summary="Pause a connection (new events are held)",
    response=Connection,
    params=(INCLUDE,),
)
def pause_connection(call: Call, resource_id: str) -> Doc:
    deps = call.deps
    doc = uc.set_connection_paused(
        team_id=call.team_id, connection_id=resource_id, paused=True, store=deps.resources, clock=deps.clock
    )
    return present(call, [doc])[0]


@api.route(
    "/connections/{resource_id}/unpause",
    ["PUT", "POST"],
    summary="Unpause a connection and release its held events (trigger UNPAUSE)",
    response=Connection,
    params=(INCLUDE,),
)
def unpause_connection(call: Call, resource_id: str) -> Doc:
    deps = call.deps
    doc = uc.unpause_connection(
        team_id=call.team_id,
        connection_id=resource_id,
        store=deps.resources,
        records=deps.records,
        queues=deps.queues,
        clock=deps.clock,
    )
    return present(call, [doc])[0]


@api.route(
    "/connections/{resource_id}/latest-input",
    ["GET"],
    summary="Returns the latest request input seen by the connection source",
    response=REQUEST_LIST,
)
def get_connection_latest_input(call: Call, resource_id: str) -> Doc:
    deps = call.deps
    return observe.latest_input(
        team_id=call.team_id,
        connection_id=resource_id,
        records=deps.records,
        resources=deps.resources,
        payloads=deps.payloads,
        now=deps.clock.now(),
    )
