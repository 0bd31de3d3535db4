"""FHIR versions: detect R4 / R4B / R5 and pick the fhir.resources model that validates a resource.

R4 (4.0.1) resources are validated with the R4B models (``fhir.resources.R4B``): the two differ
only in resources the patient schema does not use, and fhir.resources 8 no longer ships R4.
R5 uses the package root. Detection, in order: an explicit flag, a version hint in the data
(``meta.profile`` canonical with ``|4.0.1``/``|5.0.0`` or a ``/R5/`` path, ``fhirVersion`` of a
Bulk manifest or CapabilityStatement), else trial: the R4B model first, then R5.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any, Literal

from pydantic import ValidationError

from interop.errors import ConversionError

__all__ = ["FhirVersion", "detect_version", "model_class", "normalise_version", "validate_resource"]

FhirVersion = Literal["R4", "R4B", "R5"]
VERSIONS: tuple[FhirVersion, ...] = ("R4", "R4B", "R5")
_ALIASES: dict[str, FhirVersion] = {
    "r4": "R4",
    "4.0": "R4",
    "4.0.0": "R4",
    "4.0.1": "R4",
    "r4b": "R4B",
    "4.3": "R4B",
    "4.3.0": "R4B",
    "r5": "R5",
    "5.0": "R5",
    "5.0.0": "R5",
}
_PROFILE_VERSION = re.compile(r"\|(\d+\.\d+(?:\.\d+)?)")
_PROFILE_PATH = re.compile(r"/fhir/(R4B|R4|R5)/", re.IGNORECASE)


def normalise_version(value: str) -> FhirVersion:
    """``R4``, ``4.0.1``, ``r5``... as one of ``R4``, ``R4B``, ``R5``."""
    v = _ALIASES.get(value.strip().lower())
    if v is None:
        raise ConversionError(f"unknown FHIR version {value!r} (use R4, R4B or R5)", field="fhir-version")
    return v


def detect_version(resource: dict[str, Any]) -> FhirVersion | None:
    """The version a resource (or manifest / CapabilityStatement) declares, if it declares one."""
    declared = resource.get("fhirVersion")
    if isinstance(declared, str):
        try:
            return normalise_version(declared)
        except ConversionError:
            pass
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    for profile in profiles if isinstance(profiles, list) else []:
        if not isinstance(profile, str):
            continue
        m = _PROFILE_VERSION.search(profile) or _PROFILE_PATH.search(profile)
        if m:
            try:
                return normalise_version(m.group(1))
            except ConversionError:
                continue
    return None


@lru_cache(maxsize=256)
def model_class(version: FhirVersion, resource_type: str) -> type[Any] | None:
    """The fhir.resources model of ``resource_type`` in ``version``; None for an unknown type."""
    if not resource_type.isalnum() or not resource_type[:1].isupper():
        return None
    package = "fhir.resources" if version == "R5" else "fhir.resources.R4B"
    try:
        module = importlib.import_module(f"{package}.{resource_type.lower()}")
    except ImportError:
        return None
    cls = getattr(module, resource_type, None)
    return cls if isinstance(cls, type) else None


def validate_resource(resource: dict[str, Any], version: FhirVersion | None) -> tuple[Any, FhirVersion]:
    """Validate with the version's model (trial R4B then R5 when ``version`` is None).

    Raises ``ValidationError`` (of the first model tried) when no version accepts it, and
    ``KeyError`` when the resource type is unknown to every version.
    """
    rtype = str(resource.get("resourceType"))
    order: tuple[FhirVersion, ...] = (version,) if version else ("R4", "R5")
    first_error: ValidationError | None = None
    known = False
    for v in order:
        cls = model_class(v, rtype)
        if cls is None:
            continue
        known = True
        try:
            return cls.model_validate(resource), v
        except ValidationError as exc:
            first_error = first_error or exc
    if not known:
        raise KeyError(rtype)
    assert first_error is not None
    raise first_error
