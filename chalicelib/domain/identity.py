"""Who an outside identity provider says a user is.

Login use cases must not care whether a person proved themselves with a Google ID token or, later,
another provider: they receive an `ExternalIdentity` from an `IdentityVerifier` and decide from there
(find or create the user, open a session). Keeping the verifier a Protocol lets unit tests hand the
use case a fake instead of a network-bound adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ExternalIdentity:
    """A verified statement from `provider` about the account `subject`.

    `subject` is the provider's stable account id; an email address can move between accounts, so
    users are matched on `(provider, subject)`, and `email_verified` says whether the email can be
    trusted for anything beyond display.
    """

    provider: str
    subject: str
    email: str
    email_verified: bool
    name: str | None
    picture_url: str | None


class IdentityVerifier(Protocol):
    def verify(self, credential: str) -> ExternalIdentity:
        """Return the identity behind `credential`, or raise UnauthorizedError saying what was wrong."""
        ...
