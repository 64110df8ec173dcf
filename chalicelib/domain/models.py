"""The shapes of FastHook's control resources: what a client may send and what it gets back.

The same pydantic models validate request bodies and generate the OpenAPI document, so the two
cannot disagree. Secrets inside configs are part of the stored shape; `present_*` in control/
strips them unless the caller asks for `include=config.auth`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from chalicelib.domain.errors import ValidationError

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
DEFAULT_ALLOWED_METHODS: list[str] = ["POST", "PUT", "PATCH", "DELETE"]

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=155, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"),
    Field(description="Unique within the team: letters, digits, '-', '_' and '.', at most 155 characters."),
]
Description = Annotated[str, StringConstraints(max_length=500)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]

# Fields a client may send back unchanged from a GET; they are ignored on input.
READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "team_id",
        "url",
        "created_at",
        "updated_at",
        "disabled_at",
        "paused_at",
        "full_name",
        "code_hash",
        "deleted_at",
        "source",
        "destination",
    }
)


class Strict(BaseModel):
    # defer_build: validators are compiled on first use, so a Lambda that never sees a control body
    # (ingest, the workers) does not pay for compiling them at cold start.
    model_config = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=False, defer_build=True)


class Body(Strict):
    """A request body: unknown fields are errors, read-only fields of the resource are ignored."""

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = set(cls.model_fields)
            return {k: v for k, v in data.items() if k in allowed or k not in READ_ONLY_FIELDS}
        return data


# ---- sources -----------------------------------------------------------------------------------

SourceAuthType = Literal["HMAC", "BASIC_AUTH", "API_KEY", "STRIPE", "GITHUB", "SHOPIFY", "STANDARD_WEBHOOKS"]


class HmacAuth(Strict):
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "base64"
    header_key: HeaderName
    webhook_secret_key: Secret


class BasicAuthCredentials(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    password: Secret


class SourceApiKeyAuth(Strict):
    header_key: HeaderName
    api_key: Secret


class ProviderAuth(Strict):
    webhook_secret_key: Secret


SOURCE_AUTH_MODELS: dict[str, type[Strict]] = {
    "HMAC": HmacAuth,
    "BASIC_AUTH": BasicAuthCredentials,
    "API_KEY": SourceApiKeyAuth,
    "STRIPE": ProviderAuth,
    "GITHUB": ProviderAuth,
    "SHOPIFY": ProviderAuth,
    "STANDARD_WEBHOOKS": ProviderAuth,
}


class CustomResponse(Strict):
    content_type: Literal["json", "text", "xml"]
    body: Annotated[str, StringConstraints(max_length=1000)]


class SourceConfig(Strict):
    allowed_http_methods: Annotated[list[HttpMethod], Field(min_length=1, max_length=5)] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_METHODS)
    )
    custom_response: CustomResponse | None = None
    auth_type: SourceAuthType | None = None
    auth: dict[str, Any] | None = None

    @field_validator("allowed_http_methods")
    @classmethod
    def _unique_methods(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a method twice")
        return value


def check_auth(
    auth_type: str | None, auth: dict[str, Any] | None, models: dict[str, type[Strict]], *, prefix: str
) -> dict[str, Any] | None:
    """Validate `auth` against its type's model; return it with defaults filled in (the stored form).

    Done outside the config models so the error can name the field under the caller's prefix
    (`config.auth...` on a source, `source.config.auth...` inline in a connection).
    """
    from chalicelib.domain.validation import validate

    if auth_type is None:
        if auth:
            raise ValidationError(
                f"{prefix}.auth_type: is required when {prefix}.auth is given", field=f"{prefix}.auth_type"
            )
        return None
    if auth is None:
        raise ValidationError(f"{prefix}.auth: is required for auth_type {auth_type}", field=f"{prefix}.auth")
    return validate(models[auth_type], auth, prefix=f"{prefix}.auth").model_dump()


SourceType = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")]


class SourceCreate(Body):
    name: Name
    description: Description | None = None
    type: SourceType = "WEBHOOK"
    config: SourceConfig | None = None


class SourceUpdate(Body):
    name: Name | None = None
    description: Description | None = None
    type: SourceType | None = None
    config: dict[str, Any] | None = Field(None, description="Merged key by key into the stored config.")


class Source(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    team_id: str
    name: str
    description: str | None = None
    type: str
    url: str
    config: dict[str, Any]
    disabled_at: str | None = None
    created_at: str
    updated_at: str


# ---- destinations ------------------------------------------------------------------------------

DestinationAuthType = Literal["BEARER_TOKEN", "BASIC_AUTH", "API_KEY"]


class BearerAuth(Strict):
    token: Secret


class DestinationApiKeyAuth(Strict):
    key: HeaderName
    api_key: Secret
    to: Literal["header", "query"] = "header"


DESTINATION_AUTH_MODELS: dict[str, type[Strict]] = {
    "BEARER_TOKEN": BearerAuth,
    "BASIC_AUTH": BasicAuthCredentials,
    "API_KEY": DestinationApiKeyAuth,
}

_URL = re.compile(r"^https?://[^\s/?#]+(?:[/?#]\S*)?$", re.IGNORECASE)


class DestinationConfig(Strict):
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    path: Annotated[str, StringConstraints(max_length=1024, pattern=r"^/\S*$")] | None = None
    http_method: HttpMethod | None = None
    http_timeout: Annotated[int, Field(ge=1, le=60)] = 30
    rate_limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    rate_limit_period: Literal["second", "minute", "hour", "concurrent"] | None = None
    path_forwarding_disabled: bool = False
    auth_type: DestinationAuthType | None = None
    auth: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError("must be an absolute http:// or https:// URL")
        return value


DestinationType = Literal["HTTP", "MOCK_API"]


class DestinationCreate(Body):
    name: Name
    description: Description | None = None
    type: DestinationType = "HTTP"
    config: DestinationConfig = Field(description="config.url for HTTP, config.path for MOCK_API, plus options.")


class DestinationUpdate(Body):
    name: Name | None = None
    description: Description | None = None
    type: DestinationType | None = None
    config: dict[str, Any] | None = Field(None, description="Merged key by key into the stored config.")


class Destination(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    team_id: str
    name: str
    description: str | None = None
    type: str
    config: dict[str, Any]
    disabled_at: str | None = None
    created_at: str
    updated_at: str


# ---- transformations ---------------------------------------------------------------------------

MAX_CODE_BYTES = 5 * 1024 * 1024

EnvMap = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=256)],
        Annotated[str, StringConstraints(max_length=65536)],
    ],
    Field(max_length=100, description="Visible to the code as process.env."),
]


class TransformationCreate(Body):
    name: Name
    code: Annotated[str, StringConstraints(min_length=1)]
    env: EnvMap | None = None

    @field_validator("code")
    @classmethod
    def _code_size(cls, value: str | None) -> str | None:
        # Shared with TransformationUpdate, where a null code means "unchanged" and reaches this check.
        if value is not None and len(value.encode()) > MAX_CODE_BYTES:
            raise ValueError("is larger than 5 MB")
        return value


class TransformationUpdate(Body):
    name: Name | None = None
    code: Annotated[str, StringConstraints(min_length=1)] | None = None
    env: EnvMap | None = None

    _code_size = field_validator("code")(TransformationCreate._code_size.__func__)  # type: ignore[attr-defined]


class Transformation(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    team_id: str
    name: str
    code: str
    env: dict[str, str]
    code_hash: str
    created_at: str
    updated_at: str
    deleted_at: str | None = None


# ---- connections -------------------------------------------------------------------------------


class ConnectionCreate(Body):
    name: Name
    description: Description | None = None
    source_id: str | None = None
    destination_id: str | None = None
    source: dict[str, Any] | None = Field(
        None, description="{id} of an existing source, or a source to upsert by name."
    )
    destination: dict[str, Any] | None = Field(None, description="{id} of a destination, or one to upsert by name.")
    rules: list[Any] | None = None


class ConnectionUpsert(ConnectionCreate):
    id: str | None = None


class ConnectionUpdate(Body):
    name: Name | None = None
    description: Description | None = None
    destination_id: str | None = None
    destination: dict[str, Any] | None = None
    rules: list[Any] | None = None


class Connection(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    team_id: str
    name: str
    full_name: str
    description: str | None = None
    source: dict[str, Any]
    destination: dict[str, Any]
    rules: list[dict[str, Any]]
    disabled_at: str | None = None
    paused_at: str | None = None
    created_at: str
    updated_at: str


# ---- auth and teams ----------------------------------------------------------------------------


class GoogleLogin(Body):
    credential: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    team_id: str | None = None


class ProfileUpdate(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]


class SecretsUpdate(Body):
    api_key: Annotated[str, StringConstraints(min_length=12, max_length=256, pattern=r"^\S+$")] | None = None
    signing_secret: Annotated[str, StringConstraints(min_length=12, max_length=256, pattern=r"^\S+$")] | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> SecretsUpdate:
        if self.api_key is None and self.signing_secret is None:
            raise ValueError("give api_key, signing_secret or both")
        return self


class SecretsRotate(Body):
    rotate: Annotated[list[Literal["api_key", "signing_secret"]], Field(max_length=2)] | None = None
