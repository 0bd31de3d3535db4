"""The registry's metadata graph: every stored version's card and SBML annotations as RDF."""

from __future__ import annotations

from rdflib import Graph
from sqlalchemy import select
from sqlalchemy.orm import Session

from interop.schema import MLCard, ModelCard, parse
from registry import repository as repo
from registry.annotations import Annotation, extract_metadata
from registry.blobs import BlobStore
from registry.db import AnnotationRow, VersionRow
from registry.formats import ML_FORMATS
from registry.formats.sbml import read_document
from registry.rdf import VersionFacts, add_version, new_graph

__all__ = ["build_graph"]


def build_graph(s: Session, blobs: BlobStore, model_id: str | None, version: int | None) -> Graph:
    """One version's graph (with creators read from its SBML), or every version's (without)."""
    g = new_graph()
    if model_id is not None:
        rows = [repo.find_version(s, model_id, version)]
    else:
        rows = list(
            s.scalars(
                select(VersionRow)
                .where(VersionRow.status != "withdrawn")
                .order_by(VersionRow.model_id, VersionRow.number)
            )
        )
    for row in rows:
        anns = [
            Annotation(a.element, a.qualifier, a.uri)
            for a in s.scalars(select(AnnotationRow).where(AnnotationRow.version_id == row.id))
        ]
        ml = row.format in ML_FORMATS
        card: ModelCard | MLCard | None = None
        if row.card is not None:
            card = parse(MLCard, row.card) if ml else parse(ModelCard, row.card)
        facts = VersionFacts(
            row.model_id,
            row.number,
            row.title,
            row.institution,
            row.status,
            row.format,
            row.sbml_sha256,
            row.created_at,
        )
        creators: tuple[str, ...] = ()
        if model_id is not None and not ml:
            creators = extract_metadata(read_document(blobs.get(row.sbml_sha256).decode("utf-8"))).creators
        add_version(g, facts, card, anns, creators)
    return g
