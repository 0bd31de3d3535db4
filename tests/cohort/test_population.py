from pathlib import Path

import numpy as np
import pytest

from interop.cohort import Population, draw_subject, load_distributions, rows_from_records
from interop.cohort.population import draw_etas, subject_rng
from interop.errors import SchemaError
from interop.schema import ModelCard


def test_same_seed_and_index_same_subject(card: ModelCard, population: Population) -> None:
    a = draw_subject(card, population, seed=7, index=123)
    b = draw_subject(card, population, seed=7, index=123)
    c = draw_subject(card, population, seed=8, index=123)
    assert a == b
    assert a.etas != c.etas


def test_covariates_respect_truncation_and_categories(card: ModelCard, population: Population) -> None:
    subjects = [draw_subject(card, population, 1, i) for i in range(400)]
    wt = np.array([s.covariates["WT"] for s in subjects])
    assert wt.min() >= 40 and wt.max() <= 120
    assert abs(np.median(wt) - 72) < 4
    assert {s.covariates["SEX"] for s in subjects} == {0.0, 1.0}


def test_etas_follow_omega(card: ModelCard) -> None:
    etas = draw_etas(card, subject_rng(3, 0), size=20000)
    cov = np.cov(etas, rowvar=False)
    np.testing.assert_allclose(cov, card.random_effects.omega_matrix(), atol=0.004)


def test_unknown_covariate_in_distribution_file(tmp_path: Path, card: ModelCard) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("HEIGHT: {dist: normal, mean: 170, sd: 10}\n")
    with pytest.raises(SchemaError, match="HEIGHT"):
        load_distributions(p, card)


def test_categorical_probabilities_must_add_up(tmp_path: Path, card: ModelCard) -> None:
    p = tmp_path / "c.yaml"
    p.write_text('SEX: {dist: categorical, values: {"0": 0.5, "1": 0.6}}\n')
    with pytest.raises(SchemaError, match="add up to 1"):
        load_distributions(p, card)


def test_resampling_keeps_real_patients_joint_covariates(
    card: ModelCard, sbml: str, population: Population, tmp_path: Path
) -> None:
    from interop.cohort import load_design, simulate_cohort
    from interop.schema.cohort import read_cohort
    from tests.data import COHORT_DESIGN_SHORT

    res = simulate_cohort(
        sbml,
        card,
        load_design(COHORT_DESIGN_SHORT),
        5,
        tmp_path,
        population=population,
        scheduler="single",
        records=True,
    )
    assert res.cohort_dir is not None
    rows = rows_from_records(read_cohort(res.cohort_dir), card)
    assert len(rows) == 5
    pop = Population({}, rows)
    drawn = [draw_subject(card, pop, 1, i).covariates for i in range(30)]
    assert all(d in rows for d in drawn)  # whole rows: covariates stay jointly distributed
    assert len({tuple(d.values()) for d in drawn}) > 1


def test_categorical_draws_are_numpys_choice_and_draw_many_matches_its_distribution() -> None:
    """The fast categorical draw is Generator.choice(p=...) draw for draw; draw_many has the
    same distribution (and truncation) as draw."""
    import numpy as np

    from interop.cohort import CovariateDistribution

    d = CovariateDistribution(dist="categorical", values={"0": 0.3, "1": 0.5, "2": 0.2})
    probs = list(d.values.values())
    for i in range(300):
        expected = float(list(d.values)[int(np.random.default_rng(i).choice(3, p=probs))])
        assert d.draw(np.random.default_rng(i)) == expected
    many = d.draw_many(np.random.default_rng(1), 200_000)
    for k, p in d.values.items():
        assert abs((many == float(k)).mean() - p) < 0.005
    w = CovariateDistribution(dist="lognormal", median=70, cv=0.2, min=50, max=90)
    drawn = w.draw_many(np.random.default_rng(2), 100_000)
    assert drawn.min() >= 50 and drawn.max() <= 90
    single = np.array([w.draw(np.random.default_rng(i)) for i in range(4000)])
    assert abs(np.median(drawn) - np.median(single)) < 1.0
