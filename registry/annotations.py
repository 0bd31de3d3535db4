"""What an SBML file already says about itself: id, name, creators and MIRIAM annotations.

libsbml parses the RDF annotation blocks into CV terms (qualifier + resource URIs) and the
model history (creators); we walk every element and keep each (element, qualifier, URI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import libsbml

from interop.schema import Coding, MLCard

__all__ = ["Annotation", "SbmlMetadata", "extract_metadata", "ml_annotations"]


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


_NS = {
    "http://biomodels.net/model-qualifiers/": "bqmodel",
    "http://biomodels.net/biology-qualifiers/": "bqbiol",
}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def _qualifier(cv: libsbml.CVTerm) -> str | None:
    """``bqmodel:NAME`` / ``bqbiol:NAME`` of a qualifier libsbml knows, else None."""
    if cv.getQualifierType() == libsbml.MODEL_QUALIFIER:
        name = libsbml.ModelQualifierType_toString(cv.getModelQualifierType())
        return f"bqmodel:{name}" if name else None
    if cv.getQualifierType() == libsbml.BIOLOGICAL_QUALIFIER:
        name = libsbml.BiolQualifierType_toString(cv.getBiologicalQualifierType())
        return f"bqbiol:{name}" if name else None
    return None


def _raw_qualifiers(sb: libsbml.SBase) -> dict[str, list[str]]:
    """Resource URI -> qualifiers as written in the element's RDF (libsbml forgets the names of
    qualifiers it does not know, e.g. ``bqmodel:hasProperty``; the annotation XML still has them)."""
    out: dict[str, list[str]] = {}
    ann = sb.getAnnotation()
    stack = [ann] if ann is not None else []
    while stack:
        node = stack.pop()
        prefix = _NS.get(node.getURI())
        if prefix is not None:
            inner = [node]
            while inner:
                n = inner.pop()
                res = n.getAttrValue("resource", _RDF)
                if res:
                    out.setdefault(res, []).append(f"{prefix}:{node.getName()}")
                inner.extend(n.getChild(i) for i in range(n.getNumChildren()))
            continue
        stack.extend(node.getChild(i) for i in range(node.getNumChildren()))
    return out


def _walk(sb: libsbml.SBase, label: str, out: list[Annotation]) -> None:
    raw: dict[str, list[str]] | None = None
    for i in range(sb.getNumCVTerms()):
        cv = sb.getCVTerm(i)
        q = _qualifier(cv)
        res = cv.getResources()
        for j in range(res.getLength()):
            uri = res.getValue(j)
            if q is None:  # an unknown qualifier: keep it as the plain RDF predicate it was written as
                raw = _raw_qualifiers(sb) if raw is None else raw
                names = raw.get(uri) or ["bqmodel:unknown"]
                out.extend(Annotation(label, n, uri) for n in names)
            else:
                out.append(Annotation(label, q, uri))
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


PREDICTS = "reg:predicts"
FEATURE = "reg:feature"


def _code_uri(c: Coding) -> str:
    return f"{c.system.rstrip('/')}/{quote(c.code, safe='')}"


def ml_annotations(card: MLCard) -> tuple[Annotation, ...]:
    """An ML card's predicted quantity and features as annotations (searchable, and in the RDF):
    ``reg:predicts`` on the model, ``reg:feature`` on one node per feature (its code's URI)."""
    p = card.predicts
    out = [Annotation("", PREDICTS, f"urn:digphat:predicts:{p.kind}:{quote(p.name, safe='')}")]
    if p.code is not None:
        out.append(Annotation("", PREDICTS, _code_uri(p.code)))
    for f in card.features:
        src = f.source
        uris: list[str] = []
        if src.measurement is not None:
            uris.append(_code_uri(src.measurement))
        elif src.genotype is not None:
            uris.append(f"https://identifiers.org/hgnc.symbol:{src.genotype.gene}")
        elif src.condition is not None:
            uris += [_code_uri(c) for c in src.condition.codes]
        elif src.comedication is not None:
            uris += [_code_uri(c) for c in src.comedication.codes]
            uris += [f"https://identifiers.org/atc:{a}" for a in src.comedication.atc_prefixes]
        else:
            uris.append(f"urn:digphat:feature:{src.kind}:{f.name}")
        out += [Annotation(f.name, FEATURE, u) for u in uris]
    return tuple(out)
