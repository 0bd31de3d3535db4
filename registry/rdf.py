"""Model metadata as RDF (rdflib): the card, MIRIAM qualifiers, Dublin Core, identifiers.org.

Each version is ``<BASE>models/<id>/versions/<n>``; drugs, publications and taxon are linked
through identifiers.org (compact ``prefix:accession`` form; RxNorm, absent from
identifiers.org, through BioPortal's PURL); annotations found inside the SBML keep their
qualifier and URI, attached to the version (model-level) or to an element node. Turtle and
JSON-LD come from rdflib's own serialisers; SPARQL runs on rdflib's engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from rdflib import RDF, RDFS, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, XSD

from interop.schema import ATC, RXNORM, Coding, MLCard, ModelCard
from registry.annotations import Annotation

__all__ = [
    "BASE",
    "BQBIOL",
    "BQMODEL",
    "REG",
    "VersionFacts",
    "add_version",
    "coding_uri",
    "new_graph",
    "serialise",
    "version_uri",
]

BASE = "https://w3id.org/digphat/registry/"
REG = Namespace(BASE + "vocab#")
BQBIOL = Namespace("http://biomodels.net/biology-qualifiers/")
BQMODEL = Namespace("http://biomodels.net/model-qualifiers/")
IDORG = "https://identifiers.org/"
CONTEXT = {
    "dcterms": str(DCTERMS),
    "bqbiol": str(BQBIOL),
    "bqmodel": str(BQMODEL),
    "reg": str(REG),
    "foaf": str(FOAF),
    "rdfs": str(RDFS),
}


@dataclass(frozen=True)
class VersionFacts:
    model_id: str
    version: int
    title: str
    institution: str
    status: str
    format: str
    sbml_sha256: str
    created_at: dt.datetime


def version_uri(model_id: str, version: int) -> URIRef:
    return URIRef(f"{BASE}models/{model_id}/versions/{version}")


def coding_uri(c: Coding) -> URIRef | None:
    """identifiers.org (or PURL) URI of a code, when its system has one."""
    system = c.system.lower()
    if c.system == ATC:
        return URIRef(f"{IDORG}atc:{c.code}")
    if c.system == RXNORM:
        return URIRef(f"http://purl.bioontology.org/ontology/RXNORM/{c.code}")
    if "chebi" in system:
        code = c.code.split(":")[-1]
        return URIRef(f"{IDORG}CHEBI:{code}")
    if "drugbank" in system:
        return URIRef(f"{IDORG}drugbank:{c.code}")
    return None


def new_graph() -> Graph:
    g = Graph()
    for prefix, ns in CONTEXT.items():
        g.bind(prefix, Namespace(ns))
    return g


def _qualifier(q: str) -> URIRef:
    prefix, _, name = q.partition(":")
    if prefix == "bqbiol":
        return BQBIOL[name]
    if prefix == "bqmodel":
        return BQMODEL[name]
    if prefix == "reg":
        return REG[name]
    return REG[q.replace(":", "_")]


def add_version(
    g: Graph,
    facts: VersionFacts,
    card: ModelCard | MLCard | None,
    annotations: Iterable[Annotation] = (),
    creators: Iterable[str] = (),
) -> URIRef:
    """Add one version's triples to ``g``; returns its subject."""
    v = version_uri(facts.model_id, facts.version)
    model = URIRef(f"{BASE}models/{facts.model_id}")
    g.add((v, RDF.type, REG.ModelVersion))
    g.add((v, DCTERMS.identifier, Literal(f"{facts.model_id}@{facts.version}")))
    g.add((v, DCTERMS.isVersionOf, model))
    g.add((model, DCTERMS.identifier, Literal(facts.model_id)))
    g.add((v, DCTERMS.title, Literal(facts.title)))
    g.add((v, DCTERMS.publisher, Literal(facts.institution)))
    g.add((v, DCTERMS.created, Literal(facts.created_at.isoformat(), datatype=XSD.dateTime)))
    g.add((v, DCTERMS.hasVersion, Literal(facts.version)))
    g.add((v, REG.status, Literal(facts.status)))
    g.add((v, REG["format"], Literal(facts.format)))
    g.add((v, REG.sbmlSha256, Literal(facts.sbml_sha256)))
    for name in creators:
        node = BNode()
        g.add((v, DCTERMS.creator, node))
        g.add((node, FOAF.name, Literal(name)))
    if card is not None:
        if card.description:
            g.add((v, DCTERMS.description, Literal(card.description)))
        g.add((v, DCTERMS.license, Literal(card.licence)))
        for person in card.contributors:
            who: URIRef | BNode = URIRef(f"https://orcid.org/{person.orcid}") if person.orcid else BNode()
            g.add((v, DCTERMS.creator, who))
            g.add((who, FOAF.name, Literal(person.name)))
        for drug in card.drugs:
            uri = coding_uri(drug)
            part: URIRef | BNode = uri if uri is not None else BNode()
            g.add((v, BQBIOL.hasPart, part))
            g.add((part, RDFS.label, Literal(drug.display or drug.code)))
            g.add((part, REG.code, Literal(drug.code)))
            g.add((part, REG.codeSystem, URIRef(drug.system)))
        for pub in card.publications:
            if pub.pubmed:
                g.add((v, BQMODEL.isDescribedBy, URIRef(f"{IDORG}pubmed:{pub.pubmed}")))
            if pub.doi:
                g.add((v, BQMODEL.isDescribedBy, URIRef(f"{IDORG}doi:{pub.doi}")))
            if pub.citation:
                g.add((v, DCTERMS.bibliographicCitation, Literal(pub.citation)))
        if isinstance(card, MLCard):
            _add_ml(g, v, card)
        else:
            g.add((v, BQBIOL.hasTaxon, URIRef(f"{IDORG}taxonomy:{card.validity.taxon}")))
            if card.validity.population:
                g.add((v, REG.population, Literal(card.validity.population)))
            for link in card.ml_models:
                g.add((v, REG.usesMLModel, version_uri(link.model_id, link.model_version)))
    for a in annotations:
        subject = v if not a.element else URIRef(f"{v}#{a.element}")
        if subject != v:
            g.add((subject, DCTERMS.isPartOf, v))
            g.add((subject, DCTERMS.identifier, Literal(a.element)))
        g.add((subject, _qualifier(a.qualifier), URIRef(a.uri)))
    return v


