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


class BulkStatus(StrEnum):
    """A bulk retry or replay operation's lifecycle: planned -> running -> completed | cancelled | failed."""

    PLANNED = "planned"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


ONGOING_BULK_STATUSES = frozenset({BulkStatus.PLANNED, BulkStatus.RUNNING})
FINISHED_BULK_STATUSES = frozenset({BulkStatus.COMPLETED, BulkStatus.CANCELLED, BulkStatus.FAILED})


class BulkType(StrEnum):
    EVENTS = "events"
    REQUESTS = "requests"


class IgnoredCause(StrEnum):
    FILTERED = "FILTERED"
    DEDUPLICATED = "DEDUPLICATED"
    TRANSFORMATION_FAILED = "TRANSFORMATION_FAILED"
    DISABLED = "DISABLED"
