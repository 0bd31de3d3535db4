import numpy as np
import pytest

from interop.validation import npde_summary, patient_npde, vpc_table


def _correlated(rng: np.random.Generator, n: int, k: int, rho: float = 0.9) -> np.ndarray:
    cov = rho * np.ones((n, n)) + (1 - rho) * np.eye(n)
    return rng.multivariate_normal(np.arange(n, dtype=float), cov, size=k)


def test_npde_of_data_from_the_model_are_standard_normal_and_decorrelated() -> None:
    rng = np.random.default_rng(0)
    all_npde = []
    for _ in range(300):
        sims = _correlated(rng, 4, 500)
        y = _correlated(rng, 4, 1)[0]
        all_npde.append(patient_npde(y, sims))
    x = np.array(all_npde)
    s = npde_summary(x.ravel())
    assert abs(s["mean"]) < 0.1 and abs(s["variance"] - 1) < 0.12
    assert s["p_global"] > 0.01
    # Observations of one patient are correlated at 0.9; their NPDE are not.
    assert abs(np.corrcoef(x[:, 0], x[:, 3])[0, 1]) < 0.15


def test_npde_detect_a_biased_model() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [patient_npde(_correlated(rng, 3, 1)[0] + 1.0, _correlated(rng, 3, 500)) for _ in range(100)]
    )
    s = npde_summary(x)
    assert s["mean"] > 0.3 and s["p_mean"] < 1e-6  # decorrelation spreads the shift


def test_npde_are_clamped_when_the_observation_is_beyond_every_simulation() -> None:
    sims = np.random.default_rng(2).normal(size=(100, 1))
    assert patient_npde(np.array([50.0]), sims)[0] == pytest.approx(2.5758, abs=1e-3)  # Phi^-1(1 - 1/200)


def test_vpc_intervals_cover_data_from_the_model() -> None:
    rng = np.random.default_rng(3)
    n, k = 2000, 200
    x = rng.choice([1.0, 4.0, 8.0, 12.0, 24.0], size=n)
    typical = 10 * np.exp(-0.1 * x)
    eta = rng.normal(0, 0.3, size=(n, k + 1))
    values = typical[:, None] * np.exp(eta)
    table = vpc_table(x, values[:, 0], values[:, 1:], n_bins=8)
    assert len(table) == 5 and table["n"].sum() == n
    for q in ("p5", "p50", "p95"):
        inside = (table[f"sim_{q}_lo"] <= table[f"obs_{q}"]) & (table[f"obs_{q}"] <= table[f"sim_{q}_hi"])
        assert inside.mean() >= 0.8
    pc = vpc_table(x, values[:, 0], values[:, 1:], typical, n_bins=8)
    # Prediction correction takes out the typical curve inside a bin: its median sits on median(PRED).
    assert pc["obs_p50"].to_numpy() == pytest.approx(pc["sim_p50"].to_numpy(), rel=0.1)


def test_vpc_shows_a_misspecified_model() -> None:
    rng = np.random.default_rng(4)
    x = rng.choice([1.0, 12.0], size=1000)
    sims = 10 * np.exp(-0.1 * x)[:, None] * np.exp(rng.normal(0, 0.3, size=(1000, 100)))
    observed = 20 * np.exp(-0.1 * x) * np.exp(rng.normal(0, 0.3, size=1000))
    t = vpc_table(x, observed, sims)
    assert (t["obs_p50"] > t["sim_p50_hi"]).all()
