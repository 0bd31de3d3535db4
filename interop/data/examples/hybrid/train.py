"""The hybrid example's training script (run from the repository root; synthetic data, CC0):

    PYTHONPATH=. INTEROP_HOME=/tmp/hybrid-home python interop/data/examples/hybrid/train.py /tmp/hybrid

Simulates sites A and B (``interop.workflows.hybrid_example``, truth in ``truth.json``), fits
each patient's MAP clearance with the mechanistic model, trains a gradient-boosting model of log
CL on the ML card's features, exports it to ONNX with its card (``interop ml export``'s path),
registers and validates it with the mechanistic and the hybrid card, and writes site C's cohort.
Then compare the two twins on site C, which no training patient comes from:

    interop validate --model hybrid-example-mech@1 --cohort /tmp/hybrid/site-c --site C --out /tmp/v-mech
    interop validate --model hybrid-example-hybrid@1 --cohort /tmp/hybrid/site-c --site C --out /tmp/v-hyb
"""

from __future__ import annotations

import sys
from pathlib import Path

from interop.settings import get_settings
from interop.workflows.hybrid_example import prepare

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hybrid-example")
    out.mkdir(parents=True, exist_ok=True)
    n, cohort = prepare(get_settings(), out, n_train=150, n_test=100, seed=7)
    print(f"trained on {n} patients of sites A and B; site C cohort: {cohort}")
