"""The hub's exception tree, in one place.

    InteropError
    ├── SchemaError          a record or model card breaks the contracts of ``interop.schema``
    ├── ConversionError      an input file or resource cannot be converted (converters)
    ├── RegistryError        the model store refused or failed an operation (registry)
    │   ├── NotFoundError
    │   ├── IntegrityError   stored bytes no longer match their hash
    │   └── PermissionDenied
    ├── ModelError           an SBML model or card cannot be loaded or simulated
    ├── TwinError            a patient cannot be bound to a model, or estimation failed
    └── MissingExtraError    an optional stack (an install extra) is not installed

Every error carries where it happened (``source``: file, URL or resource id; ``line``;
``field``) so the CLI can print one precise line. Misuse of the API stays ``TypeError`` /
``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "ConversionError",
    "IntegrityError",
    "InteropError",
    "MissingExtraError",
    "ModelError",
    "NotFoundError",
    "PermissionDenied",
    "RegistryError",
    "SchemaError",
    "TwinError",
    "roadrunner_errors",
]


class InteropError(Exception):
    """Base of every error the hub raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(str(self.source) + (f":{self.line}" if self.line is not None else ""))
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class SchemaError(InteropError):
    """A patient record or model card does not satisfy the schema."""


class ConversionError(InteropError):
    """An input (file, line, resource) cannot be converted into the patient schema."""


class RegistryError(InteropError):
    """The model registry refused or failed an operation."""


class NotFoundError(RegistryError):
    """No model or version with that id exists."""


class IntegrityError(RegistryError):
    """Stored bytes no longer match the hash they were stored under."""


class PermissionDenied(RegistryError):
    """The caller's role or institution does not allow the operation."""


class ModelError(InteropError):
    """An SBML model or its card cannot be loaded, compiled or simulated."""


class TwinError(InteropError):
    """A patient cannot be bound to a model, or an estimate cannot be made."""


class MissingExtraError(InteropError):
    """A feature needs a package of an optional install extra that is not installed."""

    def __init__(self, module: str, *, extra: str, purpose: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{purpose} needs {module}, which is not installed: pip install 'digphat-interop[{extra}]'"
        )


@contextmanager
def roadrunner_errors(source: str | None = None) -> Iterator[None]:
    """Translate libRoadRunner's exceptions (plain ``RuntimeError``) into ``ModelError``."""
    try:
        yield
    except InteropError:
        raise
    except RuntimeError as exc:  # roadrunner raises RuntimeError for every failure
        raise ModelError(f"libRoadRunner: {exc}", source=source) from exc
