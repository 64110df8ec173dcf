"""Transformation routes: /transformations (the run endpoint and executions come with the engine)."""

from __future__ import annotations

from chalicelib.control import transformations as uc
from chalicelib.domain.models import Transformation, TransformationCreate, TransformationUpdate
from chalicelib.entrypoints.api import Api, Call
from chalicelib.entrypoints.crud import CrudSpec, register_crud
from chalicelib.ports import Doc

api = Api("transformations", "Transformations")


def present(call: Call, docs: list[Doc]) -> list[Doc]:
    return [uc.present_transformation(d) for d in docs]


register_crud(
    api,
    CrudSpec(
        path="/transformations",
        plural="transformations",
        kind=uc.KIND,
        create_model=TransformationCreate,
        update_model=TransformationUpdate,
        upsert_model=TransformationCreate,
        response_model=Transformation,
        present=present,
        create=uc.create_transformation,
        upsert=uc.upsert_transformation,
        update=lambda resource_id, **kw: uc.update_transformation(transformation_id=resource_id, **kw),
        delete=lambda resource_id, **kw: uc.delete_transformation(transformation_id=resource_id, **kw),
    ),
)
