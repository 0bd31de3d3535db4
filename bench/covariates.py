"""Benchmark: binding covariates from a record, at several record sizes.

    PYTHONPATH=. python bench/covariates.py

Ours: ``interop.twin.covariates.bind_covariates`` for a card with a measurement (carried forward),
a genotype, a condition, a co-medication and a derived Cockcroft-Gault clearance, with its report.
Baseline, in the same run: the measurement-only binding the twin had before (sort the matching
measurements, convert units, one NONMEM-style series), for the measurement covariates alone.
CPU time (process_time) per binding; the ratio is ours / baseline.
"""

from __future__ import annotations

import datetime as dt
import time

from interop.schema import Coding, CovariateSource, PatientRecord
from interop.schema.units import convert
from interop.twin.binding import CovariateSeries
from interop.twin.covariates import bind_covariates
from tests.covariates.records import (
    SCR,
    T0,
    WT,
    card_with,
    condition,
    genotype,
    gentamicin_dose,
    measurement,
    record,
)
from tests.covariates.test_binding import CRCL, CYP2C19, DIALYSIS, INPUTS, rifampicin


def baseline(card_covs: list[tuple[str, CovariateSource]], rec: PatientRecord, origin: dt.datetime) -> dict:
    """The binding before covariates from the whole record (measurements only)."""
    out = {}
    for name, src in card_covs:
        code: Coding = src.measurement  # type: ignore[assignment]
        rows = sorted((m for m in rec.measurements if m.code.matches(code)), key=lambda m: m.time)
        vals = [convert(m.value, m.unit, src.unit or m.unit) for m in rows]
        ts = [(m.time - origin).total_seconds() / 3600.0 for m in rows]
        out[name] = CovariateSeries(name, tuple(ts), tuple(vals))
    return out


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat


def main() -> None:
    card = card_with(
        [
            *INPUTS,
            CRCL,
            CYP2C19,
            DIALYSIS,
            {"name": "RIF", "source": {"comedication": {"atc_prefixes": ["J04AB"]}}},
        ]
    )
    meas_covs = [(c.name, c.source) for c in card.covariates if c.source.measurement is not None]
    print(f"{'measurements':>12} {'ours (ms)':>10} {'baseline (ms)':>14} {'ratio':>6}")
    for n in (10, 100, 1000):
        rows = tuple(
            m
            for k in range(n // 2)
            for m in (
                measurement(f"s{k}", SCR, 1 + k % 5 / 10, "mg/dL", 6 * k),
                measurement(f"w{k}", WT, 70, "kg", 6 * k),
            )
        )
        rec = record(
            measurements=rows,
            doses=(gentamicin_dose("d1", 0), rifampicin("r1", 10)),
            genotypes=(genotype("g1", "CYP2C19", "*1/*2", "Intermediate Metabolizer"),),
            conditions=(condition("c1", "302497006", 12, 48),),
        )
        repeat = max(3, 3000 // n)
        ours = timed(lambda rec=rec: bind_covariates(card, rec, T0), repeat)
        base = timed(lambda rec=rec: baseline(meas_covs, rec, T0), repeat)
        print(f"{n:>12} {ours * 1e3:>10.3f} {base * 1e3:>14.3f} {ours / base:>6.2f}")


if __name__ == "__main__":
    main()
