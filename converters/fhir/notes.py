"""Transformation notes for provenance, shared: the same frozen note object is reused across items."""

from __future__ import annotations

from functools import lru_cache

from interop.schema import Transformation

__all__ = ["note"]


@lru_cache(maxsize=4096)
def note(kind: str, detail: str) -> Transformation:
    """A provenance note (cached: items share the immutable object instead of building thousands)."""
    return Transformation(kind=kind, detail=detail)  # type: ignore[arg-type]
