"""References inside a feed: ``urn:uuid:`` full URLs, ``Type/id`` (relative or absolute), ``#contained``
and conditional references (``Patient?identifier=system|value``), all reduced to one key form.

Written by hand because fhir.resources validates references but does not resolve them, and
fhirpy resolves only against a live server.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["aliases_of", "reference_key", "reference_of"]

_TYPE_ID = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")


def reference_key(ref: str) -> str:
    """A canonical key: ``urn:uuid:x`` kept, ``[base/]Type/id[/_history/v]`` -> ``Type/id``,
    ``Type?identifier=s|v`` -> ``Type?identifier=s|v`` (decoded, first identifier only)."""
    ref = ref.strip()
    if ref.startswith(("urn:uuid:", "urn:oid:", "#")):
        return ref
    if "?" in ref:
        rtype, _, query = ref.partition("?")
        rtype = rtype.rsplit("/", 1)[-1]
        params = dict(parse_qsl(query, keep_blank_values=True))
        if "identifier" in params:
            return f"{rtype}?identifier={unquote(params['identifier'])}"
        if "_id" in params:
            return f"{rtype}/{params['_id']}"
        return f"{rtype}?{query}"
    m = _TYPE_ID.search(ref)
    return f"{m.group(1)}/{m.group(2)}" if m else ref


def aliases_of(resource: dict[str, Any], full_url: str | None, extra: tuple[str, ...] = ()) -> set[str]:
    """Every key under which other resources may reference ``resource``."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    keys = {reference_key(u) for u in (full_url, *extra) if u}
    if rtype and rid:
        keys.add(f"{rtype}/{rid}")
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("value"):
            value = str(ident["value"])
            keys.add(f"{rtype}?identifier={value}")
            if ident.get("system"):
                keys.add(f"{rtype}?identifier={ident['system']}|{value}")
    return keys


def reference_of(value: Any) -> str | None:
    """The ``reference`` string of a FHIR Reference (or R5 CodeableReference) JSON object."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("reference"), dict):  # R5 CodeableReference
        value = value["reference"]
    ref = value.get("reference")
    return ref if isinstance(ref, str) and ref else None
