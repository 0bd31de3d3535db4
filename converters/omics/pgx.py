"""VCF -> panel diplotypes -> ``Genotype`` items merged into each patient's record."""

from __future__ import annotations

from pathlib import Path

from converters.omics.calling import GeneCall
from converters.omics.definitions import load_definition
from converters.omics.ids import PatientIds
from converters.omics.report import ImportReport
from converters.omics.store import write_items
from converters.omics.vcf import call_vcf
from interop.errors import ConversionError
from interop.schema import Genotype, Provenance, Transformation

__all__ = ["CONVERTER_VERSION", "genotype_from_call", "import_vcf", "provenance_for"]

CONVERTER_VERSION = "0.1.0"
CALLER = "digphat-interop pgx caller"


def provenance_for(
    source_system: str,
    *,
    converter: str,
    resource_type: str | None = None,
    resource_id: str | None = None,
    source_file: str | None = None,
    source_line: int | None = None,
    transformations: tuple[Transformation, ...] = (),
) -> Provenance:
    return Provenance(
        source_system=source_system,
        resource_type=resource_type,
        resource_id=resource_id,
        source_file=source_file,
        source_line=source_line,
        converter=converter,
        converter_version=CONVERTER_VERSION,
        transformations=transformations,
    )


def _flags(call: GeneCall) -> list[Transformation]:
    flags = []
    if call.missing_positions:
        flags.append(f"positions absent from the file: {', '.join(call.missing_positions)}")
    if call.no_call_positions:
        flags.append(f"no-call genotypes at: {', '.join(call.no_call_positions)}")
    if call.alternatives:
        flags.append(f"equally good alternatives: {', '.join(call.alternatives)}")
    if call.unmatched_positions:
        flags.append(f"genotypes no named allele explains at: {', '.join(call.unmatched_positions)}")
    if call.haplotypes:
        flags.append(f"alleles found (unphased): {', '.join(call.haplotypes)}")
    if call.note:
        flags.append(call.note)
    return [Transformation(kind="flag", detail=f) for f in flags]


def genotype_from_call(call: GeneCall, provenance: Provenance) -> Genotype:
    """The schema item for one call; the caller names the definitions' version."""
    definition = load_definition(call.gene)
    derivation = Transformation(
        kind="derivation",
        detail=(
            f"{call.gene} diplotype called from VCF genotypes with allele definitions "
            f"v{definition.version} (GRCh38); phenotype by {definition.guideline or 'CPIC'}"
        ),
    )
    prov = provenance.replace(transformations=(*provenance.transformations, derivation, *_flags(call)))
    return Genotype(
        id=f"vcf-{call.gene}",
        gene=call.gene,
        diplotype=call.diplotype,
        phenotype=call.phenotype,
        activity_score=call.activity_score,
        caller=f"{CALLER} {CONVERTER_VERSION} (definitions {definition.version})",
        uncertain=call.uncertain,
        missing_positions=call.missing_positions + call.no_call_positions,
        status=call.status,
        provenance=prov,
    )


def _count(report: ImportReport, call: GeneCall) -> None:
    report.tally("gene calls").ok()  # every call becomes a Genotype, uncalled ones with a reason
    if call.status == "not_tested":
        report.counts["genes not tested (no position in the file)"] += 1
    elif call.diplotype is None:
        report.counts["calls without a diplotype (no allele pair fits)"] += 1
    if call.uncertain:
        report.counts["uncertain calls"] += 1
    if call.no_call_positions:
        report.counts["no-call genotypes at panel positions"] += len(call.no_call_positions)
    if call.missing_positions:
        report.counts["panel positions absent from the file"] += len(call.missing_positions)


def import_vcf(
    path: Path, out: Path, ids: PatientIds, *, genes: tuple[str, ...] | None = None
) -> ImportReport:
    """Call the panel for every sample of ``path`` and merge into ``out``'s records."""
    result = call_vcf(path, genes=genes)
    report = result.report
    samples = report.tally("samples")
    pseudo = (
        (Transformation(kind="pseudonymisation", detail="sample id -> HMAC-SHA256 patient id"),)
        if ids.pseudonymising
        else ()
    )
    for sample in result.samples:
        try:
            patient_id = ids.patient_id(sample)
        except ConversionError as exc:
            samples.reject(
                "unusable patient id",
                f"{ids.source_name(path)}: sample {ids.source_ref(sample)}: {exc.message}",
            )
            continue
        if patient_id is None:
            samples.skip(
                "sample id not in the mapping file",
                f"{ids.source_name(path)}: sample {ids.source_ref(sample)}",
            )
            continue
        prov = provenance_for(
            f"vcf:{ids.source_name(path)}",
            converter="converters.omics.vcf",
            resource_type="VCF sample",
            resource_id=ids.source_ref(sample),
            source_file=ids.source_name(path),
            transformations=pseudo,
        )
        genotypes = [genotype_from_call(c, prov) for c in result.calls[sample]]
        for call in result.calls[sample]:
            _count(report, call)
        written = write_items(out, patient_id, prov, genotypes=genotypes)
        report.written.append(str(written))
        samples.ok()
    return report
