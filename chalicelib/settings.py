"""One typed Settings object built from environment variables, validated at cold start.

This is the only module that reads os.environ. `.chalice/config.json` sets the same variable names
for each stage; the local stack sets them before it builds the app.

Settings is a frozen dataclass checked by hand rather than a pydantic model: every Lambda, ingest
first, imports this module at cold start, and pydantic's import alone is ~40 ms of the ingest's
cold-start budget (docs/deploy.md). Each field still declares its type, default, bounds and a
one-line description in one place.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from functools import lru_cache
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def Field(
    default: Any,
    *,
    description: str,
    ge: int | None = None,
    le: int | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A settings field: its default, a one-line description, optional integer bounds or allowed values."""
    metadata = {"description": description, "ge": ge, "le": le, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


class SettingsError(ValueError):
    """A setting has a value of the wrong type or out of bounds; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    stage: str = Field("local", description="Stage name; resource names are fasthook-<stage>-<logical>.")
    region: str = Field("us-east-1", description="AWS region of every table, queue and bucket.")
    aws_endpoint: str | None = Field(
        None, description="Endpoint for every AWS call (the embedded moto server locally); None in AWS."
    )
    control_table: str = Field("fasthook-local-control", description="DynamoDB table of teams and resources.")
    records_table: str = Field("fasthook-local-records", description="DynamoDB table of requests/events/attempts.")
    route_queue_url: str = Field("", description="SQS queue URL the ingest sends accepted requests to.")
    deliver_queue_url: str = Field("", description="SQS queue URL of event deliveries.")
    payload_bucket: str = Field("fasthook-local-payloads", description="S3 bucket for bodies above 8 KB.")
    ingest_url: str = Field(
        "http://127.0.0.1:8000", description="Public base URL of ingest; source.url is <this>/e/<id>."
    )
    google_client_id: str = Field(
        "", description="OAuth client id Google ID tokens must be issued for; empty disables."
    )
    google_jwks_url: str = Field(
        "https://www.googleapis.com/oauth2/v3/certs", description="Where Google's signing keys are fetched."
    )
    session_ttl_s: int = Field(7 * 86400, ge=60, description="Lifetime of a dashboard session token.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest inbound webhook body (413 above).")
    inline_body_bytes: int = Field(8192, ge=0, le=65536, description="Bodies up to this size stay in DynamoDB.")
    retention_days: int = Field(30, ge=1, le=3650, description="How long requests, events and attempts are kept.")
    route_dlq_url: str = Field("", description="SQS dead-letter queue of the route queue (drained by the sweeper).")
    deliver_dlq_url: str = Field("", description="SQS dead-letter queue of the deliver queue (drained by the sweeper).")
    allow_private_destinations: bool = Field(
        False, description="Allow deliveries to loopback/private/link-local addresses (on for the local stack)."
    )
    log_level: str = Field(
        "INFO",
        description="Level of every FastHook logger (chalicelib/logs.py); the prod stage runs at WARNING.",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    )
    bulk_state_machine_arn: str = Field("", description="Step Functions state machine that runs bulk operations.")
    bulk_page_size: int = Field(100, ge=1, le=100, description="Items a bulk operation retries per page (at most 100).")
    bulk_pages_per_task: int = Field(
        10, ge=1, le=100, description="Pages one bulk task invocation runs before it hands back to the state machine."
    )
    bulk_task_budget_s: int = Field(
        120, ge=1, le=840, description="Seconds a bulk task keeps starting pages (below the task Lambda's timeout)."
    )
    faults: str = Field(
        "", description="Fault injection for the fault run (adapters/faults.py spec); empty = off, never set in AWS."
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), vars(sys.modules[__name__]))
        for spec in dataclasses.fields(self):
            value = _coerce(spec.name, hints[spec.name], getattr(self, spec.name))
            low, high = spec.metadata.get("ge"), spec.metadata.get("le")
            if isinstance(value, int) and not isinstance(value, bool):
                if low is not None and value < low:
                    raise SettingsError(f"{spec.name} must be at least {low}, got {value}")
                if high is not None and value > high:
                    raise SettingsError(f"{spec.name} must be at most {high}, got {value}")
            choices = spec.metadata.get("choices")
            if choices is not None:
                value = str(value).strip().upper()
                if value not in choices:
                    raise SettingsError(f"{spec.name} must be one of {', '.join(choices)}, got {value!r}")
            object.__setattr__(self, spec.name, value)

    def queue_name(self, logical: str) -> str:
        """A queue's physical name, for the event source mappings Chalice declares at packaging time.

        Built from the stage alone (the URL may be a deploy-time token then); it is the format of
        infra.resources.physical_name, which a test holds the two to.
        """
        return f"fasthook-{self.stage}-{logical}"


_ENV = {
    "stage": "FASTHOOK_STAGE",
    "region": "AWS_DEFAULT_REGION",
    "aws_endpoint": "FASTHOOK_AWS_ENDPOINT",
    "control_table": "FASTHOOK_CONTROL_TABLE",
    "records_table": "FASTHOOK_RECORDS_TABLE",
    "route_queue_url": "FASTHOOK_ROUTE_QUEUE_URL",
    "deliver_queue_url": "FASTHOOK_DELIVER_QUEUE_URL",
    "payload_bucket": "FASTHOOK_PAYLOAD_BUCKET",
    "ingest_url": "FASTHOOK_INGEST_URL",
    "google_client_id": "FASTHOOK_GOOGLE_CLIENT_ID",
    "google_jwks_url": "FASTHOOK_GOOGLE_JWKS_URL",
    "session_ttl_s": "FASTHOOK_SESSION_TTL_S",
    "max_body_bytes": "FASTHOOK_MAX_BODY_BYTES",
    "inline_body_bytes": "FASTHOOK_INLINE_BODY_BYTES",
    "retention_days": "FASTHOOK_RETENTION_DAYS",
    "route_dlq_url": "FASTHOOK_ROUTE_DLQ_URL",
    "deliver_dlq_url": "FASTHOOK_DELIVER_DLQ_URL",
    "allow_private_destinations": "FASTHOOK_ALLOW_PRIVATE_DESTINATIONS",
    "log_level": "FASTHOOK_LOG_LEVEL",
    "bulk_state_machine_arn": "FASTHOOK_BULK_STATE_MACHINE_ARN",
    "bulk_page_size": "FASTHOOK_BULK_PAGE_SIZE",
    "bulk_pages_per_task": "FASTHOOK_BULK_PAGES_PER_TASK",
    "bulk_task_budget_s": "FASTHOOK_BULK_TASK_BUDGET_S",
    "faults": "FASTHOOK_FAULTS",
}

ENV_NAMES: dict[str, str] = dict(_ENV)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """`value` (an env string or an already typed value) as the field's type, or SettingsError."""
    optional = type(None) in typing.get_args(hint)
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    if value is None and optional:
        return None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise SettingsError(f"{name} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {value!r}") from None
    if kind is str and isinstance(value, str):
        return value
    raise SettingsError(f"{name} must be a {getattr(kind, '__name__', kind)}, got {value!r}")


def load_settings() -> Settings:
    """Build Settings from the environment; a bad value fails the cold start with the variable's name."""
    raw = {field: os.environ[name] for field, name in _ENV.items() if os.environ.get(name, "") != ""}
    try:
        return Settings(**raw)
    except SettingsError as exc:
        names = ", ".join(_ENV[field] for field in raw if str(exc).startswith(field + " "))
        raise RuntimeError(f"invalid FastHook settings in {names}: {exc}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
