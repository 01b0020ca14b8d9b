"""Errors raised by perprisk: every refusal names the offending field and the reason."""

from __future__ import annotations


class PerpriskError(Exception):
    """Base class of every error perprisk raises on purpose."""


class ValidationError(PerpriskError, ValueError):
    """Bad input: ``field`` names what was wrong (dotted path, e.g. ``positions[0].size``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}

    def within(self, prefix: str) -> "ValidationError":
        """The same error with its field placed under ``prefix`` (``prefix.field``)."""
        field = f"{prefix}.{self.field}" if self.field and not self.field.startswith("[") else f"{prefix}{self.field}"
        return ValidationError(field, self.message)
