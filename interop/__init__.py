"""digphat-interop: the interoperability hub for digital pharmacological twins.

Public surface of the core package; converters and registry are packages of their own.
"""

from importlib.metadata import PackageNotFoundError, version

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
from interop.schema import ModelCard, PatientRecord

try:
    __version__ = version("digphat-interop")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

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
