"""Benchmark: cohort validation per patient, batched closed-form path against the per-patient path.

The design of ``bench/cohort.py`` figure 5: gentamicin, two 0.5 h infusions 24 h apart, four
levels per patient (``tests/fixtures/cohort/design_short.json``), a virtual cohort with known
truth (seed 99). Each run is ``run_validation`` end to end in one process (a priori, MAP on all
levels, 3 iterative MAP fits, 200 simulations per patient for NPDE/VPC, bootstrap CIs, report,
tables): the batched path (default) and, as the baseline in the same process, the per-patient
path (``batched=False``), at three cohort sizes. Printed per size: CPU-ms and wall-ms per
patient, the ratio, the share of the batch evaluation (``validate_batch``) in the new path,
peak traced memory (tracemalloc, a separate pass), and the largest difference between the two
paths' metrics (a priori: no MAP fit enters; a posteriori and iterative: within the baseline's
BFGS tolerance).

Run: ``PYTHONPATH=. python bench/validation.py [--sizes 100 300 1000] [--baseline-sizes 100 300 1000]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from interop.cohort import Population, load_design, load_distributions, simulate_cohort
from interop.schema import ModelCard, PatientRecord, parse_json
from interop.schema.cohort import read_cohort
from interop.validation import ValidationOutcome, ValidationSpec, run_validation, validate_batch
from tests.data import COHORT_COVARIATES, COHORT_DESIGN_SHORT, GENTAMICIN_CARD, GENTAMICIN_SBML


def run(
    sbml: str, card: ModelCard, records: list[PatientRecord], out: Path, batched: bool
) -> tuple[float, float, ValidationOutcome]:
    """CPU and wall seconds of one end-to-end validation in this process."""
    c0, t0 = time.process_time(), time.perf_counter()
    res = run_validation(
        sbml, card, records, out, model_version=1, site="bench", scheduler="single", batched=batched
    )
    return time.process_time() - c0, time.perf_counter() - t0, res


def batch_cpu(sbml: str, card: ModelCard, records: list[PatientRecord]) -> float:
    """CPU seconds of the patient evaluation alone (batches of 25, as run_validation makes them)."""
    spec = ValidationSpec(sbml, card.model_dump_json())
    texts = [r.model_dump_json() for r in sorted(records, key=lambda r: r.patient.id)]
    c0 = time.process_time()
    for i in range(0, len(texts), 25):
        validate_batch(spec, tuple(texts[i : i + 25]))
    return time.process_time() - c0


def peak_mib(sbml: str, card: ModelCard, records: list[PatientRecord], out: Path, batched: bool) -> float:
    tracemalloc.start()
    run_validation(
        sbml, card, records, out, model_version=1, site="bench", scheduler="single", batched=batched
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def metric_gap(a: ValidationOutcome, b: ValidationOutcome) -> tuple[float, float]:
    """Largest relative difference of the metric values: a priori, and MAP-based settings."""
    ma, mb = a.summary.metrics, b.summary.metrics
    rel = np.abs(ma.value.to_numpy(float) - mb.value.to_numpy(float)) / np.maximum(
        np.abs(ma.value.to_numpy(float)), 1e-12
    )
    prior = (ma.setting == "a-priori").to_numpy()
    return float(np.nanmax(rel[prior])), float(np.nanmax(rel[~prior]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--baseline-sizes", type=int, nargs="*", default=None, help="default: every size")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc passes")
    args = ap.parse_args()
    base_sizes = set(args.sizes if args.baseline_sizes is None else args.baseline_sizes)
    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    sbml = GENTAMICIN_SBML.read_text()
    tmp = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    design = load_design(COHORT_DESIGN_SHORT)
    population = Population(load_distributions(COHORT_COVARIATES, card))
    n_max = max(args.sizes)
    simulate_cohort(
        sbml,
        card,
        design,
        n_max,
        tmp / "truth",
        population=population,
        scheduler="single",
        records=True,
        seed=99,
    )
    cohort = sorted(read_cohort(tmp / "truth" / "cohort"), key=lambda r: r.patient.id)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine: noisy)")
    print(f"design: {design.description}; 1 + 3 iterative MAP fits and 200 simulations per patient, report")
    run(sbml, card, cohort[:25], tmp / "warm-new", True)  # imports, model compile, matplotlib
    run(sbml, card, cohort[:5], tmp / "warm-old", False)
    for n in sorted(args.sizes):
        records = cohort[:n]
        cpu, wall, new = run(sbml, card, records, tmp / f"new-{n}", True)
        share = batch_cpu(sbml, card, records) / cpu
        line = (
            f"{n:>6} patients  batched: {1000 * cpu / n:6.1f} CPU-ms/patient ({1000 * wall / n:6.1f} wall; "
            f"patient evaluation {100 * share:.0f} %, summary+report+tables the rest)"
        )
        if n in base_sizes:
            cpu0, wall0, old = run(sbml, card, records, tmp / f"old-{n}", False)
            gap_prior, gap_map = metric_gap(old, new)
            line += (
                f"\n{'':>16}per-patient: {1000 * cpu0 / n:6.1f} CPU-ms/patient "
                f"({1000 * wall0 / n:6.1f} wall)  "
                f"ratio {cpu0 / cpu:5.1f}x; metrics: a priori max rel diff {gap_prior:.1e}, "
                f"MAP-based {gap_map:.1e}"
            )
        if not args.no_memory:
            mem = peak_mib(sbml, card, records, tmp / f"mem-new-{n}", True)
            line += f"\n{'':>16}peak traced memory: batched {mem:.1f} MiB"
            if n in base_sizes:
                mem0 = peak_mib(sbml, card, records, tmp / f"mem-old-{n}", False)
                line += f", per-patient {mem0:.1f} MiB"
        print(line + f"  (load average {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
