"""Base classes for domain exceptions that the API error handler (``edc.core.api.errors``)
answers without knowing the domain: a domain app subclasses one and the handler maps it."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class Conflict(Exception):
    """The request conflicts with the current state (HTTP 409), with each problem named.

    ``code`` is the JSON error code (``{"errors": [{"field": null, "code", "message"}]}``).
    """

    code = "conflict"

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class ConflictValidationError(ValidationError):
    """A ``ValidationError`` (so that model forms in the admin show it on the form) that the
    API answers as 409 Conflict with code ``code``, not as 400."""

    code_name = "conflict"

    def __init__(self, message: str):
        super().__init__(message, code=self.code_name)

    def __str__(self) -> str:
        return self.messages[0]
