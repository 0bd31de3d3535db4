"""Study designs of the published-model set: the NONMEM data records of each simulated subject.

Each design returns rows (dicts keyed by the control stream's ``$INPUT`` items) with DV left
empty; :mod:`tests.nonmem.reference.generate` fills DV from the reference model at the
subject's true ETAs plus residual noise. Designs are chosen to exercise the construct each model
stands for: samples shortly after the lag time, occasions by OCC, washouts with EVID 3 and 4,
saturable elimination near Km, two analytes, weight changing from record to record.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["COLUMNS", "DESIGNS", "N_SUBJECTS"]

Row = dict[str, float | int | str]
N_SUBJECTS = 30


def _dose(sid: int, t: float, amt: float, cmt: int = 1, evid: int = 1, **extra: float) -> Row:
    return {
        "ID": sid,
        "TIME": round(t, 4),
        "EVID": evid,
        "AMT": amt,
        "CMT": cmt,
        "MDV": 1,
        "DV": ".",
        **extra,
    }


def _obs(sid: int, t: float, cmt: int, **extra: float) -> Row:
    return {"ID": sid, "TIME": round(t, 4), "EVID": 0, "AMT": 0, "CMT": cmt, "MDV": 0, "DV": "", **extra}


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (float(r["TIME"]), 0 if r["EVID"] in (3, 4) else 1))


def tacrolimus_lag(sid: int, rng: np.random.Generator) -> list[Row]:
    """3 mg q12h, six doses; one sample just after the lag (0.83 h), profile, troughs, last dose."""
    dose = float(rng.choice([2.0, 3.0, 4.0]))
    rows = [_dose(sid, 12.0 * k, dose) for k in range(6)]
    first = [0.95 + 0.1 * rng.random(), 1.5 + rng.random(), 3 + 2 * rng.random(), 11.9]
    rows += [_obs(sid, t, 2) for t in first]
    rows += [_obs(sid, 59.9, 2), _obs(sid, 60 + 1 + rng.random(), 2), _obs(sid, 60 + 6 + 4 * rng.random(), 2)]
    return _sorted(rows)


def tacrolimus_lag_eta(sid: int, rng: np.random.Generator) -> list[Row]:
    """The lag design without its levels in the first 2.6 h (a lag drawn longer than that
    would make the prediction 0, where a proportional error has no variance) plus levels exactly at
    the typical lag after the third and sixth doses (drug from earlier doses is still there)."""
    rows = [r for r in tacrolimus_lag(sid, rng) if not (r["EVID"] == 0 and float(r["TIME"]) < 2.6)]
    return _sorted(rows + [_obs(sid, 24.828, 2), _obs(sid, 60.828, 2)])


def tacrolimus_iov(sid: int, rng: np.random.Generator) -> list[Row]:
    """Three occasions a week apart (OCC 1-3): two doses 12 h apart, a profile after the second."""
    dose = float(rng.choice([3.0, 4.0, 5.0]))
    rows: list[Row] = []
    for occ in (1, 2, 3):
        t0 = 168.0 * (occ - 1)
        rows += [_dose(sid, t0, dose, OCC=occ), _dose(sid, t0 + 12, dose, OCC=occ)]
        times = [
            t0 + 11.9,
            t0 + 12 + 0.6 + 0.4 * rng.random(),
            t0 + 12 + 2 + rng.random(),
            t0 + 12 + 6,
            t0 + 23.9,
        ]
        rows += [_obs(sid, t, 2, OCC=occ) for t in times]
    return _sorted(rows)


def tacrolimus_crossover(sid: int, rng: np.random.Generator) -> list[Row]:
    """Two periods of a single 2 mg dose: period 2 starts with EVID 4 (reset and dose) at 168 h, or,
    for every third subject, with an EVID 3 reset at 150 h and an ordinary dose at 168 h."""
    rows: list[Row] = [_dose(sid, 0.0, 2.0)]
    sample = [1.0, 1.5, 2, 3, 4, 6, 8, 12, 24, 48]
    rows += [_obs(sid, t + 0.05 * rng.random(), 2) for t in sample]
    if sid % 3 == 0:
        rows.append({**_dose(sid, 150.0, 0.0, evid=3), "CMT": 2})
        rows.append(_dose(sid, 168.0, 2.0))
    else:
        rows.append(_dose(sid, 168.0, 2.0, evid=4))
    rows += [_obs(sid, 168 + t + 0.05 * rng.random(), 2) for t in sample]
    return _sorted(rows)


def phenytoin_mm(sid: int, rng: np.random.Generator) -> list[Row]:
    """Oral loading 600 mg then 100-150 mg q8h for three days; troughs and peaks; every third
    subject stops and restarts at 240 h with EVID 4 (reset and a new loading dose)."""
    maint = float(rng.choice([100.0, 150.0]))
    rows = [_dose(sid, 0.0, 600.0)] + [_dose(sid, 8.0 * k, maint) for k in range(1, 10)]
    rows += [
        _obs(sid, t, 2) for t in (4 + rng.random(), 23.9, 47.9, 52 + rng.random(), 71.9 + 0.1 * rng.random())
    ]
    if sid % 3 == 0:
        rows.append(_dose(sid, 240.0, 600.0, evid=4))
        rows += [_obs(sid, 240 + t, 2) for t in (3 + rng.random(), 12.0, 24.0)]
    return _sorted(rows)


def parent_metabolite(sid: int, rng: np.random.Generator) -> list[Row]:
    """500 mg over 1 h (RATE 500) at 0 and 12 h; parent (CMT 1) and metabolite (CMT 2) levels."""
    rows = [_dose(sid, 0.0, 500.0, RATE=500.0), _dose(sid, 12.0, 500.0, RATE=500.0)]
    for t in (0.5, 1.0 + 0.2 * rng.random(), 2.5 + rng.random(), 6.0, 11.9, 14 + rng.random(), 24.0):
        rows += [_obs(sid, t, 1, RATE=0.0), _obs(sid, t, 2, RATE=0.0)]
    return _sorted([{**r, "RATE": r.get("RATE", 0.0)} for r in rows])


def phenobarbital_tvcov(sid: int, rng: np.random.Generator) -> list[Row]:
    """Neonates: 20 mg/kg load then 2.5 mg/kg q12h for five days; weight grows 15-40 g a day and is
    recorded on every record; Apgar score fixed per subject."""
    w0 = float(np.round(0.8 + 2.6 * rng.random(), 3))
    gain = (15 + 25 * rng.random()) / 1000 / 24  # kg per hour
    apgr = int(rng.integers(1, 11))
    rows: list[Row] = [_dose(sid, 0.0, round(20 * w0, 1))]
    rows += [_dose(sid, 12.0 * k, round(2.5 * w0, 2)) for k in range(1, 10)]
    rows += [
        _obs(sid, t, 1) for t in (2 + rng.random(), 35.9, 60 + 6 * rng.random(), 107.9, 118 + rng.random())
    ]
    out = []
    for r in _sorted(rows):
        wgt = round(w0 + gain * float(r["TIME"]), 4)
        out.append({**r, "WGT": wgt, "APGR": apgr})
    return out


COLUMNS: dict[str, tuple[str, ...]] = {
    "tacrolimus_lag": ("ID", "TIME", "EVID", "AMT", "CMT", "MDV", "DV"),
    "tacrolimus_lag_eta": ("ID", "TIME", "EVID", "AMT", "CMT", "MDV", "DV"),
    "tacrolimus_iov": ("ID", "TIME", "EVID", "AMT", "CMT", "MDV", "DV", "OCC"),
    "tacrolimus_crossover": ("ID", "TIME", "EVID", "AMT", "CMT", "MDV", "DV"),
    "phenytoin_mm": ("ID", "TIME", "EVID", "AMT", "CMT", "MDV", "DV"),
    "parent_metabolite": ("ID", "TIME", "EVID", "AMT", "RATE", "CMT", "MDV", "DV"),
    "phenobarbital_tvcov": ("ID", "TIME", "EVID", "AMT", "CMT", "MDV", "DV", "WGT", "APGR"),
}
DESIGNS: dict[str, Callable[[int, np.random.Generator], list[Row]]] = {
    "tacrolimus_lag": tacrolimus_lag,
    "tacrolimus_lag_eta": tacrolimus_lag_eta,
    "tacrolimus_iov": tacrolimus_iov,
    "tacrolimus_crossover": tacrolimus_crossover,
    "phenytoin_mm": phenytoin_mm,
    "parent_metabolite": parent_metabolite,
    "phenobarbital_tvcov": phenobarbital_tvcov,
}
