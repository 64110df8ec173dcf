"""`make package`: chalice's SAM template with infra/api_extras.json merged in, checked without AWS.

The deployed API must answer an unknown route with a 404 in FastHook's `{error, message}` shape, which
only API Gateway can do (the request never reaches the Lambda). Packaging runs on a copy of the app
with no third-party requirements: the template does not depend on them, and downloading Linux wheels
is `make package`'s business, not a test's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import ENV_NAMES

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).parent / "chalice"
# Lambda sets the region itself, and AWS is the endpoint in AWS.
NOT_IN_LAMBDA = {"AWS_DEFAULT_REGION", "FASTHOOK_AWS_ENDPOINT"}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT_DIR / "app.py", project)
    for folder in ("chalicelib", "infra"):
        shutil.copytree(PROJECT_DIR / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", project / ".chalice")
    (project / "requirements.txt").write_text("")
    out = project / "build" / "package"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    command = [str(CHALICE), "package", "--merge-template", "infra/api_extras.json", str(out)]
    result = subprocess.run(  # noqa: S603 (a fixed argv built above)
        command,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def template(package: Path) -> dict[str, Any]:
    return json.loads((package / "sam.json").read_text())


def _gateway_responses(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        resource["Properties"]["ResponseType"]: resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ApiGateway::GatewayResponse"
    }


def test_unknown_route_in_the_deployed_api_is_a_json_404(template: dict[str, Any]) -> None:
    # When
    response = _gateway_responses(template)["MISSING_AUTHENTICATION_TOKEN"]

    # Then
    assert response["StatusCode"] == "404"
    assert response["RestApiId"] == {"Ref": "RestAPI"}
    assert template["Resources"]["RestAPI"]["Type"] == "AWS::Serverless::Api"
    rendered = re.sub(
        r"\$context\.(\w+)",
        lambda m: {"httpMethod": "GET", "path": "/api/nope"}[m.group(1)],
        response["ResponseTemplates"]["application/json"],
    )
    assert json.loads(rendered) == {"error": "not_found", "message": "No route for GET /api/nope"}


def test_every_gateway_response_is_also_in_the_api_definition(template: dict[str, Any]) -> None:
    # Given
    definition = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]

    # When
    in_definition = definition["x-amazon-apigateway-gateway-responses"]

    # Then: the same responses, so re-importing the definition cannot drop one, and the routes survive the merge
    assert {kind: (entry.get("statusCode"), entry["responseTemplates"]) for kind, entry in in_definition.items()} == {
        kind: (props.get("StatusCode"), props["ResponseTemplates"])
        for kind, props in _gateway_responses(template).items()
    }
    assert "/v1/sources" in definition["paths"]


def test_every_gateway_response_body_has_error_and_message(template: dict[str, Any]) -> None:
    # When
    bodies = {
        kind: re.sub(
            r"\$context\.error\.messageString",
            '"Limit Exceeded"',
            re.sub(r"\$context\.(httpMethod|path)", "x", props["ResponseTemplates"]["application/json"]),
        )
        for kind, props in _gateway_responses(template).items()
    }

    # Then
    for kind, body in bodies.items():
        assert set(json.loads(body)) == {"error", "message"}, kind


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_stage_sets_every_setting_the_lambdas_read(stage: str) -> None:
    # Given
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())

    # When
    names = {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}

    # Then
    assert set(names) == set(ENV_NAMES.values()) - NOT_IN_LAMBDA
    assert names["FASTHOOK_STAGE"] == stage


def test_chalice_package_declares_the_queue_workers_the_sweeper_and_ingest(template: dict[str, Any]) -> None:
    # Given
    functions = {
        key: res["Properties"]
        for key, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    # Then: each worker is subscribed to its own queue, the sweeper runs every minute, ingest stands alone
    for function, queue in (("RouteWorker", "route"), ("DeliverWorker", "deliver")):
        [event] = functions[function]["Events"].values()
        assert event["Type"] == "SQS"
        assert json.dumps(event["Properties"]["Queue"]).endswith(f'fasthook-dev-{queue}"}}')
        assert event["Properties"]["BatchSize"] == 10
    [schedule] = functions["Sweeper"]["Events"].values()
    assert schedule == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    assert "Events" not in functions["Ingest"]
    assert functions["DeliverWorker"]["Timeout"] == 75


def test_the_deployment_package_ships_the_dashboard_page_and_its_assets(package: Path) -> None:
    # Given the dashboard's files in the repo
    dashboard = PROJECT_DIR / "chalicelib" / "dashboard"
    expected = {f"chalicelib/dashboard/{p.name}" for p in dashboard.iterdir() if p.suffix in (".html", ".js", ".css")}

    # When the Lambda zip is opened
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        shipped = set(archive.namelist())

    # Then every page, module and stylesheet is in it, next to the code that serves them
    assert "chalicelib/dashboard/index.html" in expected
    assert expected <= shipped
    assert "chalicelib/entrypoints/dashboard.py" in shipped
