"""GET /openapi.json: the document is served, valid, complete, and made from the handlers' own models."""

from __future__ import annotations

import typing
from typing import Any

import pydantic
import pytest
from openapi_spec_validator import validate

from chalicelib.domain import models
from chalicelib.entrypoints.api import CONTROL_PREFIXES
from chalicelib.entrypoints.dashboard import DASHBOARD_PATHS
from tests.functional.conftest import Api

REF = "#/components/schemas/{model}"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def fetch_document(anon: Api) -> dict[str, Any]:
    status, body = anon.get("/openapi.json")
    assert status == 200, body
    return body


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in doc["paths"].items() for method in item if method in METHODS}


def unprefixed(path: str) -> str:
    for prefix in ("/api/control/v1", "/v1"):
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    if path.startswith("/api/auth/"):
        return path[len("/api") :]
    return path


def app_routes() -> dict[str, set[str]]:
    import app as fasthook

    # The dashboard's page and assets are static files, not API operations.
    return {path: set(entries) for path, entries in fasthook.app.routes.items() if path not in DASHBOARD_PATHS}


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve at {part!r}"
        node = node[part]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


def deref(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return resolve(doc, schema["$ref"]) if "$ref" in schema else schema


def non_null(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The one non-null branch of an optional field's `anyOf`, dereferenced."""
    branches = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    assert len(branches) == 1, schema
    return deref(doc, branches[0])


@pytest.mark.parametrize("prefix", CONTROL_PREFIXES)
def test_the_document_is_served_without_auth_under_every_prefix(anon: Api, prefix: str) -> None:
    # Given a caller without a token
    client = anon.as_(None, prefix)

    # When it asks for the document under the prefix
    status, body = client.get("/openapi.json")

    # Then it gets the OpenAPI 3.1 document of FastHook, whose paths carry no prefix
    assert status == 200, body
    assert body["openapi"] == "3.1.0"
    assert body["info"]["title"] == "FastHook"
    assert body["servers"] == [{"url": "/v1"}]
    assert "/sources/{resource_id}" in body["paths"]
    assert not any(path.startswith(("/v1/", "/api/")) for path in body["paths"])


def test_the_document_is_the_same_on_every_request(anon: Api) -> None:
    # Given the document was served once
    first = fetch_document(anon)

    # When it is asked for again under another prefix
    second = fetch_document(anon.as_(None, "/api/control/v1"))

    # Then the answer is identical
    assert second == first


def test_the_document_validates_as_openapi_3_1(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When the OpenAPI validator checks it
    # Then it finds nothing wrong
    validate(doc)


def test_every_route_of_the_app_is_documented_with_each_of_its_methods(anon: Api) -> None:
    # Given the routes the Chalice app serves, with their prefixes stripped
    served = {(unprefixed(path), method) for path, methods in app_routes().items() for method in methods}

    # When the document is fetched
    documented = documented_operations(fetch_document(anon))

    # Then every served route and method is documented, and nothing else is
    assert served - documented == set()
    assert documented - served == set()


def test_every_documented_operation_answers_under_every_prefix(anon: Api) -> None:
    # Given the documented operations and the routes the app serves
    documented = documented_operations(fetch_document(anon))
    routes = app_routes()

    # When each operation is looked up under each prefix (auth routes also under /api)
    missing = []
    for path, method in sorted(documented):
        prefixes = (*CONTROL_PREFIXES, "/api") if path.startswith("/auth/") else CONTROL_PREFIXES
        missing += [f"{method} {prefix}{path}" for prefix in prefixes if method not in routes.get(prefix + path, ())]

    # Then none is missing
    assert missing == []


def test_every_ref_in_the_document_resolves(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When every $ref in it is collected
    refs = refs_in(doc)

    # Then there are some, and each points at something in the document
    assert refs
    for ref in refs:
        resolve(doc, ref)


def test_operation_ids_are_unique_and_only_public_operations_skip_the_bearer_token(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When its operations are listed
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]

    # Then each has its own operationId, and all but the public ones require the bearer scheme
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    bearer = doc["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    public = {(path, method) for path, method, op in operations if "security" not in op}
    assert public == {
        ("/health", "get"),
        ("/openapi.json", "get"),
        ("/auth/demo/login", "post"),
        ("/auth/google/login", "post"),
    }
    for path, method, op in operations:
        if (path, method) not in public:
            assert op["security"] == [{"bearer": []}], (path, method)
            assert {"401", "403"} <= op["responses"].keys(), (path, method)


def test_a_handler_serving_several_methods_gets_one_operation_id_per_method(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When the update operations of a source are read
    item = doc["paths"]["/sources/{resource_id}"]

    # Then PUT and PATCH are told apart by a method suffix
    assert item["put"]["operationId"] == "update_source_put"
    assert item["patch"]["operationId"] == "update_source_patch"
    assert item["get"]["operationId"] == "get_source"


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("post", "/sources", models.SourceCreate),
        ("put", "/sources", models.SourceCreate),
        ("patch", "/sources/{resource_id}", models.SourceUpdate),
        ("post", "/destinations", models.DestinationCreate),
        ("put", "/destinations/{resource_id}", models.DestinationUpdate),
        ("post", "/connections", models.ConnectionCreate),
        ("put", "/connections", models.ConnectionUpsert),
        ("post", "/transformations", models.TransformationCreate),
        ("post", "/auth/google/login", models.GoogleLogin),
        ("patch", "/auth/me", models.ProfileUpdate),
        ("put", "/project-secrets", models.SecretsUpdate),
    ],
)
def test_request_bodies_are_the_schemas_of_the_models_that_validate_them(
    anon: Api, method: str, path: str, model: type[pydantic.BaseModel]
) -> None:
    # Given the schema pydantic makes of the model the handler validates its body with
    expected = model.model_json_schema(ref_template=REF, mode="validation")
    nested = expected.pop("$defs", {})

    # When the document's request body of the operation is read
    doc = fetch_document(anon)
    body = doc["paths"][path][method]["requestBody"]

    # Then it is that schema, with the nested models among the components
    assert body["required"] is True
    assert deref(doc, body["content"]["application/json"]["schema"]) == expected
    for name, schema in nested.items():
        assert doc["components"]["schemas"][name] == schema


def test_the_source_body_requires_a_name_and_lists_every_verification_type(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When the body of POST /sources is followed down to config.auth_type
    body = deref(doc, doc["paths"]["/sources"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    config = non_null(doc, body["properties"]["config"])
    auth_type = non_null(doc, config["properties"]["auth_type"])

    # Then name is required and every verification type is an enum value
    assert "name" in body["required"]
    assert set(auth_type["enum"]) == set(typing.get_args(models.SourceAuthType))
    assert {"HMAC", "STRIPE", "STANDARD_WEBHOOKS"} <= set(auth_type["enum"])


def test_an_optional_body_is_not_marked_required(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When the body of the rotate route, which may be empty, is read
    body = doc["paths"]["/project-secrets/rotate"]["post"]["requestBody"]

    # Then it is optional and still described by its model
    assert body["required"] is False
    assert body["content"]["application/json"]["schema"] == {"$ref": REF.format(model="SecretsRotate")}


def test_lists_answer_the_list_envelope_of_their_model(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When the response of GET /connections is read
    schema = doc["paths"]["/connections"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    # Then it is {models, pagination, count} with connections as models
    assert set(schema["required"]) == {"models", "pagination", "count"}
    assert schema["properties"]["models"]["items"] == {"$ref": REF.format(model="Connection")}
    pagination = deref(doc, schema["properties"]["pagination"])
    assert set(pagination["required"]) == {"order_by", "dir", "limit", "next", "prev"}
    assert {"order_by", "dir", "limit", "cursor"} <= {
        p["name"] for p in doc["paths"]["/connections"]["get"]["parameters"] if p["in"] == "query"
    }


def test_single_resources_answer_their_model_with_the_declared_status(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)

    # When the responses of creating and reading a destination are read
    create = doc["paths"]["/destinations"]["post"]["responses"]
    get = doc["paths"]["/destinations/{resource_id}"]["get"]["responses"]

    # Then create answers 201 and read 200, both with the Destination model
    destination = {"$ref": REF.format(model="Destination")}
    assert create["201"]["content"]["application/json"]["schema"] == destination
    assert get["200"]["content"]["application/json"]["schema"] == destination
    assert "Destination" in doc["components"]["schemas"]


def test_error_responses_follow_what_the_route_can_fail_on(anon: Api) -> None:
    # Given the served document
    doc = fetch_document(anon)
    paths = doc["paths"]

    # When the error statuses of a few routes are read
    def errors(path: str, method: str) -> set[str]:
        return {status for status in paths[path][method]["responses"] if status.startswith(("4", "5"))}

    # Then ids give 404, writes give 409, bodies give 413/422, and public routes skip 401/403
    # unless they declare them (a Google login can be refused)
    assert errors("/sources/{resource_id}", "get") == {"400", "401", "403", "404"}
    assert errors("/sources", "post") == {"400", "401", "403", "409", "413", "422"}
    assert errors("/auth/google/login", "post") == {"400", "401", "403", "413", "422"}
    assert errors("/sources/{resource_id}", "delete") == {"400", "401", "403", "404", "409"}
    assert errors("/health", "get") == set()
    assert set(paths["/sources"]["put"]["responses"]) >= {"200", "201"}
    assert errors("/auth/logout", "post") == {"400", "401", "403"}
    error = resolve(doc, REF.format(model="Error"))
    assert set(error["required"]) == {"error", "message"}
    assert {"code", "data", "field"} <= error["properties"].keys()
    for status in ("400", "401", "403", "404", "409", "422"):
        response = deref(doc, paths["/sources/{resource_id}"]["patch"]["responses"][status])
        assert response["content"]["application/json"]["schema"] == {"$ref": REF.format(model="Error")}
