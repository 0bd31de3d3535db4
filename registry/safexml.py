"""Safe XML parsing: the first stage every uploaded model goes through.

defusedxml refuses DTDs (so no entity expansion, no billion laughs, no external entities or
network fetches); a size bound is checked before parsing and a depth bound while parsing
(iterparse, so an over-deep document is abandoned as soon as it crosses the bound). Only after
this stage does libsbml (which would expand entities) see the bytes.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from interop.errors import RegistryError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "UnsafeXmlError", "XmlLimits", "check_xml"]

MAX_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 256


class UnsafeXmlError(RegistryError):
    """The document is not well-formed, too big, too deep, or uses DTDs or entities."""


@dataclass(frozen=True)
class XmlLimits:
    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH


def check_xml(raw: bytes, *, source: str | None = None, limits: XmlLimits = XmlLimits()) -> str:
    """Parse ``raw`` safely; returns the root element's tag (``{ns}local``) or raises UnsafeXmlError."""
    if len(raw) > limits.max_bytes:
        raise UnsafeXmlError(
            f"document of {len(raw)} bytes exceeds the limit of {limits.max_bytes}", source=source
        )
    depth = 0
    root_tag = ""
    try:
        for event, elem in DET.iterparse(
            io.BytesIO(raw),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            if event == "start":
                depth += 1
                if depth == 1:
                    root_tag = elem.tag
                if depth > limits.max_depth:
                    raise UnsafeXmlError(
                        f"XML nesting deeper than {limits.max_depth} elements", source=source
                    )
            else:
                depth -= 1
                elem.clear()
    except DefusedXmlException as exc:
        raise UnsafeXmlError(f"refused: {type(exc).__name__} ({exc})", source=source) from exc
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise UnsafeXmlError(f"not well-formed XML: {exc}", source=source, line=line) from exc
    return root_tag
