"""FHIR genomics Observations <-> ``Genotype`` items, with fhir.resources (R4B models for R4).

Imported shapes:
- HL7 Genomics Reporting IG: genotype (LOINC 84413-4), haplotype (84414-2), and metaboliser
  phenotype as LOINC 53040-2, gene-specific interpretation codes (79716-7, CYP2C9) or a
  therapeutic-implication Observation whose component carries 53040-2; the gene comes from
  the ``gene-studied`` component (48018-6) or, for an implication, from the genotype it is
  ``derivedFrom``.
- R4 core genetics: the ``observation-geneticsGene`` extension with a ``valueString`` such as
  ``*1/*4`` (SNOMED 363779003 "Genotype determination").
Observations of one patient and gene become one ``Genotype`` (id ``fhir-<GENE>``); two
haplotypes without a genotype make a derived diplotype. Every Observation read is converted,
rejected (no value, unknown gene, no patient, conflicting call) or skipped (not genomics).

The way back out is ``converters.omics.fhir_export``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from converters.omics.definitions import known_genes, symbol_for_hgnc
from converters.omics.ids import PatientIds
from converters.omics.pgx import provenance_for
from converters.omics.report import ImportReport, Tally
from converters.omics.store import write_items
from interop.errors import ConversionError
from interop.schema import LOINC, SNOMED, Genotype, Transformation

__all__ = ["import_fhir_genomics", "read_resources"]

CONVERTER = "converters.omics.fhir_genomics"
IG = "http://hl7.org/fhir/uv/genomics-reporting"
GENOTYPE_PROFILE = f"{IG}/StructureDefinition/genotype"
IMPLICATION_PROFILE = f"{IG}/StructureDefinition/therapeutic-implication"
TBD_CODES = f"{IG}/CodeSystem/tbd-codes-cs"
GENE_EXT = "http://hl7.org/fhir/StructureDefinition/observation-geneticsGene"
HGNC_GENE_ID = "http://www.genenames.org/geneId"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PHARMVAR = "http://www.pharmvar.org"

GENOTYPE_CODES = {(LOINC, "84413-4"), (SNOMED, "363779003")}
HAPLOTYPE_CODES = {(LOINC, "84414-2")}
PHENOTYPE_CODES = {(LOINC, "53040-2"), (LOINC, "79716-7")}
IMPLIED_GENE = {(LOINC, "79716-7"): "CYP2C9"}  # CYP2C9 gene product metabolic activity interp.
GENE_STUDIED = (LOINC, "48018-6")
IMPLICATION_CODES = {(TBD_CODES, "therapeutic-implication")}
SKIP_STATUS = {"entered-in-error", "cancelled"}


def read_resources(path: Path) -> list[tuple[str, int | None, dict[str, Any]]]:
    """``(file name, line or None, resource)`` for every resource in a JSON, NDJSON or folder."""
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in (".json", ".ndjson")) if path.is_dir() else [path]
    )
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConversionError(f"cannot read: {exc}", source=str(f)) from exc
        docs: list[tuple[int | None, Any]] = []
        try:
            if f.suffix == ".ndjson":
                docs = [(n, json.loads(ln)) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
            else:
                docs = [(None, json.loads(text))]
        except json.JSONDecodeError as exc:
            raise ConversionError(f"invalid JSON: {exc.msg}", source=str(f), line=exc.lineno) from exc
        for line, doc in docs:
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                for entry in doc.get("entry") or []:
                    if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                        out.append((f.name, line, entry["resource"]))
            elif isinstance(doc, dict):
                out.append((f.name, line, doc))
            else:
                raise ConversionError("expected a FHIR resource object", source=str(f), line=line)
    return out


def _codes(concept: Any) -> set[tuple[str, str]]:
    if concept is None:
        return set()
    return {(c.system or "", c.code or "") for c in (concept.coding or [])}


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return str(concept.text).strip() or None
    for c in concept.coding or []:
        if c.display or c.code:
            return str(c.display or c.code).strip()
    return None


def _gene_from_concept(concept: Any) -> str | None:
    genes = known_genes()
    for c in concept.coding or []:
        for value in (c.display, c.code):
            if value and str(value).upper() in genes:
                return str(value).upper()
        if c.code:
            symbol = symbol_for_hgnc(str(c.code))
            if symbol:
                return symbol
    text = (concept.text or "").strip().upper()
    return text if text in genes else None


def _gene_of(obs: Observation) -> tuple[str | None, str | None]:
    """``(symbol, raw text)`` of the gene an Observation is about."""
    raw = None
    for ext in obs.extension or []:
        if ext.url == GENE_EXT and ext.valueCodeableConcept is not None:
            raw = _concept_text(ext.valueCodeableConcept)
            gene = _gene_from_concept(ext.valueCodeableConcept)
            if gene:
                return gene, raw
    for comp in obs.component or []:
        if GENE_STUDIED in _codes(comp.code) and comp.valueCodeableConcept is not None:
            raw = _concept_text(comp.valueCodeableConcept)
            gene = _gene_from_concept(comp.valueCodeableConcept)
            if gene:
                return gene, raw
    for code in _codes(obs.code):
        if code in IMPLIED_GENE:
            return IMPLIED_GENE[code], None
    return None, raw


def _value(obs: Observation) -> str | None:
    if obs.valueString:
        return str(obs.valueString).strip() or None
    return _concept_text(obs.valueCodeableConcept)


def _strip_gene(value: str, gene: str | None) -> str:
    if gene and value.upper().startswith(gene):
        return value[len(gene) :].strip()
    return value.strip()


def _phenotype_of(obs: Observation) -> str | None:
    if _codes(obs.code) & PHENOTYPE_CODES:
        return _value(obs)
    for comp in obs.component or []:
        codes = _codes(comp.code)
        if codes & PHENOTYPE_CODES or (TBD_CODES, "predicted-phenotype") in codes:
            return _concept_text(comp.valueCodeableConcept) or (comp.valueString or None)
    return None


@dataclass
class _Acc:
    """What the Observations of one patient and gene said."""

    diplotype: str | None = None
    phenotype: str | None = None
    haplotypes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    first: tuple[str, int | None, str] | None = None  # file, line, observation id
    caller: str | None = None
    subject: str = ""


def _caller(obs: Observation) -> str:
    if obs.method is not None and _concept_text(obs.method):
        return f"reported in FHIR ({_concept_text(obs.method)})"
    for p in obs.performer or []:
        if p.display:
            return f"reported in FHIR by {p.display}"
    return "reported in FHIR Observation"


def import_fhir_genomics(path: Path, out: Path, ids: PatientIds) -> ImportReport:
    """Import every genomics Observation in ``path`` into its patient's record."""
    report = ImportReport(source=str(path))
    tally = report.tally("resources")
    parsed: list[tuple[str, int | None, Observation]] = []
    for fname, line, raw in read_resources(path):
        # report examples name the file and resource by keyed tokens under a key
        rid = ids.source_ref(str(raw.get("id")))
        where = (
            f"{ids.source_name(fname)}" + (f":{line}" if line else "") + f" {raw.get('resourceType')}/{rid}"
        )
        if raw.get("resourceType") != "Observation":
            tally.skip(f"not an Observation ({raw.get('resourceType')})", where)
            continue
        try:
            obs = Observation.model_validate(raw)
        except ValidationError as exc:
            tally.reject("invalid FHIR R4 Observation", f"{where}: {exc.errors()[0]['msg']}")
            continue
        parsed.append((fname, line, obs))
    by_id = {o.id: o for _, _, o in parsed if o.id}
    acc: dict[tuple[str, str], _Acc] = {}
    for fname, line, obs in parsed:
        _take(obs, fname, line, by_id, acc, ids, tally)
    _write(acc, out, ids, report)
    return report


