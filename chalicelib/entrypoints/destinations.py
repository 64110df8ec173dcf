"""Destination routes: /destinations."""

from __future__ import annotations

from chalicelib.control import destinations as uc
from chalicelib.domain.models import Destination, DestinationCreate, DestinationUpdate
from chalicelib.entrypoints.api import Api, Call, Param
from chalicelib.entrypoints.crud import CrudSpec, register_crud
from chalicelib.ports import Doc

api = Api("destinations", "Destinations")


def present(call: Call, docs: list[Doc]) -> list[Doc]:
    include = call.include_auth()
    return [uc.present_destination(d, include_auth=include) for d in docs]


def _filter(call: Call):  # type: ignore[no-untyped-def]
    disabled, kind = call.flag("disabled"), call.query.get("type")
    return lambda doc: (
        (disabled is None or bool(doc.get("disabled_at")) == disabled) and (kind is None or doc["type"] == kind)
    )


register_crud(
    api,
    CrudSpec(
        path="/destinations",
        plural="destinations",
        kind=uc.KIND,
        create_model=DestinationCreate,
        update_model=DestinationUpdate,
        upsert_model=DestinationCreate,
        response_model=Destination,
        present=present,
        has_auth=True,
        create=uc.create_destination,
        upsert=uc.upsert_destination,
        update=lambda resource_id, **kw: uc.update_destination(destination_id=resource_id, **kw),
        delete=lambda resource_id, **kw: uc.delete_destination(destination_id=resource_id, **kw),
        set_enabled=lambda resource_id, **kw: uc.set_destination_enabled(destination_id=resource_id, **kw),
        list_filter=_filter,
        extra_list_params=(
            Param("disabled", "true: only disabled; false: only enabled", {"type": "boolean"}),
            Param("type", "HTTP or MOCK_API", {"type": "string", "enum": ["HTTP", "MOCK_API"]}),
        ),
    ),
)
