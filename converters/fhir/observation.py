"""Observation -> ``Measurement``: vital signs, labs and drug levels by LOINC code.

The time is the Specimen's collection time when the Observation names a Specimen that carries
one (a drug level's time is when the blood was drawn), else ``effective[x]``. Values are
converted to the table's UCUM unit (the original is kept); codes of one analyte (creatinine
in mg/dL or µmol/L) become the analyte's canonical code and unit through the equivalence
table of ``interop.schema.analytes``; values outside the table's plausible range are rejected.
Pharmacogenomic observations are left to the genomics converter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from converters.fhir.context import Context, Reject, as_received, is_pseudonymised, note
from converters.fhir.refs import reference_key
from converters.fhir.sources import Entry
from converters.fhir.timing import aware
from converters.report import Outcome
from interop.schema import LOINC, Coding, DrugLevel, Measurement, Transformation
from interop.schema.analytes import analyte_of
from interop.schema.units import UnitError, convert

__all__ = ["convert_observation"]

EXCLUDED: dict[str, Outcome] = {
    "entered-in-error": "skipped",
    "cancelled": "skipped",
    "registered": "skipped",
    "unknown": "skipped",
}
GENOMICS_HINTS = ("observation-geneticsGene", "genomics-reporting", "geneticsGene")
GENOMICS_LOINC = {"84413-4", "81247-9", "53040-2", "69548-6", "51963-7", "93044-6"}


def _is_genomic(res: dict[str, Any], codings: list[dict[str, Any]]) -> bool:
    urls = [str(e.get("url", "")) for e in res.get("extension") or [] if isinstance(e, dict)]
    profiles = [str(p) for p in (res.get("meta") or {}).get("profile") or []]
    if any(h in u for u in urls + profiles for h in GENOMICS_HINTS):
        return True
    return any(c.get("system") == LOINC and c.get("code") in GENOMICS_LOINC for c in codings) or any(
        c.get("code") == "363779003" for c in codings
    )  # SNOMED "Genotype determination"


def convert_observation(res: dict[str, Any], model: Any, ctx: Context, entry: Entry, pid: str) -> Measurement:
    status = res.get("status")
    if status in EXCLUDED:
        raise Reject(f"status {status}: excluded", "status", EXCLUDED[status])
    code = res.get("code") or {}
    codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
    if _is_genomic(res, codings):
        raise Reject("pharmacogenomic observation: handled by the genomics converter", "code", "skipped")
    lab = None
    for c in codings:
        lab = ctx.tables.lab(c.get("system"), c.get("code"))
        if lab:
            break
    if lab is None:
        first = codings[0] if codings else {}
        key = f"{first.get('system')}|{first.get('code')}" if first else "<no coding>"
        ctx.report.unmapped_codes[key] += 1
        raise Reject(f"unmapped code {key}", "code", "skipped")
    q = model.valueQuantity
    if q is None or q.value is None:
        if getattr(model, "dataAbsentReason", None) is not None:
            raise Reject("no value (dataAbsentReason given)", "dataAbsentReason", "skipped")
        raise Reject("no valueQuantity", "valueQuantity")
    notes: list[Transformation] = []
    when = None
    spec = res.get("specimen")
    if isinstance(spec, dict) and isinstance(spec.get("reference"), str):
        when = ctx.specimens.get(reference_key(spec["reference"]))
        if when is not None:
            notes.append(note("derivation", "time: Specimen collection time"))
    if when is None:
        period = getattr(model, "effectivePeriod", None)
        when = aware(
            getattr(model, "effectiveDateTime", None)
            or getattr(model, "effectiveInstant", None)
            or (period.start if period is not None else None),
            notes,
        )
    if when is None:
        raise Reject("no effective time and no Specimen collection time", "effective[x]")
    unit_in = q.code or q.unit or ""
    if not unit_in and lab.kind == "bmi":
        unit_in = lab.unit
    value_in = float(q.value)
    analyte = analyte_of((LOINC, lab.code))
    if analyte is not None and analyte.code != lab.code:
        canonical = ctx.tables.labs.get(analyte.code)
        if canonical is None:
            raise Reject(f"analyte {analyte.name}: code {analyte.code} not in the lab table", "code")
        notes.append(note("code-mapping", f"LOINC {lab.code} -> {analyte.code} ({analyte.name})"))
        ctx.report.unit_conversions[f"LOINC {lab.code} -> {analyte.code} ({analyte.name})"] += 1
        lab = replace(canonical, molar_mass=canonical.molar_mass or lab.molar_mass or analyte.molar_mass)
    try:
        value = convert(value_in, unit_in, lab.unit, molar_mass=lab.molar_mass)
    except UnitError as exc:
        raise Reject(f"unit {unit_in!r}: {exc.message}", "valueQuantity.code") from exc
    if unit_in != lab.unit:
        notes.append(note("unit-conversion", f"{unit_in} -> {lab.unit}"))
        ctx.report.unit_conversions[f"{unit_in} -> {lab.unit}"] += 1
    below = q.comparator in ("<", "<=")
    if (lab.low is not None and value < lab.low and not below) or (lab.high is not None and value > lab.high):
        raise Reject(
            f"impossible value {value_in:g} {unit_in} for {lab.display} "
            f"(plausible {lab.low:g}-{lab.high:g} {lab.unit})",
            "valueQuantity.value",
        )
    if lab.kind == "weight":
        ctx.add_weight(pid, when, value)
    time = ctx.place_time(pid, when, notes, "effective[x]", res)
    drug_level = None
    if lab.category == "drug-level" and lab.analyte is not None:
        drug_level = DrugLevel(
            analyte=lab.analyte,
            matrix=lab.matrix or "plasma",  # type: ignore[arg-type]
            lloq=value if below else None,
            below_lloq=below,
        )
    mstatus = status if status in ("final", "preliminary", "amended", "corrected") else "final"
    if mstatus == "preliminary":
        ctx.report.flags["preliminary"] += 1
        notes.append(note("flag", "preliminary result"))
    kept = as_received(res) if is_pseudonymised(res) else None
    if kept is not None:
        value_in, unit_in = kept[0], kept[1] or ""
    return Measurement(
        id=ctx.item_id("Observation", res, entry),
        code=Coding(system=lab.system, code=lab.code, display=lab.display),
        category=lab.category,  # type: ignore[arg-type]
        value=value,
        unit=lab.unit,
        original_value=value_in,
        original_unit=unit_in or None,
        time=time,
        status=mstatus,  # type: ignore[arg-type]
        drug_level=drug_level,
        provenance=ctx.provenance("Observation", res, entry, notes, ctx.encounter_of(res)),
    )
