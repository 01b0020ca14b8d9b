"""Scenario settings read from plain values (TOML tables): unknown names are refused, naming the field."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from perprisk.errors import ValidationError


def check_known(cls: type, values: Mapping[str, Any], prefix: str) -> None:
    """Refuse the first setting of ``values`` that is not a field of the dataclass ``cls``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValidationError(f"{prefix}.{unknown[0]}", f"unknown setting (known: {', '.join(sorted(known))})")
