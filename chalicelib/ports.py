"""The dependencies of FastHook's use cases, one narrow Protocol each.

Adapters (`adapters/dynamo`, `adapters/memory.py`) implement them; only `wiring.py` knows both sides.
Stored documents are plain JSON-able dicts; every write that changes state is conditional and
raises a domain error when its condition fails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

Doc = dict[str, Any]


class Clock(Protocol):
    def now(self) -> datetime: ...


class ResourceStore(Protocol):
    """Team-scoped control resources (sources, destinations, connections, transformations).

    `kind` names the resource; `unique` is the value that must be unique per team and kind
    (a name, or `source_id/name` for connections). Every document carries `id` and `version`.
    """

    def create(self, team_id: str, kind: str, doc: Doc, *, unique: str) -> None:
        """Insert `doc`; AlreadyExistsError(data=existing) when `unique` is taken."""

    def get(self, team_id: str, kind: str, resource_id: str) -> Doc | None: ...

    def get_by_unique(self, team_id: str, kind: str, unique: str) -> Doc | None: ...

    def list(self, team_id: str, kind: str) -> list[Doc]: ...

    def replace(
        self, team_id: str, kind: str, doc: Doc, *, expected_version: int, old_unique: str, unique: str
    ) -> None:
        """Write `doc` (version already bumped) if the stored version is `expected_version`.

        ConcurrentUpdateError when it moved on or vanished; AlreadyExistsError when `unique` changed
        to a value another resource holds.
        """

    def delete(self, team_id: str, kind: str, resource_id: str, *, unique: str) -> bool:
        """Remove the resource and its unique claim; False when it was already gone."""

    def team_of(self, resource_id: str) -> str | None:
        """The team that owns a resource id, for entry points that only know the id (ingest)."""


class AccountStore(Protocol):
    """Users, teams, memberships, sessions and project secrets."""

    def find_login(self, login_key: str) -> str | None:
        """The user id linked to an external login (`demo`, `google#<sub>`)."""

    def create_account(self, login_key: str, user: Doc, team: Doc) -> bool:
        """Create user, team, membership and login link at once; False if the login already existed."""

    def get_user(self, user_id: str) -> Doc | None: ...

    def update_user(self, user: Doc) -> None: ...

    def get_team(self, team_id: str) -> Doc | None: ...

    def memberships(self, user_id: str) -> list[Doc]: ...

    def put_session(self, token_hash: str, session: Doc) -> None: ...

    def get_session(self, token_hash: str) -> Doc | None: ...

    def delete_session(self, token_hash: str) -> None: ...

    def get_secrets(self, team_id: str) -> Doc | None: ...

    def save_secrets(
        self, team_id: str, secrets: Doc, *, expected_version: int | None, old_key_hash: str | None, new_key_hash: str
    ) -> None:
        """Store the team's secrets and move the API-key lookup from the old hash to the new one.

        expected_version None means "create": ConcurrentUpdateError if secrets already exist.
        AlreadyExistsError if another team holds the new API key.
        """

    def team_for_api_key(self, key_hash: str) -> str | None: ...
