"""Authentication routes: demo and Google logins, the caller's profile, logout."""

from __future__ import annotations

from typing import Any

from chalicelib.control import auth
from chalicelib.domain.models import GoogleLogin, ProfileUpdate
from chalicelib.entrypoints.api import Api, Call, Reply

api = Api("auth", "Authentication")

SESSION = {
    "type": "object",
    "required": ["token", "user", "session", "memberships"],
    "properties": {
        "token": {"type": "string"},
        "user": {"type": "object"},
        "team": {"type": ["object", "null"]},
        "session": {"type": "object"},
        "memberships": {"type": "array"},
    },
}
PROFILE = {
    "type": "object",
    "required": ["team", "memberships"],
    "properties": {
        "user": {"type": ["object", "null"]},
        "team": {"type": ["object", "null"]},
        "session": {"type": ["object", "null"]},
        "memberships": {"type": "array"},
    },
}


@api.route("/auth/demo/login", ["POST"], summary="Log in as the demo user", public=True, response=SESSION)
def demo_login(call: Call) -> dict[str, Any]:
    deps = call.deps
    return auth.login_demo(accounts=deps.accounts, clock=deps.clock, session_ttl_s=deps.settings.session_ttl_s)


@api.route(
    "/auth/google/login",
    ["POST"],
    summary="Log in with a Google ID token",
    public=True,
    body=GoogleLogin,
    response=SESSION,
    errors=(401, 403),
)
def google_login(call: Call) -> dict[str, Any]:
    deps, body = call.deps, call.body
    return auth.login_google(
        credential=body.credential,
        team_id=body.team_id,
        verifier=deps.identity,
        accounts=deps.accounts,
        clock=deps.clock,
        session_ttl_s=deps.settings.session_ttl_s,
    )


@api.route("/auth/me", ["GET"], summary="The caller's profile, team, session and memberships", response=PROFILE)
def me(call: Call) -> dict[str, Any]:
    assert call.principal is not None
    return auth.get_profile(principal=call.principal, accounts=call.deps.accounts)


@api.route("/auth/me", ["PATCH", "PUT"], summary="Update the caller's profile", body=ProfileUpdate, response=PROFILE)
def update_me(call: Call) -> dict[str, Any]:
    assert call.principal is not None
    return auth.update_profile(
        principal=call.principal, name=call.body.name, accounts=call.deps.accounts, clock=call.deps.clock
    )


@api.route(
    "/auth/logout",
    ["POST"],
    summary="End the current session token",
    response={"type": "object", "properties": {"status": {"type": "string"}}},
)
def logout(call: Call) -> Reply:
    assert call.principal is not None
    auth.logout(principal=call.principal, accounts=call.deps.accounts)
    return Reply({"status": "logged_out"})
