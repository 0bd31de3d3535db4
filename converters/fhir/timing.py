"""FHIR dateTime values as timezone-aware datetimes, saying when a zone or a time was assumed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from converters.fhir.notes import note
from interop.schema import Transformation

__all__ = ["aware"]


def aware(value: Any, notes: list[Transformation]) -> dt.datetime | None:
    """A parsed FHIR date/dateTime (from a fhir.resources model) as an aware datetime, or None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value
        notes.append(note("timezone-assumed", "no time zone in source: UTC assumed"))
        return value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        notes.append(note("timezone-assumed", "date only: 00:00 UTC assumed"))
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None
