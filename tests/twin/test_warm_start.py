"""Warm-started MAP (``estimate_map(start=...)``): iterative forecasting starts each fit from the
previous fit's mode; it must reach the same mode as the cold start, with fewer evaluations."""

from __future__ import annotations

import numpy as np
import pytest

from interop.twin import CompiledModel, estimate_map
from tests.twin.test_batch_map import _twins


def test_warm_start_reaches_the_cold_mode_with_fewer_evaluations(gentamicin: CompiledModel) -> None:
    fewer = 0
    for twin in _twins(gentamicin, 4, seed=3):
        obs = twin.observations
        warm = None
        for k in range(1, len(obs) + 1):
            cold = estimate_map(twin, observations=obs[:k])
            fit = estimate_map(twin, observations=obs[:k], start=warm)
            assert fit.converged == cold.converged
            assert np.allclose(list(fit.etas.values()), list(cold.etas.values()), atol=1e-4)
            assert fit.objective == pytest.approx(cold.objective, abs=1e-7)
            if warm is not None:
                fewer += fit.n_evaluations < cold.n_evaluations
            warm = list(fit.etas.values())
    assert fewer >= 6  # of the 10 warm-started fits


def test_a_start_of_the_wrong_length_is_refused(gentamicin: CompiledModel) -> None:
    twin = _twins(gentamicin, 1, seed=3)[0]
    with pytest.raises(ValueError, match="start needs 2 values"):
        estimate_map(twin, start=[0.1])
