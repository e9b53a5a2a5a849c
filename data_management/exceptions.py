"""Domain exceptions of data management."""

from __future__ import annotations

from edc.core.exceptions import ConflictValidationError


class RecordLocked(ConflictValidationError):
    """A change to frozen or locked data (refused by ``ClinicalModel`` on every write path).

    A ``ValidationError`` (code ``locked``) so that model forms (the admin) show it as a form
    error; the API answers it 409 Conflict (``edc.core.api.errors``).
    """

    code_name = "locked"


class SignatureRejected(Exception):
    """The signer's password did not match (21 CFR 11.200(a)): nothing was signed."""


class NotPermitted(Exception):
    """The user's role or relation to the record does not allow this workflow action."""
