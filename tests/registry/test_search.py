"""Search by drug (name, ATC, RxNorm), free text, annotation, format, institution, status;
paginated with exact totals and no cap."""

from __future__ import annotations

from interop.schema import ModelCard
from registry import Principal, Registry, SearchQuery
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX


def _ids(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{i.model_id}@{i.version}" for i in page.items]


def test_search_criteria(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    store.submit(sbml, card, principal=Principal("a", "uni-a", "contributor"))
    store.submit(
        sbml,
        card.replace(
            id="vanco-1cmt",
            title="Vancomycin one compartment",
            description="renal",
            drugs=[
                {"system": "http://www.whocc.no/atc", "code": "J01XA01", "display": "vancomycin"},
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "11124",
                    "display": "vancomycin",
                },
            ],
        ),
        principal=Principal("b", "uni-b", "contributor"),
    )
    store.submit_file(BIOMD321_OMEX.read_bytes(), filename=BIOMD321_OMEX.name)
    store.submit_file(ABSORPTION_SBML.read_bytes(), filename=ABSORPTION_SBML.name)
    assert _ids(store.search(drug="gentamicin")) == ["gentamicin-1cmt@1"]
    assert _ids(store.search(drug="VANCO")) == ["vanco-1cmt@1"]
    assert _ids(store.search(atc="J01")) == ["gentamicin-1cmt@1", "vanco-1cmt@1"]
    assert _ids(store.search(atc="J01XA01")) == ["vanco-1cmt@1"]
    assert _ids(store.search(rxnorm="1596450")) == ["gentamicin-1cmt@1"]
    assert _ids(store.search(text="cockcroft gentamicin")) == ["gentamicin-1cmt@1"]
    assert _ids(store.search(text="dopa")) == ["biomd0000000321@1"]
    assert _ids(store.search(text="50%_not there")) == []
    # Annotation terms extracted from the SBML (ChEBI of L-dopa in BIOMD0000000321).
    assert _ids(store.search(annotation="CHEBI:15765")) == ["biomd0000000321@1"]
    assert _ids(store.search(format="omex")) == ["biomd0000000321@1"]
    assert _ids(store.search(institution="uni-b")) == ["vanco-1cmt@1"]
    assert store.search(status="submitted").total == 4 and store.search(status="published").total == 0
    assert _ids(store.search(drug="vancomycin", institution="uni-a")) == []


def test_pagination_has_no_cap(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    for i in range(23):
        store.submit(sbml, card.replace(description=f"variant {i}"))
    first = store.search(SearchQuery(drug="gentamicin", per_page=10))
    assert (first.total, first.pages, len(first.items)) == (23, 3, 10)
    last = store.search(SearchQuery(drug="gentamicin", per_page=10, page=3))
    assert [i.version for i in last.items] == [21, 22, 23]
    every = list(store.iter_search(SearchQuery(drug="gentamicin", per_page=7)))
    assert [i.version for i in every] == list(range(1, 24))
    latest = store.search(SearchQuery(latest_only=True))
    assert [(i.model_id, i.version) for i in latest.items] == [("gentamicin-1cmt", 23)]
