"""Cross-site validation: predictive-performance metrics, NPDE, VPC, report, validation record."""

from interop.validation.fingerprint import canonical_record, dataset_fingerprint
from interop.validation.metrics import METRICS, bootstrap_metrics, compute_metrics, per_patient_metrics
from interop.validation.npde import npde_summary, patient_npde, prediction_interval
from interop.validation.patient import REASONS, Exclusion, ValidationSpec, screen_patient, validate_batch
from interop.validation.report import shared_images
from interop.validation.run import ValidationOutcome, run_validation
from interop.validation.summary import ValidationSummary, summarise, to_record
from interop.validation.vpc import make_bins, vpc_table

__all__ = [
    "METRICS",
    "REASONS",
    "Exclusion",
    "ValidationOutcome",
    "ValidationSpec",
    "ValidationSummary",
    "bootstrap_metrics",
    "canonical_record",
    "compute_metrics",
    "dataset_fingerprint",
    "make_bins",
    "npde_summary",
    "patient_npde",
    "per_patient_metrics",
    "prediction_interval",
    "run_validation",
    "screen_patient",
    "shared_images",
    "summarise",
    "to_record",
    "validate_batch",
    "vpc_table",
]
