"""Request bodies too large to keep inline in DynamoDB, as S3 objects (the bucket's lifecycle is retention)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import NotFoundError

# S3 names a missing object NoSuchKey on GetObject, and 404 when the answer has no body to carry a code.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3PayloadStore:
    """PayloadStore on one bucket; keys are chosen by the caller (`<team>/requests/<request_id>`)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)

    def get(self, key: str) -> bytes:
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                # Expired with the retention, or never written: callers decide; botocore's error says neither.
                raise NotFoundError(f"Stored body {key} not found; it may have expired") from exc
            raise
        return answer["Body"].read()
