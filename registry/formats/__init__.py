"""Model formats as plug-ins with one contract (after pharmpy's ``model/external/<fmt>``).

Each module ``registry.formats.<name>`` exports (the typed contract is :class:`FormatPlugin`; a
conformance test checks every plug-in in ``FORMATS`` against it)

- ``detect(raw: bytes) -> bool``: whether the bytes look like this format (cheap, no full parse);
- ``load(raw: bytes, *, source=None) -> tuple[str, ModelCard | None]``: SBML text and the model
  card the format carries (``None`` when it carries none: plain SBML, most OMEX archives);
- optionally ``extra_files(raw: bytes) -> list[ExtraFile]``: further files kept with the version
  (an archive's SED-ML and metadata).

ML models (``ML_FORMATS``: ONNX with its ML card) are plug-ins of their own contract,
:class:`MLFormatPlugin`: ``detect`` as above and ``load_ml(raw, *, source=None)`` returning the
checked model bytes and the card (``registry.formats.onnx``); they have no SBML.

The original upload is always kept beside the SBML (role ``source``), so Antimony or PharmML
text survives conversion. Adding a format is one line in ``FORMATS``; modules are imported on
first use, and a missing one (PharmML before its branch lands) is skipped, not an error.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from interop.errors import RegistryError

if TYPE_CHECKING:
    from interop.schema import ModelCard
    from registry.formats.onnx import MLPackage

__all__ = [
    "FORMATS",
    "ML_FORMATS",
    "ArchivePlugin",
    "ExtraFile",
    "FormatPlugin",
    "MLFormatPlugin",
    "UnknownFormatError",
    "available_formats",
    "detect_format",
    "get_format",
    "get_ml_format",
]

log = logging.getLogger(__name__)

# Detection order matters: archives first, then XML dialects, then text formats.
FORMATS: tuple[str, ...] = ("omex", "pharmml", "sbml", "nonmem", "antimony")
# ML models (no SBML); detected before the mechanistic formats.
ML_FORMATS: tuple[str, ...] = ("onnx",)


class UnknownFormatError(RegistryError):
    """No format plug-in recognises the upload, or the named one does not exist."""


@dataclass(frozen=True)
class ExtraFile:
    path: str
    role: str  # sedml | metadata | model | other
    media_format: str
    data: bytes


@runtime_checkable
class FormatPlugin(Protocol):
    """What a format plug-in module provides (modules meet a Protocol structurally)."""

    def detect(self, raw: bytes) -> bool:
        """Whether the bytes look like this format: cheap, no full parse."""
        ...

    def load(self, raw: bytes, *, source: str | None = None) -> tuple[str, ModelCard | None]:
        """SBML text and the model card the format carries (``None`` when it carries none)."""
        ...


@runtime_checkable
class ArchivePlugin(FormatPlugin, Protocol):
    """A plug-in whose uploads carry further files kept with the version (OMEX: SED-ML, metadata)."""

    def extra_files(self, raw: bytes) -> list[ExtraFile]:
        """The further files, each with its role and media format."""
        ...


@runtime_checkable
class MLFormatPlugin(Protocol):
    """What an ML-model plug-in module provides: detection and the checked model with its card."""

    def detect(self, raw: bytes) -> bool:
        """Whether the bytes look like this format: cheap, no full parse."""
        ...

    def load_ml(self, raw: bytes, *, source: str | None = None) -> MLPackage:
        """The self-contained model bytes, the ML card and the graph's facts."""
        ...


def get_ml_format(name: str) -> MLFormatPlugin:
    """The ML plug-in module for ``name`` (imported lazily)."""
    if name not in ML_FORMATS:
        raise UnknownFormatError(f"unknown ML model format {name!r} (known: {', '.join(ML_FORMATS)})")
    return cast(MLFormatPlugin, importlib.import_module(f"registry.formats.{name}"))


def get_format(name: str) -> FormatPlugin:
    """The plug-in module for ``name`` (imported lazily)."""
    if name not in FORMATS:
        raise UnknownFormatError(f"unknown model format {name!r} (known: {', '.join(FORMATS)})")
    try:
        return cast(FormatPlugin, importlib.import_module(f"registry.formats.{name}"))
    except ModuleNotFoundError as exc:
        if exc.name == f"registry.formats.{name}":
            raise UnknownFormatError(f"the {name} format plug-in is not installed") from exc
        raise


def available_formats() -> list[str]:
    """Formats whose plug-in can be imported here."""
    out = []
    for name in FORMATS:
        try:
            get_format(name)
        except UnknownFormatError:
            continue
        out.append(name)
    return out


def detect_format(raw: bytes, *, source: str | None = None) -> str:
    """The first format whose ``detect`` accepts ``raw`` (ML formats first)."""
    for name in ML_FORMATS:
        if get_ml_format(name).detect(raw):
            return name
    for name in available_formats():
        if get_format(name).detect(raw):
            return name
    raise UnknownFormatError(
        f"not a model format the registry reads ({', '.join([*available_formats(), *ML_FORMATS])})",
        source=source,
    )
