"""The one rule for a registry model id, used by every entry point (card, CLI, API, import-dir,
PharmML/NONMEM conversion, model references ``ID@VERSION``).

An id becomes part of URLs, file names in exports and RDF URIs, so it is a letter followed by at
most 63 letters, digits, ``.``, ``_`` or ``-``: no path separators, no ``..`` at the start, no
markup, no whitespace or control characters.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from interop.errors import SchemaError

__all__ = [
    "MODEL_ID",
    "MODEL_ID_RULE",
    "ModelRef",
    "check_model_id",
    "is_model_id",
    "model_id_from",
    "parse_model_ref",
]

MODEL_ID_RULE = r"^[A-Za-z][A-Za-z0-9._-]{0,63}$"
MODEL_ID = re.compile(MODEL_ID_RULE)


def is_model_id(value: object) -> bool:
    """Whether ``value`` is a string that follows the model id rule."""
    return isinstance(value, str) and MODEL_ID.fullmatch(value) is not None


def check_model_id(value: str, *, source: str | None = None, field: str = "model_id") -> str:
    """``value`` when it follows the rule, else ``SchemaError`` naming the rule (value shown escaped)."""
    if not is_model_id(value):
        shown = repr(value[:80] + ("…" if len(value) > 80 else "")) if isinstance(value, str) else "?"
        raise SchemaError(f"model id {shown} breaks the id rule {MODEL_ID_RULE}", source=source, field=field)
    return value


def model_id_from(text: str) -> str:
    """A rule-abiding id made from an SBML id or file name: lower-cased, runs of other characters
    become ``-``, a leading non-letter gets an ``m`` prefix, and the result is cut to 64 characters."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    if not s:
        return "model"
    if not s[0].isalpha():
        s = "m" + s
    return s[:64].rstrip("-._") or "model"


class ModelRef(NamedTuple):
    """``ID`` or ``ID@VERSION`` (version None: the latest)."""

    model_id: str
    version: int | None


_REF = re.compile(r"^(?P<id>[^@]*)(?:@(?P<version>.*))?$", re.S)


def parse_model_ref(text: str) -> ModelRef:
    """A model reference ``ID`` or ``ID@VERSION``; the id follows the id rule, the version is 1..2**31-1."""
    m = _REF.match(text.strip())
    assert m is not None  # the pattern matches every string
    mid, ver = m["id"], m["version"]
    check_model_id(mid, source=text if len(text) < 100 else None, field="model")
    if ver is None:
        return ModelRef(mid, None)
    if not ver.isascii() or not ver.isdigit() or not 1 <= int(ver) <= 2**31 - 1:
        raise SchemaError(
            f"not a model reference ID[@VERSION]: version {ver[:20]!r} is not a number 1..2147483647",
            field="model",
        )
    return ModelRef(mid, int(ver))
