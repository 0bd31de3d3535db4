"""ML models: an ONNX graph with its ML card, packed as one zip archive.

Packaging (what ``interop ml export`` and ``interop ml pack`` write): a zip holding
``ml-card.json`` (:class:`interop.schema.MLCard`) and the ONNX file the card names
(``artefact``, by default ``model.onnx``); tensors stored as ONNX external data must be further
entries of the same archive, which are inlined, so the stored model is one self-contained file.
A bare ``.onnx`` carries no card and cannot say what it predicts, so it is not accepted alone.

This plug-in meets :class:`registry.formats.MLFormatPlugin` (``detect`` and ``load_ml``), not the
SBML plug-ins' ``load``: an ML model has no SBML. The archive is kept as the version's source.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from interop.errors import ModelError
from interop.schema import MLCard, parse_json
from interop.schema.onnx_model import OnnxFacts, OnnxLimits, inspect_onnx
from registry.formats.omex import check_zip
from registry.formats.sbml import InvalidModelError
from registry.paths import safe_entry

__all__ = ["CARD_ENTRY", "MEDIA_TYPE", "MLPackage", "detect", "load_ml", "pack"]

CARD_ENTRY = "ml-card.json"
MEDIA_TYPE = "application/onnx"
ARCHIVE_MEDIA = "application/zip"


@dataclass(frozen=True)
class MLPackage:
    onnx: bytes  # self-contained (external data inlined)
    card: MLCard
    facts: OnnxFacts


def detect(raw: bytes) -> bool:
    if not raw.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            return any(n.lstrip("./") == CARD_ENTRY for n in zf.namelist())
    except zipfile.BadZipFile:
        return False


def load_ml(raw: bytes, *, source: str | None = None, limits: OnnxLimits = OnnxLimits()) -> MLPackage:
    """The archive's card and checked ONNX model; refuses what ``inspect_onnx`` refuses."""
    check_zip(raw, source)
    where = source or "archive"
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        entries: dict[str, bytes] = {}
        for info in zf.infolist():
            if info.is_dir():
                continue
            entries[safe_entry(info.filename, source=where)] = zf.read(info)
    if CARD_ENTRY not in entries:
        raise InvalidModelError(f"ML archive without {CARD_ENTRY}", source=where)
    card = parse_json(MLCard, entries.pop(CARD_ENTRY), source=f"{where}:{CARD_ENTRY}")
    if card.artefact not in entries:
        raise InvalidModelError(f"the card names {card.artefact!r}, which the archive lacks", source=where)
    onnx = entries.pop(card.artefact)
    try:
        data, facts = inspect_onnx(onnx, external=entries, limits=limits, source=f"{where}:{card.artefact}")
    except ModelError as exc:
        raise InvalidModelError(exc.message, source=exc.source, field=exc.field) from exc
    return MLPackage(data, card, facts)


def pack(onnx: bytes, card: MLCard, external: dict[str, bytes] | None = None) -> bytes:
    """The archive of ``onnx`` (named as the card says), its card and any external-data entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(CARD_ENTRY, card.model_dump_json(indent=2, exclude_defaults=False))
        zf.writestr(card.artefact, onnx)
        for name, data in (external or {}).items():
            zf.writestr(safe_entry(name), data)
    return buf.getvalue()
