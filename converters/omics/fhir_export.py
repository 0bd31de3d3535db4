"""Genotypes -> HL7 Genomics Reporting Observations (genotype, therapeutic implication) in a
collection Bundle, validated with fhir.resources (R4B) before it is returned.

Each genotype with a diplotype becomes a ``genotype`` Observation (LOINC 84413-4, gene-studied
component 48018-6 with the HGNC id, value as text and as a PharmVar code for star alleles);
each phenotype a ``therapeutic-implication`` Observation whose 53040-2 component carries it,
``derivedFrom`` the genotype. Uncertain calls say so in a note naming the missing positions.
"""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from converters.omics.definitions import hgnc_id
from converters.omics.fhir_genomics import (
    GENOTYPE_PROFILE,
    HGNC_GENE_ID,
    IMPLICATION_PROFILE,
    OBS_CATEGORY,
    PHARMVAR,
    TBD_CODES,
)
from interop.errors import ConversionError
from interop.schema import LOINC, Genotype, PatientRecord

__all__ = ["export_genotypes_bundle"]


def _in_pharmvar(gene: str) -> bool:
    """PharmVar names this gene's star alleles (the CYPs, NUDT15, SLCO1B1); else text only."""
    return gene.startswith("CYP") or gene in {"NUDT15", "SLCO1B1"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64]


def _gene_component(gene: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": HGNC_GENE_ID, "display": gene}
    coding["code"] = hgnc_id(gene) or gene
    return {
        "code": {"coding": [{"system": LOINC, "code": "48018-6", "display": "Gene studied [ID]"}]},
        "valueCodeableConcept": {"coding": [coding]},
    }


def _genotype_observations(record: PatientRecord, g: Genotype) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{record.patient.id}"}
    category = [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory"}]}]
    notes = []
    if g.uncertain:
        missing = ", ".join(g.missing_positions) or "see source"
        notes.append({"text": f"Uncertain call; positions missing or not called: {missing}"})
    out: list[dict[str, Any]] = []
    geno_id = _slug(f"{g.id}-genotype")
    if g.diplotype is not None:
        value: dict[str, Any] = {"text": f"{g.gene} {g.diplotype}"}
        if g.diplotype.startswith("*") and _in_pharmvar(g.gene):
            value["coding"] = [{"system": PHARMVAR, "code": f"{g.gene}{g.diplotype}"}]
        obs = {
            "resourceType": "Observation",
            "id": geno_id,
            "meta": {"profile": [GENOTYPE_PROFILE]},
            "status": "final",
            "category": category,
            "code": {"coding": [{"system": LOINC, "code": "84413-4", "display": "Genotype display name"}]},
            "subject": subject,
            "method": {"text": g.caller},
            "valueCodeableConcept": value,
            "component": [_gene_component(g.gene)],
        }
        if notes:
            obs["note"] = notes
        out.append(obs)
    if g.phenotype is not None:
        components = [
            {
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": "53040-2",
                            "display": "Genetic variation's effect on drug metabolism",
                        }
                    ]
                },
                "valueCodeableConcept": {"text": g.phenotype},
            }
        ]
        implication: dict[str, Any] = {
            "resourceType": "Observation",
            "id": _slug(f"{g.id}-phenotype"),
            "meta": {"profile": [IMPLICATION_PROFILE]},
            "status": "final",
            "category": category,
            "code": {"coding": [{"system": TBD_CODES, "code": "therapeutic-implication"}]},
            "subject": subject,
            "component": components,
        }
        if g.diplotype is not None:
            implication["derivedFrom"] = [{"reference": f"Observation/{geno_id}"}]
        else:
            components.append(_gene_component(g.gene))
        out.append(implication)
    return out


def export_genotypes_bundle(record: PatientRecord) -> dict[str, Any]:
    """A collection Bundle of Genomics Reporting Observations for the record's genotypes."""
    # No fullUrl: optional in a collection; references stay relative (Observation/<id>).
    entries = [{"resource": obs} for g in record.genotypes for obs in _genotype_observations(record, g)]
    doc = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    try:
        Bundle.model_validate(doc)
    except ValidationError as exc:  # a bug here, not bad input: say so precisely
        raise ConversionError(f"exported Bundle does not validate: {exc}") from exc
    return doc
