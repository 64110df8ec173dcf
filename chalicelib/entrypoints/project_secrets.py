"""Project secrets routes: the team's API key and outbound signing secret."""

from __future__ import annotations

from typing import Any

from chalicelib.control import secrets
from chalicelib.domain.models import SecretsRotate, SecretsUpdate
from chalicelib.entrypoints.api import Api, Call

api = Api("project_secrets", "Project secrets")

_SECRET = {
    "type": "object",
    "properties": {
        "value": {"type": "string"},
        "masked_value": {"type": "string"},
        "last_rotated_at": {"type": "string"},
    },
}
SECRETS = {
    "type": "object",
    "required": ["team_id", "api_key", "signing_secret"],
    "properties": {"team_id": {"type": "string"}, "api_key": _SECRET, "signing_secret": _SECRET},
}


@api.route("/project-secrets", ["GET"], summary="Get project secrets (created on first read)", response=SECRETS)
def get_secrets(call: Call) -> dict[str, Any]:
    return secrets.get_project_secrets(team_id=call.team_id, accounts=call.deps.accounts, clock=call.deps.clock)


@api.route("/project-secrets", ["PUT"], summary="Set one or both secrets", body=SecretsUpdate, response=SECRETS)
def put_secrets(call: Call) -> dict[str, Any]:
    return secrets.update_project_secrets(
        team_id=call.team_id,
        api_key=call.body.api_key,
        signing_secret=call.body.signing_secret,
        accounts=call.deps.accounts,
        clock=call.deps.clock,
    )


@api.route(
    "/project-secrets/rotate",
    ["POST"],
    summary="Rotate both secrets, or those named in rotate",
    body=SecretsRotate,
    body_required=False,
    response=SECRETS,
)
def rotate_secrets(call: Call) -> dict[str, Any]:
    return secrets.rotate_project_secrets(
        team_id=call.team_id, names=call.body.rotate, accounts=call.deps.accounts, clock=call.deps.clock
    )
