"""Virtual cohorts: individuals drawn from a model card's distributions, simulated under a
design, in batches on one process or on Dask distributed."""

from interop.cohort.design import Design, DesignDose, load_design
from interop.cohort.population import (
    CovariateDistribution,
    Population,
    Subject,
    baseline_covariates,
    draw_subject,
    load_distributions,
    rows_from_records,
)
from interop.cohort.records import to_records
from interop.cohort.run import CohortResult, simulate_cohort
from interop.cohort.scale import BatchRunner, Checkpoints, run_batches
from interop.cohort.simulate import CohortSpec, add_residual_error, simulate_batch

__all__ = [
    "BatchRunner",
    "Checkpoints",
    "CohortResult",
    "CohortSpec",
    "CovariateDistribution",
    "Design",
    "DesignDose",
    "Population",
    "Subject",
    "add_residual_error",
    "baseline_covariates",
    "draw_subject",
    "load_design",
    "load_distributions",
    "rows_from_records",
    "run_batches",
    "simulate_batch",
    "simulate_cohort",
    "to_records",
]
