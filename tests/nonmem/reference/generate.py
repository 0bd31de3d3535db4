"""Write the published-model set's data and reference answers (run by hand; the files are committed).

    PYTHONPATH=. python -m tests.nonmem.reference.generate [--simulate] [--jobs 2] [MODEL ...]

``--simulate`` draws each subject's true ETAs from Omega (seeded), writes ``data.csv`` (DV = the
reference model's prediction times residual noise, redrawn while negative) and ``truth.csv``.
Always: the reference MAP fit of every subject, written as ``reference.phi`` (NONMEM's format:
ETAs in NONMEM's order, ETC, OBJ with the Laplace terms) and ``reference.csv`` (the MAP
objective at the mode and the largest gradient component there). Not NONMEM: see engine.py.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from tests.nonmem.reference.designs import COLUMNS, DESIGNS, N_SUBJECTS
from tests.nonmem.reference.engine import ReferenceFit, fit_subject, predictions, read_data, write_phi
from tests.nonmem.reference.models import MODELS

ROOT = Path(__file__).resolve().parents[3] / "examples" / "nonmem" / "published"


def simulate(name: str, seed: int = 2026) -> None:
    model = MODELS[name]
    rng = np.random.default_rng(seed + sum(map(ord, name)))
    folder = ROOT / name
    rows_all, truth = [], []
    for sid in range(1, N_SUBJECTS + 1):
        eta = rng.multivariate_normal(np.zeros(model.n_eta), model.omega)
        rows = DESIGNS[name](sid, rng)
        tmp = folder / f".sim-{os.getpid()}.csv"
        _write(tmp, COLUMNS[name], [{**r, "DV": 1.0 if r["DV"] == "" else r["DV"]} for r in rows])
        records = read_data(tmp)[str(sid)]
        tmp.unlink()
        f = predictions(model, records, eta)
        k = 0
        for r in rows:
            if r["DV"] == "":
                sd = math.sqrt(model.variance(float(f[k]), int(r["CMT"])))
                if sd <= 0:
                    raise ValueError(f"{name} subject {sid}: no residual variance at TIME {r['TIME']}")
                y = -1.0
                while y <= 0:
                    y = float(f[k] + sd * rng.standard_normal())
                r["DV"] = f"{y:.6g}"
                k += 1
        rows_all += rows
        truth.append({"ID": sid, **{f"ETA{i + 1}": f"{v:.8f}" for i, v in enumerate(eta)}})
    _write(folder / "data.csv", COLUMNS[name], rows_all)
    _write(folder / "truth.csv", tuple(truth[0]), truth)


def _write(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="raise")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, ".") for c in columns})


def truth_etas(name: str) -> dict[str, np.ndarray]:
    with (ROOT / name / "truth.csv").open(newline="") as fh:
        return {r["ID"]: np.array([float(v) for k, v in r.items() if k != "ID"]) for r in csv.DictReader(fh)}


def _fit(args: tuple[str, str]) -> ReferenceFit:
    name, sid = args
    records = read_data(ROOT / name / "data.csv")[sid]
    truth = truth_etas(name).get(sid)
    return fit_subject(MODELS[name], sid, records, extra_starts=() if truth is None else (truth,))


def reference(name: str, jobs: int) -> list[ReferenceFit]:
    ids = list(read_data(ROOT / name / "data.csv"))
    tasks = [(name, sid) for sid in ids]
    if jobs > 1:
        with get_context("spawn").Pool(jobs) as pool:
            fits = pool.map(_fit, tasks, chunksize=1)
    else:
        fits = [_fit(t) for t in tasks]
    write_phi(ROOT / name / "reference.phi", fits)
    with (ROOT / name / "reference.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ID", "MAP_OBJECTIVE", "MAX_ABS_GRADIENT", "STARTS"])
        for fit in fits:
            w.writerow([fit.subject, f"{fit.objective:.10f}", f"{fit.gradient_max:.3e}", fit.starts])
    return fits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=sorted(MODELS))
    ap.add_argument("--simulate", action="store_true")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    for name in args.models:
        if args.simulate:
            simulate(name)
        fits = reference(name, args.jobs)
        worst = max(f.gradient_max for f in fits)
        print(
            f"{name}: {len(fits)} subjects, largest |gradient| at the reference modes {worst:.1e}", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
