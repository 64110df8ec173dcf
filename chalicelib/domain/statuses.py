"""Every status, cause and trigger of the pipeline, in the spec's casing; never retype the literals elsewhere."""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class RejectionCause(StrEnum):
    SOURCE_DISABLED = "SOURCE_DISABLED"
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    UNSUPPORTED_HTTP_METHOD = "UNSUPPORTED_HTTP_METHOD"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"


class EventStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    HOLD = "HOLD"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


PENDING_EVENT_STATUSES = frozenset({EventStatus.SCHEDULED, EventStatus.QUEUED})
FINAL_EVENT_STATUSES = frozenset({EventStatus.SUCCESSFUL, EventStatus.FAILED, EventStatus.CANCELLED})


class AttemptTrigger(StrEnum):
    INITIAL = "INITIAL"
    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"
    BULK_RETRY = "BULK_RETRY"
    UNPAUSE = "UNPAUSE"


class AttemptStatus(StrEnum):
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


class IgnoredCause(StrEnum):
    FILTERED = "FILTERED"
    DEDUPLICATED = "DEDUPLICATED"
    TRANSFORMATION_FAILED = "TRANSFORMATION_FAILED"
    DISABLED = "DISABLED"
