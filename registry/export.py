"""A version out as a COMBINE/OMEX archive: the SBML (master), the model card, the original
upload and any kept files, and ``metadata.rdf`` (the version's RDF as RDF/XML)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.formats.omex import CARD_LOCATION, JSON_FORMAT, SBML_FORMAT, write_archive
from registry.paths import is_safe_entry, safe_name
from registry.rdf import serialise

if TYPE_CHECKING:
    from registry.service import Registry

__all__ = ["export_omex"]


def export_omex(registry: Registry, model_id: str, version: int | None = None) -> bytes:
    """The OMEX archive of an SBML version; an ML version (ONNX) comes out as its ML archive
    (``ml-card.json`` + the ONNX file, what ``registry submit`` takes back)."""
    stored = registry.get(model_id, version)
    if stored.ml_card is not None and stored.artefact is not None:
        from registry.formats.onnx import pack

        return pack(stored.artefact, stored.ml_card)
    entries: list[tuple[str, str, bytes, bool]] = [
        ("model.xml", SBML_FORMAT, stored.sbml.encode("utf-8"), True)
    ]
    if stored.card_or_none is not None:
        entries.append(
            (CARD_LOCATION, JSON_FORMAT, stored.card_or_none.model_dump_json(indent=2).encode(), False)
        )
    for f in registry.files(model_id, stored.version):
        if f.role == "model" and f.path == "model.xml":
            continue
        if f.role == "source" and f.path.endswith(".omex"):
            continue  # the archive it came in: its entries are kept one by one below
        path = (
            f.path if is_safe_entry(f.path) else f"files/{safe_name(f.path)}"
        )  # rows stored before the rule
        entries.append((path, f.media_format, registry.file_bytes(f), False))
    rdf = serialise(registry.metadata_graph(model_id, stored.version), "xml")
    return write_archive(entries, rdf)
