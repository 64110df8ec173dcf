"""Source routes: /sources."""

from __future__ import annotations

from chalicelib.control import sources as uc
from chalicelib.domain.models import Source, SourceCreate, SourceUpdate
from chalicelib.entrypoints.api import Api, Call, Param
from chalicelib.entrypoints.crud import CrudSpec, register_crud
from chalicelib.ports import Doc

api = Api("sources", "Sources")


def present(call: Call, docs: list[Doc]) -> list[Doc]:
    url, include = call.deps.settings.ingest_url, call.include_auth()
    return [uc.present_source(d, ingest_url=url, include_auth=include) for d in docs]


def _disabled_filter(call: Call):  # type: ignore[no-untyped-def]
    disabled = call.flag("disabled")
    return lambda doc: disabled is None or bool(doc.get("disabled_at")) == disabled


register_crud(
    api,
    CrudSpec(
        path="/sources",
        plural="sources",
        kind=uc.KIND,
        create_model=SourceCreate,
        update_model=SourceUpdate,
        upsert_model=SourceCreate,
        response_model=Source,
        present=present,
        has_auth=True,
        create=uc.create_source,
        upsert=uc.upsert_source,
        update=lambda resource_id, **kw: uc.update_source(source_id=resource_id, **kw),
        delete=lambda resource_id, **kw: uc.delete_source(source_id=resource_id, **kw),
        set_enabled=lambda resource_id, **kw: uc.set_source_enabled(source_id=resource_id, **kw),
        list_filter=_disabled_filter,
        extra_list_params=(Param("disabled", "true: only disabled; false: only enabled", {"type": "boolean"}),),
    ),
)
