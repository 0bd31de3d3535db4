"""Metadata as RDF: card + MIRIAM qualifiers + Dublin Core + identifiers.org, SBML annotations
extracted; Turtle and JSON-LD parse back to the same graph; SPARQL over the registry."""

from __future__ import annotations

import json

from rdflib import Graph, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS

from interop.schema import ModelCard
from registry import Registry
from registry.rdf import BQBIOL, BQMODEL, version_uri
from tests.data import BIOMD321_OMEX


def test_card_as_rdf(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    card = card.replace(
        publications=[{"doi": "10.1000/xyz", "pubmed": "123456"}],
        contributors=[{"name": "Ada Modeller", "orcid": "0000-0002-1825-0097"}],
    )
    store.submit(sbml, card)
    g = store.metadata_graph(card.id, 1)
    v = version_uri(card.id, 1)
    assert (v, BQBIOL.hasPart, URIRef("https://identifiers.org/atc:J01GB03")) in g
    assert (v, BQBIOL.hasTaxon, URIRef("https://identifiers.org/taxonomy:9606")) in g
    assert (v, BQMODEL.isDescribedBy, URIRef("https://identifiers.org/pubmed:123456")) in g
    assert (v, BQMODEL.isDescribedBy, URIRef("https://identifiers.org/doi:10.1000/xyz")) in g
    assert (v, DCTERMS.creator, URIRef("https://orcid.org/0000-0002-1825-0097")) in g
    assert str(g.value(v, DCTERMS.title)) == card.title
    ttl = store.export_rdf(card.id, 1, "turtle")
    jsonld = store.export_rdf(card.id, 1, "json-ld")
    assert json.loads(jsonld)["@context"]["bqbiol"] == str(BQBIOL)
    assert isomorphic(Graph().parse(data=ttl, format="turtle"), Graph().parse(data=jsonld, format="json-ld"))


def test_sbml_annotations_extracted(store: Registry) -> None:
    s = store.submit_file(BIOMD321_OMEX.read_bytes(), filename=BIOMD321_OMEX.name)
    g = store.metadata_graph(s.model_id, s.version)
    v = version_uri(s.model_id, s.version)
    dopa = URIRef(f"{v}#A_dopa")
    assert (dopa, BQBIOL["is"], URIRef("http://identifiers.org/chebi/CHEBI:15765")) in g
    assert (dopa, DCTERMS.isPartOf, v) in g
    model_level = set(g.predicate_objects(v))
    assert any(p == BQMODEL.isDescribedBy for p, _ in model_level)  # BioModels' publication link
    assert list(g.objects(v, DCTERMS.creator))  # creators from the SBML model history


def test_sparql_over_the_whole_registry(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    store.submit(*gentamicin)
    store.submit_file(BIOMD321_OMEX.read_bytes(), filename=BIOMD321_OMEX.name)
    rows = store.sparql("""
        PREFIX bqbiol: <http://biomodels.net/biology-qualifiers/>
        PREFIX dcterms: <http://purl.org/dc/terms/>
        SELECT ?id WHERE {
            ?v bqbiol:hasPart <https://identifiers.org/atc:J01GB03> ; dcterms:identifier ?id }""")
    assert rows == [{"id": "gentamicin-1cmt@1"}]
    rows = store.sparql(
        "PREFIX reg: <https://w3id.org/digphat/registry/vocab#> "
        "SELECT (COUNT(DISTINCT ?v) AS ?n) WHERE { ?v a reg:ModelVersion }"
    )
    assert rows == [{"n": "2"}]
