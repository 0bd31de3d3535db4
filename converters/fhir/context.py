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
from converters.pseudonym import is_pseudonym, pseudonymise, source_token
from converters.report import ImportReport, Outcome
from interop.schema import Coding, Provenance, Transformation

__all__ = [
    "CONVERTER",
    "CONVERTER_VERSION",
    "DATE_SHIFT_TAG",
    "ORIGINAL_EXT",
    "PSEUDONYM_TAG",
    "Context",
    "MedicationInfo",
    "Reject",
    "Strength",
    "as_received",
    "patient_ref_key",
]

CONVERTER = "converters.fhir"
CONVERTER_VERSION = "0.2.0"
TAG_SYSTEM = "urn:digphat:interop"
PSEUDONYM_TAG = f"{TAG_SYSTEM}|pseudonymised"  # resources we exported: ids already pseudonymous
DATE_SHIFT_TAG = f"{TAG_SYSTEM}|date-shifted"  # resources we exported from a date-shifted record
SOURCE_SYSTEM = "fhir"
ORIGINAL_EXT = f"{TAG_SYSTEM}:as-received"  # extension: the value and unit as first received


def as_received(res: dict[str, Any]) -> tuple[float, str | None] | None:
    """The as-received value and unit an export carried along (our extension), if any."""
    extensions = res.get("extension")
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, dict) and ext.get("url") == ORIGINAL_EXT:
            q = ext.get("valueQuantity")
            if isinstance(q, dict) and isinstance(q.get("value"), int | float):
                unit = q.get("unit")
                return float(q["value"]), str(unit) if unit else None
    return None


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
    products: tuple[tuple[str, str | None], ...] = ()  # RxNorm codes as received, with their display


@dataclass
class Context:
    key: bytes
    tables: CodeTables
    report: ImportReport
    version: FhirVersion | None = None
    date_shift: bool = True
    export_time: dt.datetime | None = None  # later times are impossible
    final_pass: bool = False
    weight_window: dt.timedelta = dt.timedelta(days=30)
    patients: dict[str, str] = field(default_factory=dict)  # reference key -> pseudonymous id
    medications: dict[str, MedicationInfo] = field(default_factory=dict)
    encounters: dict[str, str] = field(default_factory=dict)  # reference key -> pseudonymous id
    specimens: dict[str, dt.datetime] = field(default_factory=dict)  # reference key -> collected
    weights: dict[str, list[tuple[dt.datetime, float]]] = field(default_factory=dict)
    _shifts: dict[str, int] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    # -- identities -------------------------------------------------------------------------
    def item_id(self, rtype: str, res: dict[str, Any], entry: Entry) -> str:
        rid = res.get("id")
        if is_pseudonymised(res) and is_pseudonym(rid):
            return str(rid)
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
        line = entry.line if entry.line and entry.line > 0 else None
        transforms = [note("pseudonymisation", "ids and source file: keyed HMAC-SHA256")]
        if encounter:
            transforms.append(note("derivation", f"encounter {encounter}"))
        return Provenance(
            source_system=SOURCE_SYSTEM,
            resource_type=rtype,
            resource_id=self.resource_token(rtype, res),
            source_file=self.source_token(entry.source),
            source_line=line,
            converter=CONVERTER,
            converter_version=CONVERTER_VERSION,
            transformations=(*transforms, *notes),
        )

    def resource_token(self, rtype: str, res: dict[str, Any]) -> str | None:
        """The resource's id as outputs show it: keyed hash (kept as is when already pseudonymous)."""
        rid = res.get("id")
        if rid is None or rid == "":
            return None
        return (
            str(rid)
            if is_pseudonymised(res) and is_pseudonym(rid)
            else pseudonymise(self.key, rtype, str(rid))
        )

    def source_token(self, source: str) -> str:
        """The input file's keyed token (cached: one per file)."""
        token = self._tokens.get(source)
        if token is None:
            token = self._tokens[source] = source_token(self.key, source)
        return token

    # -- references ---------------------------------------------------------------------------
    def patient_of(self, res: dict[str, Any], field_name: str = "subject") -> str:
        """The pseudonymous id of the resource's patient; ``Defer`` while it may still come."""
        ref = patient_ref_key(res, field_name)
        if ref is None:
            raise Reject(f"no {field_name} reference to a Patient", field_name)
        pid = self.patients.get(ref)
        if pid is None:
            if self.final_pass:
                raise Reject(f"{field_name}: no such Patient in the feed", field_name)
            raise Defer(f"{field_name} not seen yet", field_name)
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
        self,
        pid: str,
        value: dt.datetime,
        notes: list[Transformation],
        field_name: str,
        res: dict[str, Any] | None = None,
    ) -> dt.datetime:
        """Check the time against the export time, then date-shift it (unless opted out or already)."""
        if self.export_time is not None and value > self.export_time:
            raise Reject(
                f"{field_name} {value.isoformat()} is after the export ({self.export_time.isoformat()})",
                field_name,
            )
        shift = self.shift_note(res)
        if shift.kind == "date-shift" and shift not in notes:
            notes.append(shift)
        if shift is not SHIFTED:
            return value
        return shift_datetime(value, self.shift_for(pid))

    def shift_note(self, res: dict[str, Any] | None) -> Transformation:
        """What happens to this resource's dates: shifted now, shifted before export, or not shifted."""
        if res is not None and has_tag(res, DATE_SHIFT_TAG):
            return ALREADY_SHIFTED
        return SHIFTED if self.date_shift else NOT_SHIFTED

    def place_date(self, pid: str, value: dt.date, res: dict[str, Any] | None = None) -> dt.date:
        return shift_date(value, self.shift_for(pid)) if self.shift_note(res) is SHIFTED else value

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


SHIFTED = note("date-shift", "secret per-patient offset (whole days)")
ALREADY_SHIFTED = note("date-shift", "shifted before export (date-shifted tag in the source): kept as is")
NOT_SHIFTED = note("flag", "dates not shifted (--no-date-shift)")


def patient_ref_key(res: dict[str, Any], field_name: str = "subject") -> str | None:
    """The key (:func:`reference_key`) of the resource's reference to its Patient, if it has one."""
    ref = res.get(field_name) or res.get("patient")
    value = ref.get("reference") if isinstance(ref, dict) else None
    return reference_key(value) if isinstance(value, str) and value else None


def has_tag(res: dict[str, Any], tag: str) -> bool:
    """Whether ``meta.tag`` or ``meta.security`` carries ``system|code``."""
    meta = res.get("meta")
    if not isinstance(meta, dict):
        return False
    codings = [c for k in ("tag", "security") if isinstance(meta.get(k), list) for c in meta[k]]
    return any(isinstance(t, dict) and f"{t.get('system')}|{t.get('code')}" == tag for t in codings)


def is_pseudonymised(res: dict[str, Any]) -> bool:
    return has_tag(res, PSEUDONYM_TAG)
