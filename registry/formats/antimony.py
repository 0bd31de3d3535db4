"""Antimony (human-readable model text), converted to SBML by libantimony; the source is kept.

libantimony holds global state, so loads are serialised with a lock.
"""

from __future__ import annotations

import re
import threading

import antimony as _ant

from interop.schema import ModelCard
from registry.formats.sbml import InvalidModelError, read_document

__all__ = ["detect", "load"]

_LOCK = threading.Lock()
_HINT = re.compile(r"(?m)^\s*(model|module|function)\s+\*?\w+|->|:=|^\s*\w+\s*=\s*[\w(.\d]")


def detect(raw: bytes) -> bool:
    head = raw[:65536].lstrip()
    if not head or head.startswith(b"<") or head.startswith(b"PK\x03\x04"):
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(_HINT.search(text))


def load(raw: bytes, *, source: str | None = None) -> tuple[str, ModelCard | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModelError(f"Antimony must be UTF-8 text: {exc}", source=source) from exc
    with _LOCK:
        _ant.clearPreviousLoads()
        if _ant.loadAntimonyString(text) < 0:
            raise InvalidModelError(f"Antimony: {_ant.getLastError().strip()}", source=source)
        sbml = _ant.getSBMLString(_ant.getMainModuleName())
    if not sbml:
        raise InvalidModelError(f"Antimony: no model produced ({_ant.getLastError().strip()})", source=source)
    read_document(sbml, source=source)
    return sbml, None
