"""Benchmark: virtual-cohort simulation throughput and end-to-end validation time.

Figures, all in the same run:
1. subjects/s for a 7-day regimen (gentamicin 0.5 h infusions every 12 h, 14 doses, 28 levels
   per subject) on one process (``scheduler="single"``: the model compiled once, the twin
   runtime's fast path);
2. the same on a 2-worker ``LocalCluster`` (started before timing; its start-up is reported
   apart), with the speed-up over (1);
3. the naive baseline: a fresh Tellurium model loaded for every subject, doses applied by
   stepping ``simulate`` between them, with the speed-up of (1) over it;
4. for transparency, one process with the twin's roadrunner path (compiled once, no closed form);
6. the vectorised simulator alone (:func:`interop.twin.vectorised.simulate_many`, subjects
   drawn beforehand) at three sizes, with its peak memory (tracemalloc) and its ratio to (3);
5. end-to-end ``run_validation`` (a priori, MAP, iterative MAP, 200 simulations per patient for
   NPDE/VPC, report) of an N-patient virtual cohort on the 2-worker cluster, extrapolated
   linearly to 10,000 patients when N is smaller.

Run: ``PYTHONPATH=. python bench/cohort.py [--n 20000] [--n-naive 40] [--n-validate 1000]``
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from interop.cohort import Design, Population, load_distributions, simulate_cohort
from interop.cohort.population import draw_subject
from interop.schema import ModelCard, parse_json
from interop.schema.cohort import read_cohort
from interop.twin import bind_regimen, load_model, simulate
from interop.twin.model import input_parameter, observable_parameter, prepare_sbml
from interop.validation import run_validation
from tests.data import COHORT_COVARIATES, COHORT_DESIGN_SHORT, GENTAMICIN_CARD, GENTAMICIN_SBML

DESIGN = Design.model_validate(
    {
        "description": "gentamicin 2.5 mg/kg over 0.5 h every 12 h for 7 days; peak and trough of every dose",
        "doses": [
            {
                "route": "iv-infusion",
                "amount": 2.5,
                "per": "WT",
                "time_h": 0,
                "duration_h": 0.5,
                "interval_h": 12,
                "additional": 13,
            }
        ],
        "sampling_h": sorted([12 * k + 1 for k in range(14)] + [12 * k + 11.9 for k in range(14)]),
    }
)


def naive_subject(
    te: object,
    prepared: str,
    card: ModelCard,
    covs: dict[str, float],
    etas: dict[str, float],
) -> np.ndarray:
    """What a script without the runtime does: load the model, then step between doses; the
    individual prediction (IPRED), then again with ETAs 0 (PRED), as the cohort simulation does."""
    r = te.loadSBMLModel(prepared)  # type: ignore[attr-defined]
    ipred = _naive_run(r, card, covs, etas)
    r.resetAll()
    _naive_run(r, card, covs, {k: 0.0 for k in etas})
    return ipred


def _naive_run(r: object, card: ModelCard, covs: dict[str, float], etas: dict[str, float]) -> np.ndarray:
    for k, v in {**covs, **etas}.items():
        r.setValue(k, v)  # type: ignore[attr-defined]
    r.reset()  # type: ignore[attr-defined]
    doses = DESIGN.regimen(covs)
    events = sorted(
        [(d.time_h, d.amount / (d.duration_h or 1)) for d in doses]
        + [(d.time_h + (d.duration_h or 0), -d.amount / (d.duration_h or 1)) for d in doses]
    )
    rate = input_parameter("A_central")
    obs = observable_parameter(card.observables[0].id)
    samples = list(DESIGN.sampling_h)
    out, t = [], 0.0
    for when, delta in [*events, (samples[-1] + 1e-9, 0.0)]:
        inner = [s for s in samples if t < s <= when]
        if when > t:
            res = r.simulate(t, when, 2, selections=["time"]) if not inner else None
            if inner:
                grid = [t, *inner] if inner[-1] == when else [t, *inner, when]
                res = r.simulate(times=grid, selections=["time", obs])
                out += list(np.asarray(res)[1 : 1 + len(inner), 1])
            t = when
        r.setValue(rate, r.getValue(rate) + delta)
    return np.asarray(out)


def scaling(model: object, pop: Population, naive: float, sizes: list[int]) -> None:
    """Figure 6: simulate_many on N pre-drawn subjects (IPRED and PRED, as a cohort batch does)."""
    import tracemalloc

    from interop.cohort.simulate import design_schedule
    from interop.twin.vectorised import simulate_many

    card = model.card  # type: ignore[attr-defined]
    times = np.asarray(DESIGN.sampling_h)
    rng = np.random.default_rng(0)
    for n in sizes:
        draws = [draw_subject(card, pop, 7, i) for i in range(min(n, 2000))]
        covs = {
            c.name: np.array([draws[i % len(draws)].covariates[c.name] for i in range(n)])
            for c in card.covariates
        }
        etas = {e: rng.normal(0.0, 0.3, n) for e in card.random_effects.etas}
        tracemalloc.start()
        t0 = time.perf_counter()
        schedule = design_schedule(DESIGN.doses, covs, n)
        simulate_many(model, schedule, {**covs, **etas}, times)  # type: ignore[arg-type]
        simulate_many(model, schedule, covs, times)  # type: ignore[arg-type]
        took = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"6. vectorised, {n:>7} subjects: {n / took:10.0f} subjects/s ({1e6 * took / n:6.1f} us/subject, "
            f"peak {peak / 2**20:6.1f} MiB)  {n / took / naive:7.0f}x the naive baseline"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000, help="subjects for figures 1 and 2")
    ap.add_argument("--n-naive", type=int, default=40)
    ap.add_argument("--n-validate", type=int, default=1000, help="0: skip the validation figure")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="figure 6 sizes")
    args = ap.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    sbml = GENTAMICIN_SBML.read_text()
    pop = Population(load_distributions(COHORT_COVARIATES, card))
    tmp = Path(tempfile.mkdtemp(prefix="bench-cohort-"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(
        f"design: {DESIGN.description}; {len(DESIGN.regimen({'WT': 70}))} doses, "
        f"{len(DESIGN.sampling_h)} levels per subject"
    )

    t0, c0 = time.perf_counter(), time.process_time()
    simulate_cohort(
        sbml, card, DESIGN, args.n, tmp / "single", population=pop, scheduler="single", batch_size=500
    )
    single = args.n / (time.perf_counter() - t0)
    single_cpu = time.process_time() - c0
    print(
        f"1. one process:            {single:10.1f} subjects/s  ({args.n} subjects; "
        f"{1000 * single_cpu / args.n:.2f} CPU-ms per subject)"
    )

    from dask.distributed import LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        startup = time.perf_counter() - t0
        from dask.distributed import Client

        from interop.cohort.simulate import warm_up

        with Client(cluster) as client:
            # Warm the workers like the one process is warm: imports and the model compile.
            t0 = time.perf_counter()
            client.run(warm_up, sbml, card.model_dump_json())
            warmup = time.perf_counter() - t0
            before = client.run(time.process_time)
            t0 = time.perf_counter()
            simulate_cohort(
                sbml,
                card,
                DESIGN,
                args.n,
                tmp / "dask",
                population=pop,
                scheduler=cluster.scheduler_address,
                batch_size=500,
            )
            dask = args.n / (time.perf_counter() - t0)
            after = client.run(time.process_time)
        worker_cpu = sum(after[w] - before[w] for w in after)
        print(
            f"2. 2-worker LocalCluster:  {dask:10.1f} subjects/s  (cluster start-up {startup:.1f} s and "
            f"worker warm-up {warmup:.1f} s not counted)  speed-up over one process: {dask / single:.2f}x"
        )
        print(
            f"   workers used {1000 * worker_cpu / args.n:.2f} CPU-ms per subject (one process: "
            f"{1000 * single_cpu / args.n:.2f}); on two idle cores the speed-up would be at most "
            f"{2 * single_cpu / worker_cpu:.2f}x; load average now {os.getloadavg()[0]:.1f} "
            "(shared machine)"
        )

        import tellurium as te

        prepared = prepare_sbml(sbml, card)
        model = load_model(sbml, card)
        subjects = [draw_subject(card, pop, 1, i) for i in range(args.n_naive)]
        import roadrunner

        # roadrunner silently reuses the compiled code of an SBML string while a model built from
        # it is alive (the runtime's cached model is): force the compile a fresh model implies.
        roadrunner.Config.setValue(roadrunner.Config.LOADSBMLOPTIONS_RECOMPILE, True)
        t0 = time.perf_counter()
        naive_vals = [naive_subject(te, prepared, card, s.covariates, s.etas) for s in subjects]
        naive = args.n_naive / (time.perf_counter() - t0)
        roadrunner.Config.setValue(roadrunner.Config.LOADSBMLOPTIONS_RECOMPILE, False)
        t0 = time.perf_counter()
        for s in subjects:
            naive_subject(te, prepared, card, s.covariates, s.etas)
        naive_cached = args.n_naive / (time.perf_counter() - t0)
        ours = [
            simulate(
                bind_regimen(model, DESIGN.regimen(s.covariates), s.covariates), DESIGN.sampling_h, s.etas
            ).values["gentamicin"]
            for s in subjects
        ]
        worst = max(float(np.max(np.abs(a / b - 1))) for a, b in zip(naive_vals, ours, strict=True))
        print(
            f"3. naive (fresh Tellurium model per subject): {naive:8.1f} subjects/s  ({args.n_naive} "
            f"subjects; largest relative difference to the runtime {worst:.1e})  "
            f"speed-up of one process over it: {single / naive:.1f}x"
        )
        print(
            f"   naive with roadrunner's in-process reuse of compiled code (no recompilation): "
            f"{naive_cached:.1f} subjects/s; one process is {single / naive_cached:.1f}x faster"
        )

        t0 = time.perf_counter()
        for s in subjects * 5:
            twin = bind_regimen(model, DESIGN.regimen(s.covariates), s.covariates)
            simulate(twin, DESIGN.sampling_h, s.etas, method="roadrunner")
            simulate(twin, DESIGN.sampling_h, method="roadrunner")
        rr = 5 * len(subjects) / (time.perf_counter() - t0)
        print(
            f"4. one process, roadrunner path (compiled once, no closed form): {rr:.1f} subjects/s "
            f"({single / rr:.1f}x slower than the closed form; {rr / naive:.1f}x the naive baseline)"
        )

        scaling(model, pop, naive, args.sizes)

        n_val = args.n_validate
        if n_val <= 0:
            return
        short = Design.model_validate_json(COHORT_DESIGN_SHORT.read_text())
        cohort = simulate_cohort(
            sbml,
            card,
            short,
            n_val,
            tmp / "truth",
            population=pop,
            scheduler=cluster.scheduler_address,
            records=True,
            seed=99,
        )
        assert cohort.cohort_dir is not None
        records = read_cohort(cohort.cohort_dir)
        t0 = time.perf_counter()
        res = run_validation(
            sbml,
            card,
            records,
            tmp / "validate",
            model_version=1,
            site="bench",
            scheduler=cluster.scheduler_address,
        )
        took = time.perf_counter() - t0
        per = took / n_val
        print(
            f"5. validate {n_val} patients (4 levels each; MAP + {3} iterative MAP fits + 200 simulations "
            f"per patient, report) on the 2-worker cluster: {took:.1f} s = {1000 * per:.0f} ms/patient; "
            + ("" if n_val >= 10000 else f"extrapolated to 10,000 patients: {10000 * per / 60:.1f} min")
        )
        print(f"   ({res.summary.n_included} included; report {res.report_path})")


if __name__ == "__main__":
    main()
