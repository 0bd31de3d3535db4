"""PharmCAT's outputs imported as they are: ``.phenotype.json``, ``.report.json``, ``.report.tsv``
and outside-call TSVs become ``Genotype`` items with PharmCAT (or the outside source) as caller.

Their ids are ``pharmcat-<GENE>``, so they sit beside the hub's own VCF calls (``vcf-<GENE>``)
in the same record, each with its source. Parsing is plain JSON / TSV: PharmCAT has no Python
reader, and its formats are simple and documented.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.omics.definitions import known_genes
from converters.omics.ids import PatientIds
from converters.omics.pgx import provenance_for
from converters.omics.report import ImportReport
from converters.omics.store import write_items
from interop.errors import ConversionError
from interop.schema import Genotype, Transformation
from interop.schema.patient import CallStatus

__all__ = ["PharmcatCall", "import_pharmcat", "read_pharmcat"]

CONVERTER = "converters.omics.pharmcat"


@dataclass(frozen=True)
class PharmcatCall:
    """One gene's call as PharmCAT reported it."""

    gene: str
    diplotype: str | None
    phenotype: str | None
    activity_score: float | None
    caller: str
    outside: bool
    missing_positions: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    line: int | None = None
    resource_type: str = "PharmCAT gene report"
    id_prefix: str = "pharmcat"


def _score(value: Any) -> float | None:
    if value in (None, "", "n/a", "N/A"):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _from_gene_report(gene: str, rep: dict[str, Any], version: str) -> PharmcatCall:
    diplotypes = rep.get("sourceDiplotypes") or []
    outside = rep.get("callSource") == "OUTSIDE"
    caller = f"PharmCAT {version}" + (" (outside call)" if outside else "")
    missing = tuple(
        v.get("dbSnpId") or f"{v.get('chromosome')}:{v.get('position')}"
        for v in rep.get("variants") or []
        if v.get("call") in (None, "")
    )
    if not diplotypes:
        return PharmcatCall(gene, None, None, None, caller, outside, missing)
    first = diplotypes[0]
    label = _text(first.get("label"))
    if label in ("Unknown/Unknown", "Unknown"):
        label = None
    phenotypes = [p for p in (first.get("phenotypes") or []) if _text(p)]
    return PharmcatCall(
        gene,
        label,
        "; ".join(p.strip() for p in phenotypes) or None,
        _score(first.get("activityScore")),
        caller,
        outside,
        missing,
        tuple(str(d.get("label")) for d in diplotypes[1:]),
    )


def _json_calls(doc: dict[str, Any], path: Path) -> tuple[str | None, list[PharmcatCall]]:
    meta = doc.get("matcherMetadata") or {}
    sample = meta.get("sampleId")
    if "geneReports" in doc:  # phenotype.json
        version = f"named-allele matcher {meta.get('namedAlleleMatcherVersion', '?')}"
        reports: dict[str, Any] = doc["geneReports"]
    elif "genes" in doc:  # report.json: gene -> report, or source (CPIC, DPWG) -> gene -> report
        version = str(doc.get("pharmcatVersion") or "?")
        genes = doc["genes"]
        reports = {}
        for key, value in genes.items():
            if isinstance(value, dict) and "sourceDiplotypes" in value:
                reports.setdefault(key, value)
            elif isinstance(value, dict):
                for gene, rep in value.items():
                    reports.setdefault(gene, rep)
    else:
        raise ConversionError(
            "not a PharmCAT phenotype.json or report.json (no geneReports or genes)",
            source=str(path),
        )
    calls = []
    for gene, rep in reports.items():
        defversion = rep.get("alleleDefinitionVersion")
        label = version + (f", definitions {defversion}" if defversion else "")
        calls.append(_from_gene_report(gene, rep, label))
    return sample, calls


def _report_tsv(text: str) -> list[PharmcatCall]:
    lines = text.splitlines()
    version = lines[0].removeprefix("PharmCAT").strip() or "?"
    reader = csv.DictReader(io.StringIO("\n".join(lines[1:])), delimiter="\t")
    calls = []
    for n, row in enumerate(reader, start=3):
        outside = (row.get("Outside Call") or "").strip().lower() == "yes"
        missing_text = (row.get("Missing positions") or "").strip()
        missing = (
            ()
            if missing_text.lower() in ("", "no")
            else tuple(m.strip() for m in missing_text.split(",") if m.strip())
        )
        calls.append(
            PharmcatCall(
                (row.get("Gene") or "").strip(),
                _text(row.get("Source Diplotype")),
                _text(row.get("Phenotype")),
                _score(row.get("Activity Score")),
                f"PharmCAT {version}" + (" (outside call)" if outside else ""),
                outside,
                missing,
                line=n,
                resource_type="PharmCAT report.tsv row",
            )
        )
    return calls