def _take(
    obs: Observation,
    fname: str,
    line: int | None,
    by_id: dict[str, Observation],
    acc: dict[tuple[str, str], _Acc],
    ids: PatientIds,
    tally: Tally,
) -> None:
    where = (
        f"{ids.source_name(fname)}"
        + (f":{line}" if line else "")
        + f" Observation/{ids.source_ref(str(obs.id))}"
    )
    codes = _codes(obs.code)
    is_gene_ext = any(e.url == GENE_EXT for e in obs.extension or [])
    kind = (
        "genotype"
        if codes & GENOTYPE_CODES
        else "haplotype"
        if codes & HAPLOTYPE_CODES
        else "phenotype"
        if codes & PHENOTYPE_CODES or codes & IMPLICATION_CODES
        else "genotype"
        if is_gene_ext
        else None
    )
    if kind is None:
        tally.skip("not a genomics Observation", f"{where} code {sorted(codes)}")
        return
    if obs.status in SKIP_STATUS:
        tally.skip(f"status {obs.status}", where)
        return
    gene, raw_gene = _gene_of(obs)
    if gene is None and kind == "phenotype":
        for ref in obs.derivedFrom or []:
            target = by_id.get((ref.reference or "").rsplit("/", 1)[-1])
            if target is not None:
                gene, raw_gene = _gene_of(target)
                if gene:
                    break
    if gene is None:
        reason = "unrecognised gene symbol" if raw_gene else "gene not stated"
        tally.reject(reason, f"{where}" + (f": {raw_gene}" if raw_gene else ""))
        return
    subject = (obs.subject.reference or "") if obs.subject is not None else ""
    if not subject.startswith("Patient/"):
        tally.reject("no Patient subject", where)
        return
    source_id = subject.split("/", 1)[1]
    try:
        patient_id = ids.patient_id(source_id)
    except ConversionError as exc:
        tally.reject("patient id unusable without a key or mapping", f"{where}: {exc.message}")
        return
    if patient_id is None:
        tally.skip("subject not in the mapping file", where)
        return
    entry = acc.setdefault((patient_id, gene), _Acc(subject=source_id))
    if kind == "phenotype":
        value = _phenotype_of(obs)
        if value is None:
            tally.reject("phenotype Observation without a value", where)
            return
        if entry.phenotype not in (None, value):
            tally.reject("conflicts with another phenotype Observation", f"{where}: {value}")
            return
        entry.phenotype = value
    else:
        value = _value(obs)
        if value is None:
            tally.reject(f"{kind} Observation without a value", where)
            return
        value = _strip_gene(value, gene)
        if kind == "haplotype":
            entry.haplotypes.append(value)
        else:
            if "/" not in value:
                tally.reject("genotype value is not a diplotype", f"{where}: {value}")
                return
            if entry.diplotype not in (None, value):
                tally.reject("conflicts with another genotype Observation", f"{where}: {value}")
                return
            entry.diplotype = value
            entry.caller = entry.caller or _caller(obs)
    entry.sources.append(f"Observation/{obs.id}")
    if entry.first is None or kind == "genotype":
        entry.first = (fname, line, str(obs.id))
    tally.ok()


