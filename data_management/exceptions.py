"""Domain exceptions of data management."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class RecordLocked(ValidationError):
    """A change to frozen or locked data (refused by ``ClinicalModel`` on every write path).

    A ``ValidationError`` (code ``locked``) so that model forms (the admin) show it as a form
    error and the API maps it to a 400 today; ``edc.api.errors`` should map it to 409 Conflict
    (test ``isinstance(exc, RecordLocked)`` before the generic ``ValidationError`` branch).
    """

    def __init__(self, message: str):
        super().__init__(message, code="locked")

    def __str__(self) -> str:
        return self.messages[0]


class SignatureRejected(Exception):
    """The signer's password did not match (21 CFR 11.200(a)): nothing was signed."""


class NotPermitted(Exception):
    """The user's role or relation to the record does not allow this workflow action."""
