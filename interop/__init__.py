"""digphat-interop: the interoperability hub for digital pharmacological twins.

Public surface of the core package; converters and registry are packages of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interop.errors import (
    ConversionError,
    IntegrityError,
    InteropError,
    ModelError,
    NotFoundError,
    PermissionDenied,
    RegistryError,
    SchemaError,
    TwinError,
)

if TYPE_CHECKING:
    from interop.schema import ModelCard, PatientRecord

    __version__: str

__all__ = [
    "ConversionError",
    "IntegrityError",
    "InteropError",
    "ModelError",
    "ModelCard",
    "NotFoundError",
    "PatientRecord",
    "PermissionDenied",
    "RegistryError",
    "SchemaError",
    "TwinError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """The contracts and the version load on first use (PEP 562): ``interop --help`` stays fast."""
    if name in ("ModelCard", "PatientRecord"):
        import interop.schema

        return getattr(interop.schema, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("digphat-interop")
        except PackageNotFoundError:  # running from a source tree without installation
            return "0.1.0"
    raise AttributeError(f"module 'interop' has no attribute {name!r}")
