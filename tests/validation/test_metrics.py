import numpy as np
import pandas as pd
import pytest

from interop.validation import bootstrap_metrics, compute_metrics, per_patient_metrics


def test_metrics_by_their_definitions() -> None:
    obs = np.array([10.0, 10.0, 10.0, 10.0])
    pred = np.array([11.0, 9.0, 12.5, 10.0])  # +10 %, -10 %, +25 %, 0 %
    m = compute_metrics(pred, obs)
    assert m["mpe_percent"] == pytest.approx(6.25)
    assert m["mdpe_percent"] == pytest.approx(5.0)
    assert m["mape_percent"] == pytest.approx(11.25)
    assert m["rrmse_percent"] == pytest.approx(np.sqrt((100 + 100 + 625 + 0) / 4))
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 1 + 6.25) / 4))
    assert m["within_20_percent"] == pytest.approx(75.0)
    assert m["within_30_percent"] == pytest.approx(100.0)


def test_relative_errors_need_positive_observations() -> None:
    with pytest.raises(ValueError, match="> 0"):
        compute_metrics(np.array([1.0]), np.array([0.0]))


def _frame(n_pat: int, rng: np.random.Generator, bias: float = 0.0) -> pd.DataFrame:
    rows = []
    for p in range(n_pat):
        obs = rng.lognormal(1, 0.5, size=4)
        pred = obs * np.exp(rng.normal(bias, 0.2, size=4))
        rows += [{"patient_id": f"p{p:04d}", "dv": o, "pred": q} for o, q in zip(obs, pred, strict=True)]
    return pd.DataFrame(rows)


def test_per_patient_rows() -> None:
    df = _frame(5, np.random.default_rng(0))
    pp = per_patient_metrics(df, "pred")
    assert list(pp["patient_id"]) == [f"p{p:04d}" for p in range(5)] and (pp["n"] == 4).all()
    one = df[df.patient_id == "p0002"]
    expected = compute_metrics(one.pred.values, one.dv.values)["mape_percent"]
    assert pp.loc[2, "mape_percent"] == pytest.approx(expected)


def test_bootstrap_ci_covers_the_point_and_shrinks_with_more_patients() -> None:
    rng = np.random.default_rng(1)
    small = bootstrap_metrics(_frame(20, rng, bias=0.1), "pred", n_boot=400, seed=3).set_index("name")
    large = bootstrap_metrics(_frame(400, rng, bias=0.1), "pred", n_boot=400, seed=3).set_index("name")
    for m in (small, large):
        assert ((m["ci_low"] <= m["value"]) & (m["value"] <= m["ci_high"])).all()
    width = lambda m: m["ci_high"] - m["ci_low"]  # noqa: E731
    assert (width(large) < width(small)).all()
    # A true +10 % log-bias gives MPE about exp(0.1 + 0.02) - 1 = 12.7 %: inside the large CI.
    assert large.loc["mpe_percent", "ci_low"] < 12.7 < large.loc["mpe_percent", "ci_high"]


def test_bootstrap_is_reproducible_with_its_seed() -> None:
    df = _frame(30, np.random.default_rng(2))
    a = bootstrap_metrics(df, "pred", n_boot=200, seed=9)
    b = bootstrap_metrics(df, "pred", n_boot=200, seed=9)
    pd.testing.assert_frame_equal(a, b)


def test_per_patient_metrics_equal_compute_metrics_on_each_patient() -> None:
    """Ragged patients (1-9 levels, odd and even counts for the median), some predictions missing."""
    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame(
        {
            "patient_id": [f"p{rng.integers(0, 40):02d}" for _ in range(n)],
            "dv": rng.lognormal(1, 0.5, n),
            "pred": rng.lognormal(1, 0.6, n),
        }
    )
    df.loc[rng.random(n) < 0.2, "pred"] = np.nan
    pp = per_patient_metrics(df, "pred").set_index("patient_id")
    for pid, g in df.dropna(subset=["pred"]).groupby("patient_id"):
        want = compute_metrics(g.pred.to_numpy(), g.dv.to_numpy())
        assert pp.loc[pid, "n"] == len(g)
        for k, v in want.items():
            assert pp.loc[pid, k] == pytest.approx(v, rel=1e-12, abs=1e-12)


def test_bootstrap_medians_are_the_medians_of_the_resampled_patients() -> None:
    from interop.validation.metrics import _resampled_medians

    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 6, 30)
    owner = np.repeat(np.arange(30), sizes)
    values = rng.normal(size=len(owner)).round(1)  # ties too
    idx = rng.integers(0, 30, (50, 30))
    counts = np.apply_along_axis(np.bincount, 1, idx, minlength=30).astype(float)
    starts = np.searchsorted(owner, np.arange(30))
    ends = np.append(starts[1:], len(owner))
    want = [np.median(values[np.concatenate([np.arange(starts[j], ends[j]) for j in r])]) for r in idx]
    assert np.array_equal(_resampled_medians(values, owner, counts), np.array(want))
