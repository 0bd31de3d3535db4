"""A partner's training script, for ``interop ml export``: fit a scikit-learn pipeline and save it.

    PYTHONPATH=. python examples/ml/fit_pipeline.py /tmp/ml/crcl-pipeline.joblib
    interop ml export /tmp/ml/crcl-pipeline.joblib --card examples/ml/ml-card.template.json \
        --reference examples/ml/reference_rows.csv --trust --out /tmp/ml
    interop registry submit /tmp/ml/example-vanco-cl.zip

The data are synthetic (drawn here, seed fixed): log vancomycin clearance from serum creatinine,
age, weight and sex. ``--trust`` is needed because a joblib file is code; this one you made.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def fit(seed: int = 1) -> object:
    rng = np.random.default_rng(seed)
    n = 400
    scr = np.exp(rng.normal(0, 0.4, n))
    age = rng.uniform(20, 90, n)
    wt = rng.normal(78, 15, n).clip(40, 140)
    female = rng.integers(0, 2, n).astype(float)
    crcl = (140 - age) * wt / (72 * scr) * np.where(female == 1, 0.85, 1.0)
    log_cl = np.log(4.5 * (crcl / (crcl + 50)) * 1.5) + rng.normal(0, 0.2, n)
    x = np.column_stack([scr, age, wt, female])
    # HistGradientBoostingRegressor of scikit-learn 1.9 does not convert with skl2onnx 1.20 (checked).
    model = GradientBoostingRegressor(n_estimators=80, max_depth=3, random_state=seed)
    return make_pipeline(StandardScaler(), model).fit(x, log_cl)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "crcl-pipeline.joblib")
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(fit(), out)
    print(out)
