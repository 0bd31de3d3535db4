"""``PatientRecord`` -> NONMEM-style event table (CSV), the reverse of :mod:`converters.nonmem.read`.

Each dose becomes one row per compartment mapped to its route (NONMEM's split-dose idiom: the
full AMT in every row, the model's F1/F2 split it; RATE is the row's code, -2 say, or the
infusion rate); each drug level a row in its analyte's compartment (BLQ and LLOQ columns when
any level is below the limit). Covariate columns carry, on every row, the value that holds up
to that row's time (the measurement at or after it), as NONMEM reads them.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from converters.nonmem.mapping import EventTableMapping
from interop.errors import ConversionError
from interop.schema import PatientRecord
from interop.schema.patient import STATE_RESET
from interop.schema.units import UnitError, convert

__all__ = ["write_event_table"]

COLUMNS = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "MDV", "DV"]


def _id(record: PatientRecord, mapping: EventTableMapping) -> str:
    return record.patient.id.removeprefix(mapping.id_prefix)


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def write_event_table(
    records: Sequence[PatientRecord], mapping: EventTableMapping, path: Path | None = None
) -> str:
    """The CSV text of ``records`` (written to ``path`` when given)."""
    cov_names = list(mapping.covariates)
    any_blq = any(m.drug_level and m.drug_level.below_lloq for r in records for m in r.measurements)
    header = COLUMNS + (["BLQ", "LLOQ"] if any_blq else []) + cov_names
    rows: list[list[str]] = []
    for record in records:
        sid = _id(record, mapping)
        events: list[tuple[float, int, list[str]]] = []  # (time, order, row without covariates)

        def hours(t: object) -> float:
            return (t - mapping.origin).total_seconds() / 3600.0  # type: ignore[operator]

        for d in record.administered_doses():
            if not any(c.matches(m) for c in d.drug.codes for m in (mapping.drug,)):
                raise ConversionError(
                    f"dose of another drug than {mapping.drug.code}", source=d.id, field="drug"
                )
            targets = [
                c
                for c in mapping.doses
                if c.route == d.route or (d.route == "iv-infusion" and c.route == "iv-bolus")
            ]
            ids = [c.adm for c in targets if c.adm is not None]
            if ids:  # the route's compartments are told apart: the dose's administration (or the primary)
                if d.adm is not None:
                    adm = d.adm
                elif any(c.adm is None for c in targets):
                    adm = None
                else:
                    adm = ids[0]
                targets = [c for c in targets if c.adm == adm]
                if not targets:
                    raise ConversionError(
                        f"no compartment mapped to route {d.route} administration {d.adm}",
                        source=d.id,
                        field="adm",
                    )
            if not targets:
                raise ConversionError(f"no compartment mapped to route {d.route}", source=d.id, field="route")
            try:
                amount = convert(d.amount, d.unit, mapping.amount_unit)
            except UnitError as exc:
                raise ConversionError(str(exc), source=d.id, field="unit") from exc
            for c in targets:
                if c.rate_code is not None:
                    rate = float(c.rate_code)
                elif d.infusion_hours:
                    rate = amount / d.infusion_hours
                else:
                    rate = 0.0
                row = [
                    sid,
                    _fmt(hours(d.start)),
                    "1",
                    _fmt(amount),
                    str(c.cmt),
                    _fmt(rate),
                    _fmt(d.interval_h or 0.0),
                    str(d.additional),
                    "1",
                    ".",
                ]
                if any_blq:
                    row += [".", "."]
                events.append((hours(d.start), 1, row))
        for m in record.drug_levels():
            lv = next(
                (lv for lv in mapping.levels if m.drug_level and m.drug_level.analyte.matches(lv.analyte)),
                None,
            )
            if lv is None:
                raise ConversionError("no compartment mapped to this analyte", source=m.id, field="analyte")
            if mapping.observation_item is not None:  # the table has no column for the item
                why = f"levels told apart by {mapping.observation_item} cannot be written"
                raise ConversionError(why, source=m.id, field=mapping.observation_item)
            try:
                value = convert(m.value, m.unit, lv.unit)
            except UnitError as exc:
                raise ConversionError(str(exc), source=m.id, field="unit") from exc
            row = [sid, _fmt(hours(m.time)), "0", "0", str(lv.cmt), "0", "0", "0", "0", _fmt(value)]
            if any_blq:
                dl = m.drug_level
                lloq = dl.lloq if dl and dl.lloq is not None else math.nan
                row += ["1" if dl and dl.below_lloq else "0", "." if math.isnan(lloq) else _fmt(lloq)]
            events.append((hours(m.time), 0, row))
        for m in record.measurements:  # state resets: an EVID 3 row before any dose at that time
            if m.code.matches(STATE_RESET):
                row = [sid, _fmt(hours(m.time)), "3", "0", "0", "0", "0", "0", "1", "."]
                events.append((hours(m.time), -1, row + ([".", "."] if any_blq else [])))
        events.sort(key=lambda e: (e[0], e[1]))
        series = {}
        for name in cov_names:
            code, _unit = mapping.covariates[name]
            pts = sorted((hours(m.time), m.value) for m in record.measurements if m.code.matches(code))
            series[name] = pts
        for t, _, row in events:
            for name in cov_names:
                pts = series[name]
                if not pts:
                    row.append(".")
                    continue
                k = bisect.bisect_left([p[0] for p in pts], t)
                row.append(_fmt(pts[min(k, len(pts) - 1)][1]))
            rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text