def _write(acc: dict[tuple[str, str], _Acc], out: Path, ids: PatientIds, report: ImportReport) -> None:
    by_patient: dict[str, list[Genotype]] = {}
    for (patient_id, gene), a in acc.items():
        if a.first is None:  # its only Observations were rejected
            continue
        transformations: list[Transformation] = []
        if ids.pseudonymising:
            transformations.append(
                Transformation(kind="pseudonymisation", detail="subject id -> HMAC-SHA256")
            )
        diplotype = a.diplotype
        if diplotype is None and len(a.haplotypes) == 2:
            diplotype = "/".join(a.haplotypes)
            transformations.append(
                Transformation(kind="derivation", detail="diplotype from two haplotype Observations")
            )
        elif diplotype is None and a.haplotypes:
            report.counts["haplotype Observations without a partner (no diplotype made)"] += len(a.haplotypes)
        if len(a.sources) > 1:
            transformations.append(Transformation(kind="derivation", detail="merged " + ", ".join(a.sources)))
        fname, line, obs_id = a.first
        prov = provenance_for(
            f"fhir:{ids.source_name(fname)}",
            converter=CONVERTER,
            resource_type="Observation",
            resource_id=ids.source_ref(obs_id) if obs_id and ids.pseudonymising else obs_id,
            source_file=ids.source_name(fname),
            source_line=line,
            transformations=tuple(transformations),
        )
        by_patient.setdefault(patient_id, []).append(
            Genotype(
                id=f"fhir-{gene}",
                gene=gene,
                diplotype=diplotype,
                phenotype=a.phenotype,
                caller=a.caller or "reported in FHIR Observation",
                provenance=prov,
            )
        )
    for patient_id, genotypes in by_patient.items():
        prov = genotypes[0].provenance.replace(resource_id=None, resource_type="Observation")
        report.written.append(str(write_items(out, patient_id, prov, genotypes=genotypes)))
        report.counts["genotypes written"] += len(genotypes)
