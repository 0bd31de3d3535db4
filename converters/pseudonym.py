"""Pseudonymisation: keyed HMAC-SHA256 of source identifiers.

The key comes from a file or the environment and is never written to any output. The same
key maps the same source id to the same pseudonym, so records from several feeds merge.
Every importer takes its key the same way (:func:`load_key`) and refuses to run without one.
Source files are named in outputs by a keyed token of their file name (:func:`source_token`):
exporters name files after the patient (``First_Last_<id>.json``), so a path identifies.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from interop.errors import ConversionError

__all__ = ["KEY_ENV", "SecretKey", "is_pseudonym", "load_key", "pseudonymise", "source_token"]

KEY_ENV = "INTEROP_PSEUDONYM_KEY"


def load_key(path: Path | None = None) -> bytes:
    """The secret key: from ``path`` if given, else ``$INTEROP_PSEUDONYM_KEY``."""
    if path is not None:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise ConversionError(f"cannot read pseudonymisation key: {exc}", source=str(path)) from exc
    else:
        key = os.environ.get(KEY_ENV, "").encode()
    if len(key) < 16:
        raise ConversionError(
            f"pseudonymisation key must be at least 16 bytes (file or ${KEY_ENV})",
            source=str(path) if path else KEY_ENV,
        )
    return key


def pseudonymise(key: bytes, system: str, value: str) -> str:
    """A stable pseudonym for identifier ``value`` in ``system`` (hex, 32 characters)."""
    mac = hmac.new(key, f"{system}|{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


_PSEUDONYM = re.compile(r"[0-9a-f]{32}")


def is_pseudonym(value: object) -> bool:
    """Whether ``value`` has the form :func:`pseudonymise` gives (32 lowercase hex characters).

    A resource tagged as pseudonymised keeps its id only when the id has this form: the tag alone
    is not trusted, so a tagged resource with another id (edited, or forged) is pseudonymised again
    instead of passing an identifier through."""
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


def source_token(key: bytes, source: str) -> str:
    """The keyed token that stands for an input file (by its name) or URL in every output.

    A site holding the key finds the file again by computing the token of its candidates'
    names; nobody else learns the name.
    """
    name = source if "://" in source else Path(source).name
    return "src-" + pseudonymise(key, "source", name)[:16]


class SecretKey:
    """The key on its way to other processes (Dask workers): it pickles, but never prints.

    Dask writes a failed task's arguments to its logs with ``repr``; this wrapper shows
    ``SecretKey(<hidden>)`` there, in tracebacks and in dashboards instead of the key.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "SecretKey(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[SecretKey], tuple[bytes]]:
        return (SecretKey, (self._value,))
