"""Benchmark: MAP individualisation time per subject (mapbayr model 001, 100 subjects, one core).

    PYTHONPATH=. python bench/twin_map.py [--baseline-subjects 5]

Ours: the model compiled once, the closed-form linear path, batched difference gradients
(``interop.twin.estimate_map``), cold caches for every subject. Baseline, in the same run: the
same optimiser and settings, but each objective evaluation loads a fresh Tellurium model and
integrates the dosing history segment by segment (what a naive script does). CPU time
(process_time) is the figure of merit on a shared machine; wall time is printed beside it.
NONMEM took about 15 ms per subject in the mapbayr study.

Also: simulation throughput, subjects per second for a 7-day, 14-dose (q12h) regimen on an
hourly grid, for the linear path, the compiled roadrunner path (one subject per run, and an
ensemble of copies per run: ``interop.twin.ensemble``), and a fresh Tellurium model. A fresh
model is cheap because libRoadRunner caches compiled models by content; what remains per
subject is one CVODE restart per dose, which only the ensemble shares between subjects.

ODE models (issue 18): MAP on a Michaelis-Menten one-compartment oral model (the roadrunner
path: no closed form) on the same subjects' data as model 001, timed beside the closed-form path
on model 001 in the same run (goal: within 3x). The MM MAP runs twice: with exact gradients from
forward sensitivities (the default; the sensitivity system is derived and compiled once per
model, timed apart) and with central-difference gradients (2n+1 plain runs per gradient, the
earlier method). Subjects sampled at steady state (after 8 doses) cost far more than those
sampled after the first dose, so the first 20 subjects are used (the first 5 are mostly early
samples and flatter the ratio); the per-subject spread is printed too, and the sensitivity
system at its earlier solver settings (relative 1e-8, absolute 1e-10), in the same run. The
throughput section runs for model 001 and for the Michaelis-Menten model; virtual cohorts of ODE
models use the ensemble path (batches of >= 128 subjects), so that is the figure the goal is
measured on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import tellurium as te  # noqa: E402

from converters.nonmem import read_event_table  # noqa: E402
from interop.schema import ModelCard, ReferenceDose, parse_json  # noqa: E402
from interop.twin import (  # noqa: E402
    CompiledModel,
    Twin,
    bind_patient,
    bind_regimen,
    estimate_map,
    load_model,
    sensitivity,  # noqa: E402
    simulate,
)
from interop.twin.ensemble import BLOCK, simulate_ensemble  # noqa: E402
from interop.twin.estimate import make_predictor  # noqa: E402
from interop.twin.linear import linear_system  # noqa: E402
from interop.twin.model import prepare_sbml  # noqa: E402
from interop.twin.sensitivity import sensitivity_model  # noqa: E402
from interop.workflows.twin import event_table_mapping  # noqa: E402
from tests.data import mapbayr_card, mapbayr_data, mapbayr_sbml  # noqa: E402


def naive_predictor(twin: Twin, prepared_sbml: str) -> Callable[[np.ndarray], np.ndarray]:
    """f(eta) with a fresh Tellurium model per evaluation, integrating between doses."""
    names = list(twin.card.random_effects.etas)
    times = [o.time_h for o in twin.observations]

    def one(eta: np.ndarray) -> np.ndarray:
        r = te.loadSBMLModel(prepared_sbml)
        r.integrator.relative_tolerance = 1e-10
        r.integrator.absolute_tolerance = 1e-12
        for n, v in zip(names, eta, strict=True):
            r[n] = float(v)
        out = np.empty(len(times))
        events = sorted(
            [(d.time_h, 1, d) for d in twin.doses] + [(t, 0, i) for i, t in enumerate(times)],
            key=lambda e: (e[0], e[1]),
        )
        t_cur = 0.0
        for t, kind, item in events:
            if t > t_cur:
                r.simulate(t_cur, t, 2)
                t_cur = t
            if kind == 0:
                out[item] = r["Cc"]
            else:
                r[item.input.target] = r[item.input.target] + item.amount
        return out

    def predict(eta: np.ndarray) -> np.ndarray:
        return np.stack([one(e) for e in eta]) if eta.ndim == 2 else one(eta)

    return predict


MM_ANTIMONY = """
model mm_oral_1cmt
  compartment body = 1
  substanceOnly species A_depot in body = 0
  substanceOnly species A_central in body = 0
  absorption: A_depot -> A_central; KA * A_depot
  elimination: A_central -> ; VMAX * Cc / (KM + Cc)
  TVVMAX = 400; TVKM = 100; TVV = 70; TVKA = 1
  ETA_CL = 0; ETA_V = 0; ETA_KA = 0
  VMAX := TVVMAX * exp(ETA_CL)
  KM := TVKM
  V := TVV * exp(ETA_V)
  KA := TVKA * exp(ETA_KA)
  Cc := A_central / V