def _outside_tsv(text: str) -> list[PharmcatCall]:
    calls = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        cols += [""] * (4 - len(cols))
        calls.append(
            PharmcatCall(
                cols[0],
                _text(cols[1]),
                _text(cols[2]),
                _score(cols[3]),
                "outside call (PharmCAT outside-call file)",
                True,
                line=n,
                resource_type="PharmCAT outside-call row",
                id_prefix="outside-call",
            )
        )
    return calls


def read_pharmcat(path: Path) -> tuple[str | None, list[PharmcatCall]]:
    """``(sample id if the file names one, calls)`` from any of PharmCAT's outputs."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConversionError(f"cannot read: {exc}", source=str(path)) from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConversionError(f"invalid JSON: {exc.msg}", source=str(path), line=exc.lineno) from exc
        if not isinstance(doc, dict):
            raise ConversionError("expected a JSON object", source=str(path))
        return _json_calls(doc, path)
    if text.startswith("PharmCAT"):
        return None, _report_tsv(text)
    return None, _outside_tsv(text)


def _genotype(call: PharmcatCall, path: Path, source_ref: str, pseudo: bool) -> Genotype:
    flags: list[Transformation] = []
    if pseudo:
        flags.append(Transformation(kind="pseudonymisation", detail="sample id -> HMAC-SHA256"))
    if call.alternatives:
        flags.append(
            Transformation(kind="flag", detail="PharmCAT also reported: " + ", ".join(call.alternatives))
        )
    prov = provenance_for(
        f"pharmcat:{path.name}",
        converter=CONVERTER,
        resource_type=call.resource_type,
        resource_id=f"{source_ref}/{call.gene}",
        source_file=path.name,
        source_line=call.line,
        transformations=tuple(flags),
    )
    flagged = bool(call.missing_positions or call.alternatives)
    status: CallStatus = "called"
    if call.diplotype is None and call.phenotype is None:
        status = "unknown"  # PharmCAT read the gene but could not call it
    elif flagged or call.diplotype is None:
        status = "uncertain"
    return Genotype(
        id=f"{call.id_prefix}-{call.gene}",
        gene=call.gene,
        diplotype=call.diplotype,
        phenotype=call.phenotype,
        activity_score=call.activity_score,
        caller=call.caller,
        uncertain=flagged or call.diplotype is None,
        missing_positions=call.missing_positions,
        status=status,
        provenance=prov,
    )


def import_pharmcat(path: Path, out: Path, ids: PatientIds, *, sample: str | None = None) -> ImportReport:
    """Import one PharmCAT output file into the record of its sample."""
    report = ImportReport(source=str(path))
    named, calls = read_pharmcat(path)
    sample_id = sample or named
    if sample_id is None:
        raise ConversionError("this PharmCAT file does not name its sample; give --sample", source=str(path))
    tally = report.tally("gene calls")
    patient_id = ids.patient_id(sample_id)
    if patient_id is None:
        where = f"{ids.source_name(path)}: sample {ids.source_ref(sample_id)}"  # keyed tokens under a key
        tally.skip("sample id not in the mapping file", where, len(calls))
        return report
    genes = known_genes()
    genotypes: list[Genotype] = []
    for call in calls:
        where = f"{path.name}" + (f":{call.line}" if call.line else "") + f" {call.gene}"
        if call.gene not in genes:
            tally.reject("unrecognised gene symbol", where)
            continue
        if call.diplotype is not None and "/" not in call.diplotype:
            tally.reject("not a diplotype (single allele or variant call)", f"{where}: {call.diplotype}")
            continue
        shown = Path(ids.source_name(path))  # provenance names the file by keyed token under a key
        genotypes.append(_genotype(call, shown, ids.source_ref(sample_id), ids.pseudonymising))
        tally.ok()
        if call.diplotype is None:
            report.counts["genes PharmCAT did not call"] += 1
    if genotypes:
        prov = genotypes[0].provenance.replace(resource_type="PharmCAT output", resource_id=None)
        report.written.append(str(write_items(out, patient_id, prov, genotypes=genotypes)))
    return report
