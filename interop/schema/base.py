"""Shared building blocks of both contracts: the frozen base model, codes, provenance."""

from __future__ import annotations

import math
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from interop.errors import SchemaError

SCHEMA_VERSION: Literal["1.0"] = "1.0"

T = TypeVar("T", bound=BaseModel)

# Code systems used across the hub (canonical FHIR URIs).
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
HGNC = "http://www.genenames.org"


class Frozen(BaseModel):
    """Immutable, strict base: unknown fields are errors, instances never change."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, validated again (``model_copy`` would skip it)."""
        data = self.model_dump()
        data.update(changes)
        return parse(type(self), data)


def parse(cls: type[T], data: Any, *, source: str | None = None) -> T:
    """Validate ``data`` as ``cls``; a failure becomes ``SchemaError`` naming field and value."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(describe_validation_error(exc), source=source) from exc


def parse_json(cls: type[T], text: str | bytes, *, source: str | None = None) -> T:
    """Validate JSON text as ``cls``, like :func:`parse`."""
    try:
        return cls.model_validate_json(text)
    except ValidationError as exc:
        raise SchemaError(describe_validation_error(exc), source=source) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message (got value)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{loc}: {err['msg']} (got {shown})")
    return f"{exc.title}: " + "; ".join(parts)


class Coding(Frozen):
    """A code from a code system (LOINC, RxNorm, ATC, SNOMED CT, a local system)."""

    system: str = Field(min_length=1, description="Code system URI, e.g. http://loinc.org")
    code: str = Field(min_length=1)
    display: str | None = None

    def matches(self, other: Coding) -> bool:
        """Same system and code (display ignored)."""
        return self.system == other.system and self.code == other.code


TransformationKind = Literal[
    "unit-conversion",
    "code-mapping",
    "date-shift",
    "pseudonymisation",
    "derivation",
    "timezone-assumed",
    "flag",
]


class Transformation(Frozen):
    """One thing a converter did to a value on its way into the schema."""

    kind: TransformationKind
    detail: str


class Provenance(Frozen):
    """Where an item came from and what was done to it."""

    source_system: str = Field(min_length=1, description="Feed or file the item was read from")
    resource_type: str | None = None
    resource_id: str | None = Field(
        default=None, description="Id in the source (pseudonymised where it identifies)"
    )
    source_file: str | None = None
    source_line: int | None = Field(default=None, ge=1)
    converter: str = Field(min_length=1)
    converter_version: str = Field(min_length=1)
    transformations: tuple[Transformation, ...] = ()


def finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


class HasProvenance(Frozen):
    """Every item of a record names its provenance."""

    id: str = Field(min_length=1, description="Stable id of the item within its record")
    provenance: Provenance

    @field_validator("id")
    @classmethod
    def _no_space(cls, v: str) -> str:
        if v.strip() != v:
            raise ValueError("must not start or end with white space")
        return v
