"""Fixtures: a small gradient-boosting model fitted here, exported by the real skl2onnx path."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from interop.workflows.ml import ExportResult, export_sklearn
from tests.registry.conftest import db_url, pg_url, store  # noqa: F401 - the registry fixtures (SQLite, PostgreSQL)

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = FIXTURES / "toy-cl.template.json"
SAMPLE_ARCHIVE = FIXTURES / "toy-cl.zip"


def fit_toy(path: Path, seed: int = 0) -> GradientBoostingRegressor:
    """log CL from creatinine clearance (saturating) and a CYP3A5 expresser flag."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(20, 150, 200), rng.integers(0, 2, 200)])
    y = np.log(3 * np.minimum(x[:, 0], 90) / 90 * (1 + 0.5 * x[:, 1]))
    model = GradientBoostingRegressor(n_estimators=30, max_depth=2, random_state=seed).fit(x, y)
    joblib.dump(model, path)
    return model


@pytest.fixture
def toy_export(tmp_path: Path) -> ExportResult:
    fit_toy(tmp_path / "model.joblib")
    return export_sklearn(tmp_path / "model.joblib", tmp_path / "out", trusted=True, card_template=TEMPLATE)


@pytest.fixture
def template() -> dict:
    return json.loads(TEMPLATE.read_text())
