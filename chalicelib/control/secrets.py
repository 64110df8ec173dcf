"""Project secrets: the team's API key (`fhp_...`) and the signing secret of outbound deliveries.

Created lazily on first read. Rotating or replacing the API key removes the old key's lookup in the
same transaction, so the old key stops working the moment the response returns.
"""

from __future__ import annotations

import secrets as random

from chalicelib.control.auth import hash_token
from chalicelib.domain.errors import ConcurrentUpdateError
from chalicelib.domain.timefmt import iso
from chalicelib.ports import AccountStore, Clock, Doc

API_KEY_PREFIX = "fhp_"
SIGNING_PREFIX = "fhw_"
NAMES = ("api_key", "signing_secret")


def _generate(name: str) -> str:
    return (API_KEY_PREFIX if name == "api_key" else SIGNING_PREFIX) + random.token_urlsafe(32)


def mask(value: str) -> str:
    head = value[:4] if value.startswith((API_KEY_PREFIX, SIGNING_PREFIX)) else ""
    return f"{head}{'*' * 12}{value[-4:]}"


def present_secrets(team_id: str, doc: Doc) -> Doc:
    return {
        "team_id": team_id,
        **{
            name: {"value": doc[name], "masked_value": mask(doc[name]), "last_rotated_at": doc[f"{name}_rotated_at"]}
            for name in NAMES
        },
    }


def _load_or_create(team_id: str, accounts: AccountStore, clock: Clock) -> Doc:
    doc = accounts.get_secrets(team_id)
    if doc is not None:
        return doc
    now = iso(clock.now())
    doc = {
        "version": 1,
        "api_key": _generate("api_key"),
        "signing_secret": _generate("signing_secret"),
        "api_key_rotated_at": now,
        "signing_secret_rotated_at": now,
    }
    try:
        accounts.save_secrets(
            team_id, doc, expected_version=None, old_key_hash=None, new_key_hash=hash_token(doc["api_key"])
        )
    except ConcurrentUpdateError:
        # Two first reads raced; the winner's secrets are the team's secrets.
        stored = accounts.get_secrets(team_id)
        if stored is None:
            raise
        return stored
    return doc


def get_project_secrets(*, team_id: str, accounts: AccountStore, clock: Clock) -> Doc:
    return present_secrets(team_id, _load_or_create(team_id, accounts, clock))


def _change(team_id: str, values: dict[str, str], accounts: AccountStore, clock: Clock) -> Doc:
    current = _load_or_create(team_id, accounts, clock)
    now = iso(clock.now())
    updated = dict(current, version=current["version"] + 1)
    for name, value in values.items():
        updated[name] = value
        updated[f"{name}_rotated_at"] = now
    accounts.save_secrets(
        team_id,
        updated,
        expected_version=current["version"],
        old_key_hash=hash_token(current["api_key"]),
        new_key_hash=hash_token(updated["api_key"]),
    )
    return present_secrets(team_id, updated)


def update_project_secrets(
    *, team_id: str, api_key: str | None, signing_secret: str | None, accounts: AccountStore, clock: Clock
) -> Doc:
    values = {k: v for k, v in (("api_key", api_key), ("signing_secret", signing_secret)) if v is not None}
    return _change(team_id, values, accounts, clock)


def rotate_project_secrets(*, team_id: str, names: list[str] | None, accounts: AccountStore, clock: Clock) -> Doc:
    chosen = list(dict.fromkeys(names)) if names else list(NAMES)
    return _change(team_id, {name: _generate(name) for name in chosen}, accounts, clock)
