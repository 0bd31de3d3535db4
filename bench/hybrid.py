"""The worked hybrid example at a bigger size, and the cost of the ML call against the ODE simulation.

1. ``run_example``: simulate sites A, B (training) and C (held out); fit MAP clearances at A and B
   with the mechanistic model; train a gradient-boosting model on the ML card's features; export it
   to ONNX, register and validate it; validate the mechanistic and the hybrid twin on site C
   (``interop validate``'s path). Prints a priori and Bayesian-forecast (iterative) MAPE and the
   share within +-20 % of both twins.
2. Cost per prediction in the same process: the ONNX call (onnxruntime, batches of 1, 100 and
   10 000 rows), the features computed from a PatientRecord, the ML step of binding, and the
   simulation it feeds (one subject, closed-form linear path and libRoadRunner's integrator).

The last line: the a priori MAPE and share within +-20 % of both twins on site C and whether the
goal (hybrid a priori MAPE at least 20 % lower, Bayesian-forecast MAPE no worse) is met.

    python bench/hybrid.py [--n-train 200] [--n-test 150] [--n-sim 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def per_call(fn: Callable[[], object], min_seconds: float = 0.5) -> float:
    """Median seconds per call of ``fn`` over batches lasting at least ``min_seconds``."""
    fn()
    n, total = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        total = time.perf_counter() - t0
        if total >= min_seconds:
            return total / n
        n *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200, help="patients per training site (A, B)")
    parser.add_argument("--n-test", type=int, default=150, help="patients at the held-out site C")
    parser.add_argument("--n-sim", type=int, default=50, help="simulations per patient for NPDE/VPC")
    parser.add_argument("--seed", type=int, default=7)
    opts = parser.parse_args()

    from interop.settings import Settings
    from interop.twin import bind_patient, load_model, simulate
    from interop.twin.hybrid import ml_features, ml_predictor
    from interop.workflows import hybrid_example as ex
    from interop.workflows.ml import resolve_ml_links

    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared: timings are noisy)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings(home=work / "home", database_url=f"sqlite:///{work / 'registry.sqlite'}")
        t0 = time.perf_counter()
        result = ex.run_example(
            settings, work, n_train=opts.n_train, n_test=opts.n_test, seed=opts.seed, n_sim=opts.n_sim
        )
        took = time.perf_counter() - t0
        print(f"example: {result.n_train} training patients (A+B), {result.n_test} at C, {took:.1f} s")
        print(f"{'twin':12} {'setting':10} {'MAPE %':>8} {'within 20 %':>12} {'levels':>7}")
        for twin in ("mechanistic", "hybrid"):
            for setting in ("a-priori", "iterative"):
                m = result.metrics[(result.metrics.twin == twin) & (result.metrics.setting == setting)]
                mape = m[m.name == "mape_percent"].iloc[0]
                w20 = m[m.name == "within_20_percent"].iloc[0]
                print(f"{twin:12} {setting:10} {mape.value:8.1f} {w20.value:12.1f} {int(mape.n):7d}")

        card = resolve_ml_links(ex.hybrid_card(), settings)
        p = ml_predictor(card.ml_models[0])
        records, _ = ex.simulate_site("C", 20, opts.seed + 1)
        hybrid = load_model(ex.sbml(), card)
        mech = load_model(ex.sbml(), ex.mechanistic_card())
        twin = bind_patient(mech, records[0])
        rows = np.tile(np.array([[1.0, 50.0, 70.0, 0.0, 87.5, 0.0]]), (10_000, 1))
        grid = np.linspace(0, 72, 200)
        costs = {
            "ONNX call, 1 row": per_call(lambda: p.predict(rows[:1])),
            "ONNX call, 100 rows (per row)": per_call(lambda: p.predict(rows[:100])) / 100,
            "ONNX call, 10000 rows (per row)": per_call(lambda: p.predict(rows)) / 10_000,
            "features from a PatientRecord": per_call(lambda: ml_features(p.card, records[0], twin.origin)),
            "bind_patient, mechanistic card": per_call(lambda: bind_patient(mech, records[0])),
            "bind_patient, hybrid card (features + ONNX)": per_call(lambda: bind_patient(hybrid, records[0])),
            "simulate 1 subject, closed form (200 times)": per_call(
                lambda: simulate(twin, grid, method="linear")
            ),
            "simulate 1 subject, roadrunner ODE (200 times)": per_call(
                lambda: simulate(twin, grid, method="roadrunner")
            ),
        }
        ode = costs["simulate 1 subject, roadrunner ODE (200 times)"]
        print(f"{'cost per prediction':48} {'us':>10} {'x ODE sim':>10}")
        for name, sec in costs.items():
            print(f"{name:48} {sec * 1e6:10.1f} {sec / ode:10.3f}")
    v = result.value
    print(
        "site C: a priori MAPE mechanistic {:.1f} % vs hybrid {:.1f} % ({:+.0f} %), "
        "within 20 % {:.0f} % vs {:.0f} %; after MAP (iterative) MAPE {:.1f} % vs {:.1f} %; goal {}".format(
            v("mechanistic", "a-priori", "mape_percent"),
            v("hybrid", "a-priori", "mape_percent"),
            100
            * (v("hybrid", "a-priori", "mape_percent") / v("mechanistic", "a-priori", "mape_percent") - 1),
            v("mechanistic", "a-priori", "within_20_percent"),
            v("hybrid", "a-priori", "within_20_percent"),
            v("mechanistic", "iterative", "mape_percent"),
            v("hybrid", "iterative", "mape_percent"),
            "MET" if result.goal_met else "NOT MET",
        )
    )


if __name__ == "__main__":
    main()
