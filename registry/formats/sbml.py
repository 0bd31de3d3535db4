"""SBML Level 2 and 3 (whatever libsbml reads). Plain SBML carries no model card."""

from __future__ import annotations

import re

import libsbml

from interop.errors import RegistryError
from interop.schema import ModelCard
from registry.safexml import check_xml

__all__ = ["InvalidModelError", "detect", "load", "read_document"]

_SBML_ROOT = re.compile(rb"<(?:\w+:)?sbml[\s>]")


class InvalidModelError(RegistryError):
    """The bytes are not a model libsbml (or the format's reader) can read."""


def detect(raw: bytes) -> bool:
    head = raw[:65536]
    return bool(_SBML_ROOT.search(head)) and b"sbml.org/sbml" in head


def read_document(text: str, *, source: str | None = None) -> libsbml.SBMLDocument:
    """libsbml's document for ``text``; fatal and XML-level errors raise InvalidModelError."""
    doc = libsbml.readSBMLFromString(text)
    log = doc.getErrorLog()
    fatal = [
        log.getError(i)
        for i in range(log.getNumErrors())
        if log.getError(i).getSeverity() in (libsbml.LIBSBML_SEV_FATAL, libsbml.LIBSBML_SEV_ERROR)
        and log.getError(i).getCategory() in (libsbml.LIBSBML_CAT_XML, libsbml.LIBSBML_CAT_SBML)
    ]
    if fatal or doc.getModel() is None:
        first = fatal[0] if fatal else None
        msg = first.getMessage().strip() if first else "no <model> element"
        raise InvalidModelError(
            f"libsbml cannot read the model: {msg}", source=source, line=first.getLine() if first else None
        )
    return doc


def load(raw: bytes, *, source: str | None = None) -> tuple[str, ModelCard | None]:
    check_xml(raw, source=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModelError(f"SBML must be UTF-8: {exc}", source=source) from exc
    read_document(text, source=source)
    return text, None