def _add_ml(g: Graph, v: URIRef, card: MLCard) -> None:
    """An ML card's facts: what it predicts, its training data, intended use and limits
    (features and the predicted quantity come as ``reg:feature``/``reg:predicts`` annotations)."""
    g.add((v, RDF.type, REG.MLModel))
    g.add((v, REG.predictedQuantity, Literal(card.predicts.name)))
    g.add((v, REG.predictedKind, Literal(card.predicts.kind)))
    g.add((v, REG.predictedUnit, Literal(card.predicts.unit)))
    g.add((v, REG.population, Literal(card.training.population)))
    g.add((v, REG.trainingSubjects, Literal(card.training.n_subjects)))
    for site in card.training.sites:
        g.add((v, REG.trainingSite, Literal(site)))
    g.add((v, REG.intendedUse, Literal(card.intended_use)))
    for limit in card.limits:
        g.add((v, REG.limit, Literal(limit)))


def serialise(g: Graph, fmt: str) -> str:
    """``turtle``, ``json-ld`` or ``xml`` (RDF/XML, as OMEX metadata.rdf)."""
    if fmt == "json-ld":
        return g.serialize(format="json-ld", context=CONTEXT, indent=2)
    if fmt in ("turtle", "xml"):
        return g.serialize(format=fmt)
    raise ValueError(f"unknown RDF format {fmt!r} (turtle, json-ld, xml)")
