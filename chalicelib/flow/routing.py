"""The workers' copy of each team's routing configuration, trusted only while its version holds.

Routing reads every connection of a source, its destination, and the transformations its rules
name, for every request; delivering reads the event's connection, destination and source for every
try. Reading them each time would cost several reads per webhook; reading them once per team and
process, and then one small version item per request or try, costs one. The
version is bumped by every resource write of the team (`ResourceStore.routing_version`), so a
change (pause, disable, new rules) applies to the very next request: DESIGN.md allows caches only
when they are validated against such a version, never by a timer alone.

A snapshot also holds each connection's rules already parsed into rule models, so the hot path
never re-validates stored JSON.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from chalicelib.control.resources import CONNECTION, DESTINATION, SOURCE, TRANSFORMATION
from chalicelib.domain import rules as rules_domain
from chalicelib.domain.errors import ValidationError
from chalicelib.ports import Doc, ResourceStore

# A Lambda container serves many teams over its life; this bounds the memory their snapshots take.
DEFAULT_MAX_TEAMS = 512


@dataclass(frozen=True)
class Branch:
    """One connection as routing runs it: the stored document plus its rules, parsed once.

    `rules_error` is set when the stored rules no longer parse (the control API validates them on
    save, so this means stored data from an older FastHook); routing then refuses the branch.
    """

    connection: Doc
    rules: tuple[rules_domain.Rule, ...] = ()
    rules_error: str | None = None

    @property
    def id(self) -> str:
        return str(self.connection["id"])


@dataclass(frozen=True)
class RoutingSnapshot:
    """Every routing resource of a team at one `version`. Shared between requests: read it, never change it."""

    version: int
    sources: Mapping[str, Doc] = field(default_factory=dict)
    connections: Mapping[str, Doc] = field(default_factory=dict)
    destinations: Mapping[str, Doc] = field(default_factory=dict)
    transformations: Mapping[str, Doc] = field(default_factory=dict)
    by_source: Mapping[str, tuple[Branch, ...]] = field(default_factory=dict)

    def branches(self, source_id: str) -> tuple[Branch, ...]:
        """The connections of `source_id` in creation order (created_at, then id)."""
        return self.by_source.get(source_id, ())

    @classmethod
    def build(cls, version: int, resources: Mapping[str, list[Doc]]) -> RoutingSnapshot:
        def by_id(kind: str) -> Mapping[str, Doc]:
            return MappingProxyType({doc["id"]: doc for doc in resources.get(kind, [])})

        grouped: dict[str, list[Branch]] = {}
        connections = sorted(resources.get(CONNECTION.name, []), key=lambda d: (d.get("created_at", ""), d["id"]))
        for doc in connections:
            grouped.setdefault(doc["source_id"], []).append(_compile(doc))
        return cls(
            version=version,
            sources=by_id(SOURCE.name),
            connections=by_id(CONNECTION.name),
            destinations=by_id(DESTINATION.name),
            transformations=by_id(TRANSFORMATION.name),
            by_source=MappingProxyType({source_id: tuple(branches) for source_id, branches in grouped.items()}),
        )


def _compile(connection: Doc) -> Branch:
    try:
        parsed = rules_domain.parse_rules(connection.get("rules") or [])
    except ValidationError as exc:
        return Branch(connection=connection, rules_error=exc.message)
    return Branch(connection=connection, rules=tuple(parsed))


class RoutingCache:
    """Snapshots per team, one version read per use and a full reload only when the version moved.

    One instance lives per process (in the wiring Container); it is safe to share between threads.
    Two threads that find the same stale snapshot may both reload it, which costs a read, not
    correctness.
    """

    def __init__(self, *, max_teams: int = DEFAULT_MAX_TEAMS) -> None:
        self._max_teams = max_teams
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, RoutingSnapshot] = OrderedDict()

    def snapshot(self, team_id: str, resources: ResourceStore) -> RoutingSnapshot:
        # The version is read before the resources, never after: a write that lands between the two
        # reads leaves a snapshot newer than its label, which the next call reloads. The other order
        # could label old resources with the new version and keep them until the next change.
        version = resources.routing_version(team_id)
        with self._lock:
            cached = self._snapshots.get(team_id)
            if cached is not None and cached.version == version:
                self._snapshots.move_to_end(team_id)
                return cached
        fresh = RoutingSnapshot.build(version, resources.team_resources(team_id))
        with self._lock:
            self._snapshots[team_id] = fresh
            self._snapshots.move_to_end(team_id)
            while len(self._snapshots) > self._max_teams:
                self._snapshots.popitem(last=False)
        return fresh
