"""Names of files inside a version (archive entries, uploaded file names): one rule for import
and export, so a name that could climb out of a folder (zip-slip) is never stored nor emitted.

A safe entry name is relative, uses ``/`` only, has no empty, ``.`` or ``..`` part, no drive
letter, no control characters, and is at most 400 characters.
"""

from __future__ import annotations

import re

from interop.errors import RegistryError

__all__ = ["UnsafePathError", "is_safe_entry", "safe_entry", "safe_name"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafePathError(RegistryError):
    """An archive entry or file name that could escape its folder."""


def is_safe_entry(name: str) -> bool:
    if not name or len(name) > 400 or "\\" in name or _CONTROL.search(name):
        return False
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def safe_entry(name: str, *, source: str | None = None) -> str:
    """``name`` (a leading ``./`` dropped) when it is a safe relative entry name, else UnsafePathError."""
    clean = name[2:] if name.startswith("./") else name
    if not is_safe_entry(clean):
        raise UnsafePathError(
            f"unsafe entry name {name[:120]!r} (absolute, '..', '\\\\' or control characters)", source=source
        )
    return clean


def safe_name(filename: str) -> str:
    """The last component of an uploaded file name (either separator), control characters and
    leading dots removed; ``upload`` when nothing is left."""
    base = re.split(r"[\\/]", filename)[-1]
    base = _CONTROL.sub("", base).lstrip(".").strip()[:200]
    return base or "upload"
