"""The state of one conversion: code tables, key, indices of context resources, the report.

Context resources (Patient, Medication, Encounter, Specimen) and body weights are indexed as
they stream past, so items referencing them resolve without holding the feed in memory.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from converters.fhir.codes import CodeTables
from converters.fhir.dateshift import shift_date, shift_datetime, shift_days
from converters.fhir.notes import note
from converters.fhir.refs import reference_key
from converters.fhir.sources import Entry
from converters.fhir.versions import FhirVersion
from converters.pseudonym import pseudonymise
from converters.report import ConversionReport, Outcome
from interop.schema import Coding, Provenance, Transformation

__all__ = ["CONVERTER", "CONVERTER_VERSION", "Context", "MedicationInfo", "Reject", "Strength"]

CONVERTER = "converters.fhir"
CONVERTER_VERSION = "0.2.0"
PSEUDONYM_TAG = "urn:digphat:interop|pseudonymised"  # resources we exported: ids already pseudonymous


class Reject(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A resource is not converted: ``outcome`` says whether it was rejected or skipped, and why."""

    def __init__(self, reason: str, field: str | None = None, outcome: Outcome = "rejected"):
        super().__init__(reason)
        self.reason, self.field, self.outcome = reason, field, outcome


class Defer(Exception):  # noqa: N818
    """A resource needs context not seen yet (its Patient, or all weights): retry at the end."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason, self.field = reason, field


@dataclass(frozen=True)
class Strength:
    """Amount of active ingredient per unit of product (e.g. 250 mg per 1 TAB)."""

    numerator: float
    numerator_unit: str
    denominator: float
    denominator_unit: str


@dataclass(frozen=True)
class MedicationInfo:
    codings: tuple[Coding, ...]
    strength: Strength | None
    name: str | None


@dataclass
class Context:
    key: bytes
    tables: CodeTables
    report: ConversionReport
    version: FhirVersion | None = None
    date_shift: bool = False
    export_time: dt.datetime | None = None  # later times are impossible
    final_pass: bool = False
    weight_window: dt.timedelta = dt.timedelta(days=30)
    patients: dict[str, str] = field(default_factory=dict)  # reference key -> pseudonymous id
    medications: dict[str, MedicationInfo] = field(default_factory=dict)
    encounters: dict[str, str] = field(default_factory=dict)  # reference key -> pseudonymous id
    specimens: dict[str, dt.datetime] = field(default_factory=dict)  # reference key -> collected
    weights: dict[str, list[tuple[dt.datetime, float]]] = field(default_factory=dict)
    _shifts: dict[str, int] = field(default_factory=dict)

    # -- identities -------------------------------------------------------------------------
    def item_id(self, rtype: str, res: dict[str, Any], entry: Entry) -> str:
        rid = res.get("id")
        if is_pseudonymised(res) and isinstance(rid, str):
            return rid
        if isinstance(rid, str) and rid:
            return pseudonymise(self.key, rtype, rid)
        # no id: the content itself identifies the resource (stable across runs)
        return pseudonymise(self.key, rtype, json.dumps(res, sort_keys=True, default=str))

    def provenance(
        self,
        rtype: str,
        res: dict[str, Any],
        entry: Entry,
        notes: list[Transformation],
        encounter: str | None = None,
    ) -> Provenance:
        rid = res.get("id")
        shown = rid if is_pseudonymised(res) else (pseudonymise(self.key, rtype, rid) if rid else None)
        line = entry.line if entry.line and entry.line > 0 else None
        transforms = [note("pseudonymisation", "ids: keyed HMAC-SHA256")]
        if encounter:
            transforms.append(note("derivation", f"encounter {encounter}"))
        return Provenance(
            source_system=entry.source,
            resource_type=rtype,
            resource_id=str(shown) if shown else None,
            source_file=entry.source,
            source_line=line,
            converter=CONVERTER,
            converter_version=CONVERTER_VERSION,
            transformations=(*transforms, *notes),
        )

    # -- references ---------------------------------------------------------------------------
    def patient_of(self, res: dict[str, Any], field_name: str = "subject") -> str:
        """The pseudonymous id of the resource's patient; ``Defer`` while it may still come."""
        ref = res.get(field_name) or res.get("patient")
        value = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(value, str) or not value:
            raise Reject(f"no {field_name} reference to a Patient", field_name)
        pid = self.patients.get(reference_key(value))
        if pid is None:
            if self.final_pass:
                raise Reject(f"{field_name} {value!r}: no such Patient in the feed", field_name)
            raise Defer(f"{field_name} {value!r} not seen yet", field_name)
        return pid

    def encounter_of(self, res: dict[str, Any]) -> str | None:
        for name in ("encounter", "context"):
            ref = res.get(name)
            value = ref.get("reference") if isinstance(ref, dict) else None
            if isinstance(value, str):
                return self.encounters.get(reference_key(value))
        return None

    # -- time -----------------------------------------------------------------------------------
    def shift_for(self, pid: str) -> int:
        if pid not in self._shifts:
            self._shifts[pid] = shift_days(self.key, pid)
        return self._shifts[pid]

    def place_time(
        self, pid: str, value: dt.datetime, notes: list[Transformation], field_name: str
    ) -> dt.datetime:
        """Check the time against the export time, then date-shift it if asked."""
        if self.export_time is not None and value > self.export_time:
            raise Reject(
                f"{field_name} {value.isoformat()} is after the export ({self.export_time.isoformat()})",
                field_name,
            )
        if not self.date_shift:
            return value
        days = self.shift_for(pid)
        if not any(n.kind == "date-shift" for n in notes):
            notes.append(note("date-shift", "secret per-patient offset (whole days)"))
        return shift_datetime(value, days)

    def place_date(self, pid: str, value: dt.date) -> dt.date:
        return shift_date(value, self.shift_for(pid)) if self.date_shift else value

    # -- weights ----------------------------------------------------------------------------------
    def add_weight(self, pid: str, when: dt.datetime, kg: float) -> None:
        series = self.weights.setdefault(pid, [])
        bisect.insort(series, (when, kg))

    def weight_at(self, pid: str, when: dt.datetime) -> tuple[float, dt.datetime] | None:
        """The body weight (kg) measured nearest to ``when`` within the window, if any."""
        series = self.weights.get(pid) or []
        best: tuple[float, dt.datetime] | None = None
        best_gap: dt.timedelta | None = None
        for t, kg in series:
            gap = abs(t - when)
            if gap <= self.weight_window and (best_gap is None or gap < best_gap):
                best, best_gap = (kg, t), gap
        return best


def is_pseudonymised(res: dict[str, Any]) -> bool:
    meta = res.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    return any(
        isinstance(t, dict) and f"{t.get('system')}|{t.get('code')}" == PSEUDONYM_TAG for t in tags or []
    )
