"""Agreement table of the published-model set (examples/nonmem/published) and MAP cost per subject.

    PYTHONPATH=. python bench/nonmem_published.py [--models M ...] [--ids 1-30] [--jobs 1]
                                                   [--baseline-subjects 3]

Per model: subjects, failures, ETA values and the share within 0.001 of the reference, the
largest |dETA|, the largest excess of our objective at our mode over the reference's objective
at its mode (goal <= 0.01; negative: our mode is lower), subjects where our mode is worse than
the reference ETAs under our own objective, subjects where ours is better, verdict. The
reference is an independent computation of the same MAP problem, NOT NONMEM (see
tests/nonmem/reference/engine.py).

Cost: our MAP time per subject (``compare_with_nonmem``: conversion excluded) beside the
reference's own fit of the first ``--baseline-subjects`` subjects (numpy/scipy, several starts),
the baseline, timed in the same process; the ratio is printed per model. CPU time per subject
is the figure of merit on a shared machine; wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests.nonmem.reference

from tests.nonmem.reference.agreement import PUBLISHED, check_model, table  # noqa: E402
from tests.nonmem.reference.engine import fit_subject, read_data  # noqa: E402
from tests.nonmem.reference.generate import ROOT, truth_etas  # noqa: E402
from tests.nonmem.reference.models import MODELS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(PUBLISHED), choices=PUBLISHED)
    ap.add_argument("--ids", default=None, help="subjects, e.g. 1-10 (default: all 30)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--baseline-subjects", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared: timings are noisy)")
    results, costs = [], []
    for name in args.models:
        c0, w0 = time.process_time(), time.perf_counter()
        result = check_model(name, ids=args.ids, jobs=args.jobs, starts=args.starts)
        n = max(result.agreement.n_attempted, 1)
        ours_cpu, ours_wall = (time.process_time() - c0) / n, (time.perf_counter() - w0) / n
        data = read_data(ROOT / name / "data.csv")
        truth = truth_etas(name)
        ids = list(data)[: args.baseline_subjects]
        c1, w1 = time.process_time(), time.perf_counter()
        for sid in ids:
            fit_subject(MODELS[name], sid, data[sid], extra_starts=(truth[sid],))
        k = max(len(ids), 1)
        ref_cpu, ref_wall = (time.process_time() - c1) / k, (time.perf_counter() - w1) / k
        results.append(result)
        costs.append((name, ours_cpu, ours_wall, ref_cpu, ref_wall))
        print(table([result]), flush=True)
    print("\nAll models")
    print(table(results))
    head = f"{'model':<22}{'ours ms/subj':>13}{'(wall)':>9}{'reference ms/subj':>18}{'(wall)':>9}{'ratio':>8}"
    print("\n" + head)
    for name, oc, ow, rc, rw in costs:
        note = " (jobs>1: CPU in workers not counted)" if args.jobs > 1 else ""
        cells = f"{1e3 * oc:>13.0f}{1e3 * ow:>9.0f}{1e3 * rc:>18.0f}{1e3 * rw:>9.0f}"
        print(f"{name:<22}{cells}{rc / oc:>7.1f}x{note}")
    return 0 if all(r.passes() for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
