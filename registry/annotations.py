"""What an SBML file already says about itself: id, name, creators and MIRIAM annotations.

libsbml parses the RDF annotation blocks into CV terms (qualifier + resource URIs) and the
model history (creators); we walk every element and keep each (element, qualifier, URI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libsbml

__all__ = ["Annotation", "SbmlMetadata", "extract_metadata", "model_id_from"]


@dataclass(frozen=True)
class Annotation:
    element: str  # SBML id (or metaid) of the annotated element; "" for the model itself
    qualifier: str  # bqbiol:is, bqmodel:isDescribedBy, ...
    uri: str


@dataclass(frozen=True)
class SbmlMetadata:
    model_id: str
    name: str
    level: int
    version: int
    creators: tuple[str, ...] = ()
    annotations: tuple[Annotation, ...] = field(default_factory=tuple)


def _qualifier(cv: libsbml.CVTerm) -> str:
    if cv.getQualifierType() == libsbml.MODEL_QUALIFIER:
        return "bqmodel:" + libsbml.ModelQualifierType_toString(cv.getModelQualifierType())
    return "bqbiol:" + libsbml.BiolQualifierType_toString(cv.getBiologicalQualifierType())


def _walk(sb: libsbml.SBase, label: str, out: list[Annotation]) -> None:
    for i in range(sb.getNumCVTerms()):
        cv = sb.getCVTerm(i)
        q = _qualifier(cv)
        res = cv.getResources()
        for j in range(res.getLength()):
            out.append(Annotation(label, q, res.getValue(j)))
    if sb.isSetSBOTerm():
        out.append(Annotation(label, "sboTerm", f"https://identifiers.org/{sb.getSBOTermID()}"))


def extract_metadata(doc: libsbml.SBMLDocument) -> SbmlMetadata:
    """Metadata of a libsbml document (read and checked by the caller)."""
    model = doc.getModel()
    out: list[Annotation] = []
    _walk(model, "", out)
    elements = model.getListOfAllElements()
    for i in range(elements.getSize()):
        el = elements.get(i)
        if el.getNumCVTerms() or el.isSetSBOTerm():
            _walk(el, el.getId() or el.getMetaId(), out)
    creators: list[str] = []
    if model.isSetModelHistory():
        hist = model.getModelHistory()
        for i in range(hist.getNumCreators()):
            c = hist.getCreator(i)
            name = " ".join(p for p in (c.getGivenName(), c.getFamilyName()) if p).strip()
            if name:
                creators.append(name)
    seen: set[Annotation] = set()
    unique = [a for a in out if not (a in seen or seen.add(a))]  # type: ignore[func-returns-value]
    return SbmlMetadata(
        model.getId(), model.getName(), doc.getLevel(), doc.getVersion(), tuple(creators), tuple(unique)
    )


def model_id_from(text: str) -> str:
    """A registry id (``[a-z0-9][a-z0-9._-]{1,63}``) made from an SBML id or file name."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    s = s[:64] or "model"
    return s if len(s) >= 2 else s + "-model"
