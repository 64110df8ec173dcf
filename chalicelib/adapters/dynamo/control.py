"""The control table on DynamoDB: resources, accounts, sessions and project secrets.

Documents are stored as one JSON string attribute (`doc`) next to the keys and the `version` that
conditional writes compare; that keeps items small and avoids DynamoDB's number conversions.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamo import keys
from chalicelib.domain.errors import AlreadyExistsError, ConcurrentUpdateError
from chalicelib.ports import TEAM_RETENTION_DAYS, Doc


def _dump(doc: Doc) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _load(item: dict[str, Any] | None) -> Doc | None:
    if not item or "doc" not in item:
        return None
    return json.loads(item["doc"]["S"])


def _cancel_reasons(exc: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]


class DynamoControlStore:
    """ResourceStore and AccountStore on the control table."""

    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    # ---- helpers --------------------------------------------------------------------------------

    def _get(self, key: keys.Key) -> dict[str, Any] | None:
        return self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")

    def _query_all(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)" if prefix else "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":prefix": {"S": prefix}} if prefix else {})},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _doc_item(self, key: keys.Key, doc: Doc, **extra: dict[str, str]) -> dict[str, Any]:
        return {**key, "doc": {"S": _dump(doc)}, "version": {"N": str(doc.get("version", 0))}, **extra}

    def _ref_item(self, team_id: str, kind: str, doc: Doc) -> dict[str, Any]:
        item = {
            **keys.resource_ref(doc["id"]),
            "team_id": {"S": team_id},
            "kind": {"S": kind},
            "doc": {"S": _dump(doc)},
        }
        if kind == "source":
            # Ingest reads only this item: it carries the team's retention so records expire on the
            # team's schedule without a second read on the hot path (a control write may read).
            team = self.get_team(team_id) or {}
            if isinstance(team.get("retention_days"), int):
                item["retention_days"] = {"N": str(team["retention_days"])}
        return item

    def _bump(self, team_id: str) -> dict[str, Any]:
        """Routing caches compare this counter, so every resource write moves it in the same transaction."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.routing(team_id),
                "UpdateExpression": "ADD version :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }

    # ---- ResourceStore ----------------------------------------------------------------------------

    def create(self, team_id: str, kind: str, doc: Doc, *, unique: str) -> None:
        rid = doc["id"]
        try:
            self._db.transact_write_items(
                TransactItems=[
                    # Named condition "name is free": the claim item is what makes names unique per team.
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {**keys.resource_unique(team_id, kind, unique), "id": {"S": rid}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    # "id is new": ids are random, so this only guards against a replayed write.
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._doc_item(keys.resource(team_id, kind, rid), doc),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": self._ref_item(team_id, kind, doc)}},
                    self._bump(team_id),
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            existing = self.get_by_unique(team_id, kind, unique)
            raise AlreadyExistsError(f"A {kind} named {unique!r} already exists", data=existing) from exc

    def get(self, team_id: str, kind: str, resource_id: str) -> Doc | None:
        return _load(self._get(keys.resource(team_id, kind, resource_id)))

    def get_by_unique(self, team_id: str, kind: str, unique: str) -> Doc | None:
        claim = self._get(keys.resource_unique(team_id, kind, unique))
        if not claim:
            return None
        return self.get(team_id, kind, claim["id"]["S"])

    def list(self, team_id: str, kind: str) -> list[Doc]:
        items = self._query_all(keys.team_partition(team_id), keys.resource_prefix(kind))
        return [doc for doc in (_load(i) for i in items) if doc is not None]

    def replace(
        self, team_id: str, kind: str, doc: Doc, *, expected_version: int, old_unique: str, unique: str
    ) -> None:
        rid = doc["id"]
        ops: list[dict[str, Any]] = [
            # "nobody changed it since we read it": optimistic concurrency on the version number.
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._doc_item(keys.resource(team_id, kind, rid), doc),
                    "ConditionExpression": "version = :expected",
                    "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
                }
            },
        ]
        if unique != old_unique:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**keys.resource_unique(team_id, kind, unique), "id": {"S": rid}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            ops.append({"Delete": {"TableName": self._table, "Key": keys.resource_unique(team_id, kind, old_unique)}})
        ops += [{"Put": {"TableName": self._table, "Item": self._ref_item(team_id, kind, doc)}}, self._bump(team_id)]
        try:
            self._db.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = _cancel_reasons(exc)
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                existing = self.get_by_unique(team_id, kind, unique)
                raise AlreadyExistsError(f"A {kind} named {unique!r} already exists", data=existing) from exc
            raise ConcurrentUpdateError() from exc

    def delete(self, team_id: str, kind: str, resource_id: str, *, unique: str) -> bool:
        try:
            self._db.transact_write_items(
                TransactItems=[
                    # "still there": a second delete reports not-found instead of succeeding twice.
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": keys.resource(team_id, kind, resource_id),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"TableName": self._table, "Key": keys.resource_unique(team_id, kind, unique)}},
                    {"Delete": {"TableName": self._table, "Key": keys.resource_ref(resource_id)}},
                    self._bump(team_id),
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def team_of(self, resource_id: str) -> str | None:
        item = self._get(keys.resource_ref(resource_id))
        return item["team_id"]["S"] if item else None

    def lookup(self, resource_id: str) -> tuple[str, Doc] | None:
        item = self._get(keys.resource_ref(resource_id))
        doc = _load(item)
        if not item or doc is None:
            return None
        if "retention_days" in item:
            doc[TEAM_RETENTION_DAYS] = int(item["retention_days"]["N"])
        return item["team_id"]["S"], doc

    def routing_version(self, team_id: str) -> int:
        item = self._get(keys.routing(team_id))
        return int(item["version"]["N"]) if item and "version" in item else 0

    def team_resources(self, team_id: str) -> dict[str, list[Doc]]:
        out: dict[str, list[Doc]] = {}
        for item in self._query_all(keys.team_partition(team_id), ""):
            kind, sep, _ = item["sk"]["S"].partition("#")
            doc = _load(item) if sep and not kind.endswith("_NAME") else None
            if doc is not None and "id" in doc:
                out.setdefault(kind.lower(), []).append(doc)
        return out

    # ---- AccountStore -----------------------------------------------------------------------------

    def find_login(self, login_key: str) -> str | None:
        item = self._get(keys.login(login_key))
        return item["user_id"]["S"] if item else None

    def create_account(self, login_key: str, user: Doc, team: Doc) -> bool:
        membership = {
            "user_id": user["id"],
            "team_id": team["id"],
            "role": "owner",
            "team_name": team["name"],
            "created_at": team["created_at"],
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    # "first login": concurrent first logins create exactly one user and team.
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {**keys.login(login_key), "user_id": {"S": user["id"]}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self._table, "Item": self._doc_item(keys.user(user["id"]), user)}},
                    {"Put": {"TableName": self._table, "Item": self._doc_item(keys.team(team["id"]), team)}},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": self._doc_item(keys.membership(user["id"], team["id"]), membership),
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def get_user(self, user_id: str) -> Doc | None:
        return _load(self._get(keys.user(user_id)))

    def update_user(self, user: Doc) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=self._doc_item(keys.user(user["id"]), user),
            # "user exists": a profile update never resurrects a user.
            ConditionExpression="attribute_exists(pk)",
        )

    def get_team(self, team_id: str) -> Doc | None:
        return _load(self._get(keys.team(team_id)))

    def memberships(self, user_id: str) -> list[Doc]:
        items = self._query_all(keys.user_partition(user_id), keys.membership_prefix())
        return [doc for doc in (_load(i) for i in items) if doc is not None]

    def put_session(self, token_hash: str, session: Doc) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=self._doc_item(
                keys.session(token_hash), session, expires_at={"N": str(int(session["expires_at_epoch"]))}
            ),
        )

    def get_session(self, token_hash: str) -> Doc | None:
        return _load(self._get(keys.session(token_hash)))

    def delete_session(self, token_hash: str) -> None:
        self._db.delete_item(TableName=self._table, Key=keys.session(token_hash))

    def get_secrets(self, team_id: str) -> Doc | None:
        return _load(self._get(keys.secrets(team_id)))

    def save_secrets(
        self, team_id: str, secrets: Doc, *, expected_version: int | None, old_key_hash: str | None, new_key_hash: str
    ) -> None:
        item = self._doc_item(keys.secrets(team_id), secrets)
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"  # "first creation": lazy GETs may race
        else:
            put["ConditionExpression"] = "version = :expected"  # "no rotation in between"
            put["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        ops: list[dict[str, Any]] = [{"Put": put}]
        if old_key_hash != new_key_hash:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**keys.api_key(new_key_hash), "team_id": {"S": team_id}},
                        # "key not used by anyone": an API key must name exactly one team.
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            if old_key_hash is not None:
                ops.append({"Delete": {"TableName": self._table, "Key": keys.api_key(old_key_hash)}})
        try:
            self._db.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = _cancel_reasons(exc)
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise AlreadyExistsError("That API key is already in use; choose another") from exc
            raise ConcurrentUpdateError("The project secrets changed meanwhile; try again") from exc

    def team_for_api_key(self, key_hash: str) -> str | None:
        item = self._get(keys.api_key(key_hash))
        return item["team_id"]["S"] if item else None
