"""In-memory fakes of every port, with the same conditions as the DynamoDB adapters.

Unit tests run use cases against these; the store contract suite runs the same assertions against
these fakes and against DynamoDB (moto), so a fake cannot quietly behave differently.
"""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta

from chalicelib.domain.errors import AlreadyExistsError, ConcurrentUpdateError
from chalicelib.ports import Doc


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 4, 17, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)


class MemoryControlStore:
    """ResourceStore and AccountStore in dicts, guarded by one lock like a transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str, str], Doc] = {}
        self._unique: dict[tuple[str, str, str], str] = {}
        self._refs: dict[str, str] = {}
        self._logins: dict[str, str] = {}
        self._users: dict[str, Doc] = {}
        self._teams: dict[str, Doc] = {}
        self._members: dict[str, dict[str, Doc]] = {}
        self._sessions: dict[str, Doc] = {}
        self._secrets: dict[str, Doc] = {}
        self._api_keys: dict[str, str] = {}

    # ---- ResourceStore ----------------------------------------------------------------------------

    def create(self, team_id: str, kind: str, doc: Doc, *, unique: str) -> None:
        with self._lock:
            claim = (team_id, kind, unique)
            if claim in self._unique:
                existing = copy.deepcopy(self._resources.get((team_id, kind, self._unique[claim])))
                raise AlreadyExistsError(f"A {kind} named {unique!r} already exists", data=existing)
            self._unique[claim] = doc["id"]
            self._resources[(team_id, kind, doc["id"])] = copy.deepcopy(doc)
            self._refs[doc["id"]] = team_id

    def get(self, team_id: str, kind: str, resource_id: str) -> Doc | None:
        return copy.deepcopy(self._resources.get((team_id, kind, resource_id)))

    def get_by_unique(self, team_id: str, kind: str, unique: str) -> Doc | None:
        rid = self._unique.get((team_id, kind, unique))
        return self.get(team_id, kind, rid) if rid else None

    def list(self, team_id: str, kind: str) -> list[Doc]:
        with self._lock:
            found = [(rid, doc) for (t, k, rid), doc in self._resources.items() if t == team_id and k == kind]
        return [copy.deepcopy(doc) for _, doc in sorted(found, key=lambda pair: pair[0])]

    def replace(
        self, team_id: str, kind: str, doc: Doc, *, expected_version: int, old_unique: str, unique: str
    ) -> None:
        with self._lock:
            key = (team_id, kind, doc["id"])
            current = self._resources.get(key)
            if current is None or current.get("version") != expected_version:
                raise ConcurrentUpdateError()
            if unique != old_unique:
                claim = (team_id, kind, unique)
                if claim in self._unique:
                    existing = copy.deepcopy(self._resources.get((team_id, kind, self._unique[claim])))
                    raise AlreadyExistsError(f"A {kind} named {unique!r} already exists", data=existing)
                self._unique[claim] = doc["id"]
                self._unique.pop((team_id, kind, old_unique), None)
            self._resources[key] = copy.deepcopy(doc)

    def delete(self, team_id: str, kind: str, resource_id: str, *, unique: str) -> bool:
        with self._lock:
            if self._resources.pop((team_id, kind, resource_id), None) is None:
                return False
            self._unique.pop((team_id, kind, unique), None)
            self._refs.pop(resource_id, None)
            return True

    def team_of(self, resource_id: str) -> str | None:
        return self._refs.get(resource_id)

    # ---- AccountStore -----------------------------------------------------------------------------

    def find_login(self, login_key: str) -> str | None:
        return self._logins.get(login_key)

    def create_account(self, login_key: str, user: Doc, team: Doc) -> bool:
        with self._lock:
            if login_key in self._logins:
                return False
            self._logins[login_key] = user["id"]
            self._users[user["id"]] = copy.deepcopy(user)
            self._teams[team["id"]] = copy.deepcopy(team)
            self._members.setdefault(user["id"], {})[team["id"]] = {
                "user_id": user["id"],
                "team_id": team["id"],
                "role": "owner",
                "team_name": team["name"],
                "created_at": team["created_at"],
            }
            return True

    def get_user(self, user_id: str) -> Doc | None:
        return copy.deepcopy(self._users.get(user_id))

    def update_user(self, user: Doc) -> None:
        with self._lock:
            if user["id"] not in self._users:
                raise ConcurrentUpdateError("The user no longer exists")
            self._users[user["id"]] = copy.deepcopy(user)

    def get_team(self, team_id: str) -> Doc | None:
        return copy.deepcopy(self._teams.get(team_id))

    def memberships(self, user_id: str) -> list[Doc]:
        members = self._members.get(user_id, {})
        return [copy.deepcopy(members[t]) for t in sorted(members)]

    def put_session(self, token_hash: str, session: Doc) -> None:
        self._sessions[token_hash] = copy.deepcopy(session)

    def get_session(self, token_hash: str) -> Doc | None:
        return copy.deepcopy(self._sessions.get(token_hash))

    def delete_session(self, token_hash: str) -> None:
        self._sessions.pop(token_hash, None)

    def get_secrets(self, team_id: str) -> Doc | None:
        return copy.deepcopy(self._secrets.get(team_id))

    def save_secrets(
        self, team_id: str, secrets: Doc, *, expected_version: int | None, old_key_hash: str | None, new_key_hash: str
    ) -> None:
        with self._lock:
            current = self._secrets.get(team_id)
            if expected_version is None and current is not None:
                raise ConcurrentUpdateError("The project secrets changed meanwhile; try again")
            if expected_version is not None and (current is None or current.get("version") != expected_version):
                raise ConcurrentUpdateError("The project secrets changed meanwhile; try again")
            if old_key_hash != new_key_hash:
                if new_key_hash in self._api_keys:
                    raise AlreadyExistsError("That API key is already in use; choose another")
                self._api_keys[new_key_hash] = team_id
                if old_key_hash is not None:
                    self._api_keys.pop(old_key_hash, None)
            self._secrets[team_id] = copy.deepcopy(secrets)

    def team_for_api_key(self, key_hash: str) -> str | None:
        return self._api_keys.get(key_hash)
