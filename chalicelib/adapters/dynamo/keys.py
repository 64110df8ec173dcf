"""Every DynamoDB key FastHook writes, one function per access pattern; docs/dynamodb.md has one row each."""

from __future__ import annotations

Key = dict[str, dict[str, str]]


def _key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def team_partition(team_id: str) -> str:
    return f"TEAM#{team_id}"


def resource(team_id: str, kind: str, resource_id: str) -> Key:
    """A control resource inside its team's partition: lists are one strongly consistent Query."""
    return _key(team_partition(team_id), f"{kind.upper()}#{resource_id}")


def resource_prefix(kind: str) -> str:
    return f"{kind.upper()}#"


def resource_unique(team_id: str, kind: str, unique: str) -> Key:
    """Claim on a unique name per team and kind; written in the same transaction as the resource."""
    return _key(team_partition(team_id), f"{kind.upper()}_NAME#{unique}")


def resource_ref(resource_id: str) -> Key:
    """Id -> owning team, for callers that only hold an id (the ingest URL carries only src_...)."""
    return _key(f"REF#{resource_id}", "REF")


def team(team_id: str) -> Key:
    return _key(team_partition(team_id), "TEAM")


def user(user_id: str) -> Key:
    return _key(f"USER#{user_id}", "PROFILE")


def membership(user_id: str, team_id: str) -> Key:
    return _key(f"USER#{user_id}", f"MEMBER#{team_id}")


def membership_prefix() -> str:
    return "MEMBER#"


def user_partition(user_id: str) -> str:
    return f"USER#{user_id}"


def login(login_key: str) -> Key:
    """External login (`demo`, `google#<sub>`) -> user; its conditional put makes first login create once."""
    return _key(f"LOGIN#{login_key}", "LOGIN")


def session(token_hash: str) -> Key:
    return _key(f"SESSION#{token_hash}", "SESSION")


def secrets(team_id: str) -> Key:
    return _key(team_partition(team_id), "SECRETS")


def api_key(key_hash: str) -> Key:
    """API key hash -> team; the key itself is never a key attribute."""
    return _key(f"APIKEY#{key_hash}", "APIKEY")
