"""Per-patient secret date shift: one whole-day offset per patient, derived from the key.

Whole days keep every time of day; one offset per patient keeps every interval between that
patient's events exact. The offset is a keyed HMAC of the pseudonymous id, so the same key
shifts the same patient the same way in every import (records merge) and it is never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

__all__ = ["MAX_SHIFT_DAYS", "shift_days"]

MAX_SHIFT_DAYS = 365


def shift_days(key: bytes, patient_id: str) -> int:
    """The patient's offset in days, in [-365, -1] or [1, 365] (never 0)."""
    digest = hmac.new(key, f"date-shift|{patient_id}".encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big") % (2 * MAX_SHIFT_DAYS)
    return n - MAX_SHIFT_DAYS if n < MAX_SHIFT_DAYS else n - MAX_SHIFT_DAYS + 1


def shift_datetime(value: dt.datetime, days: int) -> dt.datetime:
    """``value`` moved by ``days`` whole days, keeping its offset and time of day."""
    return value + dt.timedelta(days=days)


def shift_date(value: dt.date, days: int) -> dt.date:
    return value + dt.timedelta(days=days)
