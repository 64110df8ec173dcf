"""Who is calling and for which team: logins, sessions, profiles and bearer-token resolution.

A bearer token is either a session token (`fht_...`, from a login) or a team's project API key.
Only SHA-256 hashes of tokens are stored. The team is `x-team-id`, then `team_id`, then the
principal's default team; naming a team the principal is not a member of is a 403.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from chalicelib.domain.errors import BadRequestError, ForbiddenError, UnauthorizedError
from chalicelib.domain.identity import ExternalIdentity, IdentityVerifier
from chalicelib.domain.ids import Prefix, new_id
from chalicelib.domain.timefmt import iso
from chalicelib.ports import AccountStore, Clock, Doc

SESSION_PREFIX = "fht_"
DEMO_LOGIN = "demo"


@dataclass(frozen=True)
class Principal:
    kind: str  # "session" or "api_key"
    team_id: str
    user_id: str | None
    token_hash: str
    session_expires_at: str | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(
    *, authorization: str | None, requested_team: str | None, accounts: AccountStore, clock: Clock
) -> Principal:
    token = _bearer(authorization)
    token_hash = hash_token(token)
    if token.startswith(SESSION_PREFIX):
        session = accounts.get_session(token_hash)
        # TTL deletion is lazy (and never happens on moto): expiry is checked on every read.
        if session is None or session["expires_at_epoch"] <= clock.now().timestamp():
            raise UnauthorizedError("The session token is invalid or has expired; log in again")
        user_id = session["user_id"]
        teams = [m["team_id"] for m in accounts.memberships(user_id)]
        team_id = requested_team or session.get("team_id") or (teams[0] if teams else None)
        if team_id not in teams:
            raise ForbiddenError(f"You are not a member of team {team_id!s:.64}")
        return Principal("session", team_id, user_id, token_hash, session["expires_at"])
    team_id = accounts.team_for_api_key(token_hash)
    if team_id is None:
        raise UnauthorizedError("The bearer token is not a valid API key or session token")
    if requested_team and requested_team != team_id:
        raise ForbiddenError("This API key belongs to another team")
    return Principal("api_key", team_id, None, token_hash)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise UnauthorizedError("Authorization header is missing; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("Authorization header must be 'Bearer <token>'")
    return token


def _new_account(identity: ExternalIdentity, team_name: str, clock: Clock) -> tuple[Doc, Doc]:
    now = iso(clock.now())
    team = {"id": new_id(Prefix.TEAM), "name": team_name, "created_at": now, "retention_days": 30}
    user = {
        "id": new_id(Prefix.USER),
        "email": identity.email,
        "name": identity.name or identity.email,
        "picture_url": identity.picture_url,
        "default_team_id": team["id"],
        "created_at": now,
        "updated_at": now,
    }
    return user, team


def _ensure_account(
    login_key: str, identity: ExternalIdentity, team_name: str, accounts: AccountStore, clock: Clock
) -> Doc:
    user_id = accounts.find_login(login_key)
    if user_id is None:
        user, team = _new_account(identity, team_name, clock)
        if accounts.create_account(login_key, user, team):
            return user
        # Another first login won the race; use the account it created.
        user_id = accounts.find_login(login_key)
    user = accounts.get_user(user_id) if user_id else None
    if user is None:
        raise UnauthorizedError("The account for this login is incomplete; try again")
    return user


def _start_session(user: Doc, team_id: str | None, accounts: AccountStore, clock: Clock, ttl_s: int) -> Doc:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = clock.now() + timedelta(seconds=ttl_s)
    memberships = accounts.memberships(user["id"])
    teams = [m["team_id"] for m in memberships]
    active = team_id if team_id in teams else user.get("default_team_id")
    if team_id and team_id not in teams:
        raise ForbiddenError(f"You are not a member of team {team_id:.64}")
    accounts.put_session(
        hash_token(token),
        {
            "user_id": user["id"],
            "team_id": active,
            "expires_at": iso(expires),
            "expires_at_epoch": int(expires.timestamp()),
            "created_at": iso(clock.now()),
        },
    )
    return {
        "token": token,
        "user": present_user(user),
        "team": _team_summary(active, accounts),
        "session": {"expires_at": iso(expires)},
        "memberships": [_membership(m) for m in memberships],
    }


def login_demo(*, accounts: AccountStore, clock: Clock, session_ttl_s: int) -> Doc:
    """Every demo login starts a new session for the one demo user and team (created on first use)."""
    identity = ExternalIdentity(
        provider="demo",
        subject="demo",
        email="demo@fasthook.local",
        email_verified=True,
        name="Demo User",
        picture_url=None,
    )
    user = _ensure_account(DEMO_LOGIN, identity, "Demo team", accounts, clock)
    return _start_session(user, None, accounts, clock, session_ttl_s)


def login_google(
    *,
    credential: str,
    team_id: str | None,
    verifier: IdentityVerifier,
    accounts: AccountStore,
    clock: Clock,
    session_ttl_s: int,
) -> Doc:
    identity = verifier.verify(credential)
    if not identity.email_verified:
        raise UnauthorizedError("The Google account's email address is not verified")
    team_name = f"{identity.name or identity.email.split('@')[0]}'s team"
    user = _ensure_account(f"google#{identity.subject}", identity, team_name[:120], accounts, clock)
    return _start_session(user, team_id, accounts, clock, session_ttl_s)


def get_profile(*, principal: Principal, accounts: AccountStore) -> Doc:
    user = accounts.get_user(principal.user_id) if principal.user_id else None
    memberships = (
        accounts.memberships(principal.user_id)
        if principal.user_id
        else [{"team_id": principal.team_id, "role": "api_key"}]
    )
    return {
        "user": present_user(user) if user else None,
        "team": _team_summary(principal.team_id, accounts),
        "session": {"expires_at": principal.session_expires_at} if principal.kind == "session" else None,
        "auth": principal.kind,
        "memberships": [_membership(m) for m in memberships],
    }


def update_profile(*, principal: Principal, name: str, accounts: AccountStore, clock: Clock) -> Doc:
    if principal.user_id is None:
        raise ForbiddenError("Profile updates require a user session, not an API key")
    user = accounts.get_user(principal.user_id)
    if user is None:
        raise UnauthorizedError("The user of this session no longer exists")
    user.update(name=name, updated_at=iso(clock.now()))
    accounts.update_user(user)
    return get_profile(principal=principal, accounts=accounts)


def logout(*, principal: Principal, accounts: AccountStore) -> None:
    if principal.kind != "session":
        raise BadRequestError("Logout ends a session token; revoke an API key by rotating project secrets")
    accounts.delete_session(principal.token_hash)


def present_user(user: Doc) -> Doc:
    return {k: user.get(k) for k in ("id", "email", "name", "picture_url", "created_at")}


def _membership(m: Doc) -> Doc:
    return {"team_id": m["team_id"], "team_name": m.get("team_name"), "role": m.get("role", "member")}


def _team_summary(team_id: str | None, accounts: AccountStore) -> Doc | None:
    team = accounts.get_team(team_id) if team_id else None
    return {"id": team["id"], "name": team["name"]} if team else None