end
"""


def mm_model(card001: ModelCard) -> object:
    """A Michaelis-Menten twin of model 001 (same card: routes, observable, Omega, residual error)."""
    card = card001.model_copy(update={"id": "mm-oral-1cmt", "title": "Michaelis-Menten oral 1-cmt"})
    return load_model(te.antimonyToSBML(MM_ANTIMONY), card)


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline-subjects", type=int, default=5)
    ap.add_argument("--ode-subjects", type=int, default=20)
    args = ap.parse_args()
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    card = parse_json(ModelCard, mapbayr_card("001").read_text())
    sbml = mapbayr_sbml("001").read_text()
    model = load_model(sbml, card)
    lin = linear_system(model)
    assert lin is not None
    records = read_event_table(
        mapbayr_data("001"), event_table_mapping(card), ignore=("s2_sampling",)
    ).records
    twins = [bind_patient(model, r) for r in records]

    results: dict[str, tuple[list[float], list[float], list[int]]] = {}
    for label, starts in (("ours, 1 start (as NONMEM)", 1), ("ours, 3 starts (default)", 3)):
        cpu, wall, evals = [], [], []
        for tw in twins:
            lin._cache.clear()  # cold: no help from an earlier subject's evaluations
            c0, w0 = time.process_time(), time.perf_counter()
            fit = estimate_map(tw, starts=starts)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            evals.append(fit.n_evaluations)
        results[label] = (cpu, wall, evals)

    prepared = prepare_sbml(sbml, card)
    base_cpu, base_wall, base_evals, diffs = [], [], [], []
    for tw in twins[: args.baseline_subjects]:
        c0, w0 = time.process_time(), time.perf_counter()
        fit = estimate_map(tw, starts=1, predictor=naive_predictor(tw, prepared))
        base_cpu.append(time.process_time() - c0)
        base_wall.append(time.perf_counter() - w0)
        base_evals.append(fit.n_evaluations)
        ours = estimate_map(tw, starts=1)
        diffs.append(max(abs(fit.etas[k] - ours.etas[k]) for k in fit.etas))

    print("MAP per subject, mapbayr 001 (median over subjects)")
    print(f"{'':34} {'CPU ms':>9} {'wall ms':>9} {'evals':>6} {'subjects':>9}")
    for label, (cpu, wall, evals) in results.items():
        print(
            f"{label:34} {median_ms(cpu):9.2f} {median_ms(wall):9.2f} {statistics.median(evals):6.0f} "
            f"{len(cpu):9d}"
        )
    print(
        f"{'baseline (fresh Tellurium/eval)':34} {median_ms(base_cpu):9.2f} {median_ms(base_wall):9.2f} "
        f"{statistics.median(base_evals):6.0f} {len(base_cpu):9d}"
    )
    one = results["ours, 1 start (as NONMEM)"]
    default = results["ours, 3 starts (default)"]
    print(
        f"speed-up vs baseline (CPU): 1 start {median_ms(base_cpu) / median_ms(one[0]):.0f}x, "
        f"3 starts {median_ms(base_cpu) / median_ms(default[0]):.0f}x"
    )
    print(
        f"goal <= 15 ms CPU per subject (1 start): {'met' if median_ms(one[0]) <= 15 else 'NOT met'}; "
        f"baseline and ours agree on the ETAs within {max(diffs):.1e}"
    )

    # ODE model: MAP on the Michaelis-Menten model (roadrunner path), same subjects and data shape
    mm = mm_model(card)
    assert linear_system(mm) is None  # type: ignore[arg-type]
    c0 = time.process_time()
    assert sensitivity_model(mm) is not None  # type: ignore[arg-type]
    derive_ms = (time.process_time() - c0) * 1e3
    n_mm = args.ode_subjects
    mm_cpu, mm_evals, lin_cpu, fd_cpu, fd_evals, fd_diff = [], [], [], [], [], []
    tight_cpu, tight_evals, tight_diff = [], [], []
    sens_integrator = sensitivity_model(mm).compiled.runner.getIntegrator()  # type: ignore[arg-type, union-attr]
    for r in records[:n_mm]:
        tw = bind_patient(mm, r)  # type: ignore[arg-type]
        c0 = time.process_time()
        fit = estimate_map(tw, starts=1)
        mm_cpu.append(time.process_time() - c0)
        mm_evals.append(fit.n_evaluations)
        # the earlier solver settings of the sensitivity system (relative 1e-8, absolute 1e-10)
        sens_integrator.setValue("relative_tolerance", 1e-8)
        per_dose, sensitivity.SENS_ATOL_PER_DOSE = sensitivity.SENS_ATOL_PER_DOSE, 0.0
        c0 = time.process_time()
        tight = estimate_map(tw, starts=1)
        tight_cpu.append(time.process_time() - c0)
        tight_evals.append(tight.n_evaluations)
        tight_diff.append(max(abs(fit.etas[k] - tight.etas[k]) for k in fit.etas))
        sens_integrator.setValue("relative_tolerance", sensitivity.SENS_RTOL)
        sensitivity.SENS_ATOL_PER_DOSE = per_dose
        c0 = time.process_time()
        fd = estimate_map(tw, starts=1, predictor=make_predictor(tw, tw.observations)[0])
        fd_cpu.append(time.process_time() - c0)
        fd_evals.append(fd.n_evaluations)
        fd_diff.append(max(abs(fit.etas[k] - fd.etas[k]) for k in fit.etas))
        lin._cache.clear()
        c0 = time.process_time()
        estimate_map(bind_patient(model, r), starts=1)
        lin_cpu.append(time.process_time() - c0)
    ratio = median_ms(mm_cpu) / median_ms(lin_cpu)
    print(f"\nMAP on an ODE model (Michaelis-Menten, roadrunner path), {n_mm} subjects, 1 start")
    print(f"sensitivity system derived (sympy) and compiled once for the model: {derive_ms:.0f} ms CPU")
    print(f"{'':34} {'median':>9} {'min':>8} {'max':>8}  ms CPU per subject; median runs")
    for label, xs, ev in (
        ("closed form, model 001", lin_cpu, None),
        ("MM, forward sensitivities", mm_cpu, mm_evals),
        ("MM, sensitivities at 1e-8 (before)", tight_cpu, tight_evals),
        ("MM, difference gradients", fd_cpu, fd_evals),
    ):
        runs = f"  {statistics.median(ev):.0f}" if ev else ""
        print(f"{label:34} {median_ms(xs):9.2f} {min(xs) * 1e3:8.2f} {max(xs) * 1e3:8.2f}{runs}")
    per_subject = [m / c for m, c in zip(mm_cpu, lin_cpu, strict=True)]
    print(
        f"ratio of medians {ratio:.1f}x (goal <= 3x: {'met' if ratio <= 3 else 'NOT met'}); per subject "
        f"{min(per_subject):.1f}x-{max(per_subject):.1f}x; sensitivities vs differences "
        f"{median_ms(fd_cpu) / median_ms(mm_cpu):.1f}x faster, ETAs agree within {max(fd_diff):.1e}"
    )
    print(
        f"before (sensitivities at 1e-8), same run: ratio of medians "
        f"{median_ms(tight_cpu) / median_ms(lin_cpu):.1f}x, total {sum(tight_cpu) * 1e3:.0f} ms vs "
        f"{sum(mm_cpu) * 1e3:.0f} ms now; ETAs agree within {max(tight_diff):.1e}"
    )

    # simulation throughput: 7 days, 14 doses q12h, hourly grid
    doses = tuple(ReferenceDose(route="oral", amount=10000, time_h=12.0 * k) for k in range(14))
    grid = np.arange(0.0, 169.0)
    rng = np.random.default_rng(0)
    eta_sets = [dict(zip(card.random_effects.etas, rng.normal(0, 0.45, 3), strict=True)) for _ in range(200)]
    mm_prepared = prepare_sbml(te.antimonyToSBML(MM_ANTIMONY), card)
    for title, m, prep in (
        ("mapbayr 001 (linear)", model, prepared),
        ("Michaelis-Menten (ODE)", mm, mm_prepared),
    ):
        throughput(title, m, prep, doses, grid, eta_sets)  # type: ignore[arg-type]
    print(
        "Cohorts (interop.cohort.simulate_batch) use the closed form for linear models; ODE models run "
        "as ensembles of 32 in batches of >= 128 subjects (ENSEMBLE_FROM), else one subject per run."
    )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def throughput(
    title: str,
    model: CompiledModel,
    prepared: str,
    doses: tuple[ReferenceDose, ...],
    grid: np.ndarray,
    eta_sets: list[dict[str, float]],
) -> None:
    """Subjects per second (CPU) of every simulation path for one model and regimen."""
    twin = bind_regimen(model, doses, {})
    print(f"\nSimulation throughput, {title}, 7-day 14-dose regimen, {len(grid)} hourly outputs")
    rates = {}
    paths = [("compiled roadrunner", "roadrunner", 40)]
    if linear_system(model) is not None:
        paths.insert(0, ("linear path", "auto", 200))
    for label, method, n in paths:
        c0 = time.process_time()
        for e in eta_sets[:n]:
            simulate(twin, grid, e, method=method)  # type: ignore[arg-type]
        rates[label] = n / (time.process_time() - c0)
    c0 = time.process_time()
    fresh = 5
    for e in eta_sets[:fresh]:
        r = te.loadSBMLModel(prepared)
        for k, v in e.items():
            r[k] = v
        t_cur = 0.0
        for d in doses:
            if d.time_h > t_cur:
                r.simulate(t_cur, d.time_h, int(d.time_h - t_cur) + 1)
                t_cur = d.time_h
            r["A_depot"] = r["A_depot"] + d.amount
        r.simulate(t_cur, 168.0, int(168 - t_cur) + 1)
    rates["fresh Tellurium model"] = fresh / (time.process_time() - c0)
    # the compiled model at the fresh model's tolerances (roadrunner's defaults), for comparison:
    # the compiled path runs at 1e-10 because difference gradients need it
    integ = model.runner.getIntegrator()
    tight = (integ.getValue("relative_tolerance"), integ.getValue("absolute_tolerance"))
    integ.setValue("relative_tolerance", 1e-6)
    c0 = time.process_time()
    for e in eta_sets[:40]:
        simulate(twin, grid, e, method="roadrunner")
    rates["compiled, rtol 1e-6"] = 40 / (time.process_time() - c0)
    integ.setValue("relative_tolerance", tight[0])
    integ.setValue("absolute_tolerance", tight[1])
    # many subjects per run: BLOCK copies of the model in one roadrunner instance (same tolerances)
    c0 = time.process_time()
    simulate_ensemble([twin] * BLOCK, grid, eta_sets[:BLOCK])
    ensemble_compile = time.process_time() - c0
    c0 = time.process_time()
    simulate_ensemble([twin] * 128, grid, (eta_sets * 2)[:128])
    rates[f"compiled, ensemble of {BLOCK}"] = 128 / (time.process_time() - c0)
    for label, rate in rates.items():
        print(f"{label:24} {rate:10.1f} subjects/s (CPU)")
    print(
        f"(the ensemble of {BLOCK} copies compiled once for the model: {ensemble_compile * 1e3:.0f} ms CPU)"
    )
    ens = rates[f"compiled, ensemble of {BLOCK}"] / rates["fresh Tellurium model"]
    print(
        f"compiled roadrunner, ensemble (the cohort path of ODE models), vs fresh Tellurium: {ens:.2f}x "
        f"(goal >= 5x: {'met' if ens >= 5 else 'NOT met'})"
    )
    print(
        f"compiled roadrunner, one subject per run, vs fresh Tellurium: "
        f"{rates['compiled roadrunner'] / rates['fresh Tellurium model']:.2f}x; at the same "
        f"tolerance: {rates['compiled, rtol 1e-6'] / rates['fresh Tellurium model']:.2f}x"
    )
    if "linear path" in rates:
        print(
            f"linear path vs compiled roadrunner: "
            f"{rates['linear path'] / rates['compiled roadrunner']:.0f}x; "
            f"vs fresh Tellurium: {rates['linear path'] / rates['fresh Tellurium model']:.0f}x"
        )


if __name__ == "__main__":
    main()
