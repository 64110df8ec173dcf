"""The state of a bulk operation's execution, as Step Functions passes it between tasks: ids, never items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import BadRequestError

VERSION = 1


@dataclass(frozen=True)
class BulkTaskInput:
    """What each task gets and hands on; `more` tells the state machine's loop to run the pages task again."""

    team_id: str
    operation_id: str
    more: bool = False
    status: str = ""
    version: int = VERSION

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> BulkTaskInput:
        try:
            team_id, operation_id, version = raw["team_id"], raw["operation_id"], int(raw.get("version", VERSION))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequestError(f"not a bulk task input: {exc}") from exc
        if version != VERSION or not isinstance(team_id, str) or not isinstance(operation_id, str):
            raise BadRequestError(f"not a bulk task input of version {VERSION}")
        return cls(team_id, operation_id)

    def answer(self, *, status: str, more: bool) -> dict[str, Any]:
        return {
            "team_id": self.team_id,
            "operation_id": self.operation_id,
            "version": self.version,
            "status": status,
            "more": more,
        }
