"""NONMEM-style event table (CSV) -> ``PatientRecord`` per ID.

Columns (case-insensitive): ID, TIME, EVID, AMT, CMT, RATE, DUR (infusion duration, h), II, ADDL,
MDV, DV, optional BLQ (1: below the limit) and LLOQ. Other columns are covariates when the mapping
names them (the model card's covariates, an occasion column such as OCC); any other column not in
``ignore`` is reported (skipped, with the reason), never silently taken as a covariate. Missing
values: empty, ``.`` or ``NA``. A covariate value on a row holds from the previous row up to that
row (as NONMEM applies it): each distinct time becomes one measurement at that time, taking the
first row's value there. Rows: EVID 0 with MDV 0 -> drug level; EVID 1 -> dose; EVID 2 ->
covariates only; EVID 3 -> a state reset (an "other" measurement coded ``STATE_RESET``); EVID 4 ->
a reset and the row's dose. Counts add up in the report (per
row kind). A table whose every level is rejected is an error naming the reasons.

Written with the csv module rather than pandas so each error names its line.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from converters.nonmem.mapping import EventTableMapping
from converters.pseudonym import pseudonymise, source_token
from converters.report import ConversionReport
from interop.errors import ConversionError
from interop.schema import Dose, Drug, DrugLevel, Measurement, Patient, PatientRecord, Provenance
from interop.schema.patient import STATE_RESET

__all__ = ["EventTableResult", "read_event_table"]

CONVERTER = "converters.nonmem"
CONVERTER_VERSION = "0.1.0"
REQUIRED = ("ID", "TIME", "EVID", "AMT", "CMT")
KNOWN = {"ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DUR", "II", "ADDL", "MDV", "DV", "BLQ", "LLOQ"}
MISSING = {"", ".", "NA", "NAN"}


@dataclass(frozen=True)
class EventTableResult:
    records: tuple[PatientRecord, ...]
    report: ConversionReport


def _num(value: str, *, path: Path, line: int, column: str, missing: float = math.nan) -> float:
    v = value.strip()
    if v.upper() in MISSING:
        return missing
    try:
        x = float(v)
    except ValueError as exc:
        raise ConversionError(f"not a number: {value!r}", source=str(path), line=line, field=column) from exc
    if not math.isfinite(x):
        raise ConversionError(f"not a finite number: {value!r}", source=str(path), line=line, field=column)
    return x


def read_event_table(
    path: Path, mapping: EventTableMapping, *, ignore: tuple[str, ...] = (), key: bytes | None = None
) -> EventTableResult:
    """Every ID of the table as a ``PatientRecord``; rows converted or reported with a reason.

    With ``key`` (what an importer writes out) a subject's id becomes the keyed pseudonym of the
    table's name and its ID (the same ID in two tables is two people unless the key and name
    match), and provenance names the table by its keyed token; without it (comparing with
    NONMEM in memory) ids are ``id_prefix`` + ID and the file is named as given.
    """
    path = Path(path)
    source_name = source_token(key, path.name) if key else path.name

    def patient_id(sid: str) -> str:
        return pseudonymise(key, f"nonmem:{path.name}", sid) if key else f"{mapping.id_prefix}{sid}"

    report = ConversionReport()
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise ConversionError("empty event table", source=str(path), line=1) from exc
        cols = [c.strip() for c in header]
        upper = [c.upper() for c in cols]
        missing = [c for c in REQUIRED if c not in upper]
        if missing:
            raise ConversionError(f"missing column(s) {', '.join(missing)}", source=str(path), line=1)
        ignored = {c.upper() for c in ignore}
        extra = [c for c in cols if c.upper() not in KNOWN and c.upper() not in ignored]
        mapped = {c.upper() for c in mapping.covariates}
        cov_cols = [c for c in extra if c.upper() in mapped]
        for c in extra:
            if c.upper() not in mapped:
                report.read["column"] += 1
                report.add(
                    "skipped",
                    "column",
                    f"column {c} is not a covariate of the model (map it on the card or pass --ignore {c})",
                    source=str(path),
                    line=1,
                    field=c,
                )
        rows_by_id: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
        for lineno, raw in enumerate(reader, start=2):
            if not raw or all(not x.strip() for x in raw):
                continue
            if len(raw) != len(cols):
                raise ConversionError(
                    f"{len(raw)} fields, header has {len(cols)}", source=str(path), line=lineno
                )
            row = {u: v for u, v in zip(upper, raw, strict=True)}
            row.update({c: v for c, v in zip(cols, raw, strict=True) if c in cov_cols})
            rows_by_id[row["ID"].strip()].append((lineno, row))
    records = [
        _record(patient_id(sid), rows, mapping, cov_cols, path, report, source_name)
        for sid, rows in rows_by_id.items()
    ]
    if report.read["observation"] and not report.converted["observation"]:
        reasons = sorted({r for (kind, _, r) in report.reasons() if kind == "observation"})
        raise ConversionError(
            f"every one of the {report.read['observation']} observation rows was rejected or skipped: "
            + "; ".join(reasons[:5]),
            source=str(path),
        )
    return EventTableResult(tuple(records), report)


def _prov(source_name: str, line: int, kind: str) -> Provenance:
    return Provenance(
        source_system="nonmem-event-table",
        resource_type=kind,
        source_file=source_name,
        source_line=line,
        converter=CONVERTER,
        converter_version=CONVERTER_VERSION,
    )


def _record(
    pid: str,
    rows: list[tuple[int, dict[str, str]]],
    mapping: EventTableMapping,
    cov_cols: list[str],
    path: Path,
    report: ConversionReport,
    source_name: str,
) -> PatientRecord:
    origin = mapping.origin

    def when(hours: float) -> dt.datetime:
        return origin + dt.timedelta(hours=hours)

    drug = Drug(codes=(mapping.drug,), name=mapping.drug.display)
    pending: dict[tuple, tuple[int, dict]] = {}  # split-dose key -> (line, dose fields)
    dose_fields: list[tuple[int, dict]] = []
    measurements: list[Measurement] = []
    cov_seen: dict[str, set[float]] = {c: set() for c in cov_cols}
    last_time = -math.inf
    for line, row in rows:

        def num(col: str, default: float = math.nan, *, _row: dict = row, _line: int = line) -> float:
            return _num(_row.get(col, ""), path=path, line=_line, column=col, missing=default)

        t = num("TIME")
        if math.isnan(t):
            raise ConversionError("TIME is missing", source=str(path), line=line, field="TIME")
        if t < last_time:
            raise ConversionError(
                f"TIME goes backwards ({t} after {last_time}) within one ID",
                source=str(path),
                line=line,
                field="TIME",
            )
        last_time = t
        evid = int(num("EVID", 0.0))
        mdv = int(num("MDV", 1.0 if evid != 0 else 0.0))
        cmt = int(num("CMT", 0.0))
        kind = {0: "observation", 1: "dose", 2: "other-event"}.get(evid, "reset")
        report.read[kind] += 1
        for c in cov_cols:  # NONMEM: the value on this row holds from the previous row to this row
            value = num(c)
            if t in cov_seen[c]:
                continue
            cov_seen[c].add(t)
            report.read["covariate"] += 1
            if math.isnan(value):
                report.add("skipped", "covariate", f"{c} is missing", source=str(path), line=line, field=c)
                continue
            code, unit = mapping.covariate_code(c)
            measurements.append(
                Measurement(
                    id=f"cov-{c}-{line}",
                    code=code,
                    category="other",
                    value=value,
                    unit=unit,
                    time=when(t),
                    provenance=_prov(source_name, line, "covariate"),
                )
            )
            report.converted["covariate"] += 1
        if kind == "reset":
            if evid not in (3, 4):
                report.add(
                    "rejected", kind, f"EVID {evid} is not 0-4", source=str(path), line=line, field="EVID"
                )
                continue
            measurements.append(  # the state reset as an event the twin reads (STATE_RESET)
                Measurement(
                    id=f"reset-{line}",
                    code=STATE_RESET,
                    category="other",
                    value=float(evid),
                    unit="1",
                    time=when(t),
                    provenance=_prov(source_name, line, "reset"),
                )
            )
            report.converted[kind] += 1
            if evid == 3:
                continue
            kind = "dose"  # EVID 4: reset, then this row's dose
            report.read[kind] += 1
        if kind == "other-event":
            report.add("skipped", kind, "EVID 2: covariate-only row", source=str(path), line=line)
            continue
        if kind == "observation":
            if mdv == 1:
                report.add("skipped", kind, "MDV 1 on an observation row", source=str(path), line=line)
                continue
            item = mapping.observation_item
            level_value = num(item) if item else None
            level = mapping.level_compartment(cmt, level_value)
            if level is None:
                which = f"CMT {cmt}" if level_value is None else f"{item} {level_value:g} in CMT {cmt}"
                report.add(
                    "rejected",
                    kind,
                    f"no analyte mapped to {which}",
                    source=str(path),
                    line=line,
                    field=item or "CMT",
                )
                continue
            dv = num("DV")
            if math.isnan(dv):
                raise ConversionError("observation without DV", source=str(path), line=line, field="DV")
            below = num("BLQ", 0.0) == 1
            lloq = num("LLOQ")
            if dv < 0 and not below:
                raise ConversionError(f"negative concentration {dv}", source=str(path), line=line, field="DV")
            measurements.append(
                Measurement(
                    id=f"level-{line}",
                    code=level.analyte,
                    category="drug-level",
                    value=dv,
                    unit=level.unit,
                    time=when(t),
                    provenance=_prov(source_name, line, "observation"),
                    drug_level=DrugLevel(
                        analyte=level.analyte, lloq=None if math.isnan(lloq) else lloq, below_lloq=below
                    ),
                )
            )
            report.converted[kind] += 1
            continue
        amt, rate, dur = num("AMT", 0.0), num("RATE", 0.0), num("DUR", 0.0)
        ii, addl = num("II", 0.0), int(num("ADDL", 0.0))
        target = mapping.dose_compartment(cmt, rate)
        if target is None:
            report.add(
                "rejected",
                kind,
                f"no route mapped to CMT {cmt} with RATE {rate:g}",
                source=str(path),
                line=line,
                field="CMT",
            )
            continue
        if amt <= 0:
            report.add("rejected", kind, "AMT must be > 0", source=str(path), line=line, field="AMT")
            continue
        fields: dict[str, Any] = {
            "route": target.route,
            "amount": amt,
            "start": when(t),
            "interval_h": ii if addl > 0 else None,
            "additional": addl if ii > 0 else 0,
            "adm": target.adm,
        }
        if rate > 0 and dur > 0:
            report.add(
                "rejected", kind, "both RATE and DUR are given", source=str(path), line=line, field="DUR"
            )
            continue
        if rate > 0 or dur > 0:
            fields["rate" if rate > 0 else "duration_h"] = rate if rate > 0 else dur
            fields["route"] = "iv-infusion" if target.route == "iv-bolus" else target.route
        key = (
            t,
            amt,
            ii,
            addl,
            fields["route"],
            target.adm,
            rate if rate > 0 else None,
            dur if dur > 0 else None,
        )
        if key in pending and cmt not in pending[key][1]["_cmts"]:
            pending[key][1]["_cmts"].add(cmt)  # a split dose: the same dose into another compartment
            report.converted[kind] += 1
            report.flags["split-dose rows merged"] += 1
            continue
        fields["_cmts"] = {cmt}
        pending[key] = (line, fields)
        dose_fields.append((line, fields))
        report.converted[kind] += 1
    doses = []
    for line, f in dose_fields:
        f = {k: v for k, v in f.items() if k != "_cmts"}
        try:
            doses.append(
                Dose(
                    id=f"dose-{line}",
                    drug=drug,
                    unit=mapping.amount_unit,
                    status="administered",
                    provenance=_prov(source_name, line, "dose"),
                    **f,
                )
            )
        except ValidationError as exc:  # a dose the schema refuses: the line and why, no traceback
            why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'dose'}: {e['msg']}" for e in exc.errors())
            raise ConversionError(f"invalid dose: {why}", source=str(path), line=line) from exc
    patient = Patient(id=pid, provenance=_prov(source_name, rows[0][0], "ID"))
    return PatientRecord(patient=patient, measurements=tuple(measurements), doses=tuple(doses))
