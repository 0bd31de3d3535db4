"""Use cases of a validating site: validate a registered model on a local cohort, send the
aggregate record to a registry; simulate a virtual cohort of a registered model.

The cohort never leaves the site: only the ``ValidationRecord`` (aggregates) is sent, with the
run's VPC and NPDE images (aggregate plots: no patient id, no patient row).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import httpx

from interop.cohort import Population, load_design, load_distributions, rows_from_records, simulate_cohort
from interop.cohort.pta import PtaResult, load_study, run_pta, write_pta
from interop.cohort.run import CohortResult
from interop.cohort.scale import Progress
from interop.errors import InteropError, RegistryError, SchemaError
from interop.schema import ModelCard, PatientRecord, ValidationRecord, parse_json
from interop.schema.cohort import read_cohort
from interop.schema.model_id import ModelRef, parse_model_ref
from interop.settings import Settings
from interop.validation import ValidationOutcome, run_validation
from interop.workflows.ml import resolve_ml_links
from interop.workflows.registry_session import registry_session
from registry import StoredModel, open_registry

__all__ = [
    "ModelRef",
    "load_records",
    "parse_model_ref",
    "resolve_model",
    "simulate_pta",
    "simulate_virtual_cohort",
    "submit_record",
    "validate_cohort",
    "virtual_population",
]

log = logging.getLogger(__name__)


def resolve_model(ref: ModelRef, settings: Settings) -> StoredModel:
    with registry_session(settings) as registry:
        return registry.get(ref.model_id, ref.version)


def load_records(cohort: Path) -> list[PatientRecord]:
    """A cohort folder: Parquet tables (``patients.parquet``...) or ``records/<id>.json`` files."""
    if (cohort / "patients.parquet").exists():
        return read_cohort(cohort)
    folder = cohort / "records" if (cohort / "records").is_dir() else cohort
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise SchemaError(
            "no patients.parquet and no records/*.json: not a cohort folder", source=str(cohort)
        )
    return [parse_json(PatientRecord, f.read_text(), source=str(f)) for f in files]


def submit_record(
    record: ValidationRecord,
    target: str,
    *,
    token: str | None = None,
    submitted_by: str = "local",
    blob_dir: Path | None = None,
    images: Sequence[tuple[str, bytes]] = (),
) -> str:
    """Send the record, with its ``(title, PNG bytes)`` images (:func:`interop.validation.shared_images`),
    to a registry: an ``http(s)://`` API (bearer ``token``) or a local one (a database URL or a
    SQLite file path). Returns where it was stored."""
    if target.startswith(("http://", "https://")):
        # POST /models/{id}/versions/{v}/validation-records with the bearer token (the registry API).
        from interop.workflows.remote import RemoteRegistry

        remote = RemoteRegistry(target, token, timeout=60)
        try:
            rid = remote.add_validation_record(record, images)
        except httpx.TransportError as exc:
            raise RegistryError(f"cannot reach the registry API: {exc}", source=target) from exc
        finally:
            remote.http.close()
        return f"{target} (record {rid})"
    url = target if "://" in target else f"sqlite:///{Path(target).expanduser().resolve()}"
    # A SQLite file keeps its blobs beside it (the INTEROP_HOME layout); a server URL uses ``blob_dir``.
    blobs = Path(target).expanduser().resolve().parent / "blobs" if "://" not in target else blob_dir
    if blobs is None:
        raise InteropError("a registry database URL needs the blob folder of that registry", source=target)
    with open_registry(url, blobs) as registry:  # a registry named by URL, not by settings
        rid = registry.add_validation_record(record, submitted_by=submitted_by, images=images)
    return f"{url} (record {rid})"


def validate_cohort(
    settings: Settings,
    model: str,
    cohort: Path,
    out_dir: Path,
    *,
    site: str,
    seed: int = 1,
    n_sim: int = 200,
    iterative: bool = True,
    batch_size: int = 25,
    scheduler: str | None = None,
    workers: int = 2,
    n_boot: int = 1000,
    progress: Progress | None = None,
) -> tuple[StoredModel, ValidationOutcome]:
    with registry_session(settings) as registry:
        stored = registry.get(*parse_model_ref(model))
        card = resolve_ml_links(stored.card, registry)  # a hybrid twin: its ML model versions
    records = load_records(cohort)
    outcome = run_validation(
        stored.sbml,
        card,
        records,
        out_dir,
        model_version=stored.version,
        site=site,
        seed=seed,
        n_sim=n_sim,
        iterative=iterative,
        batch_size=batch_size,
        scheduler=scheduler,
        workers=workers,
        n_boot=n_boot,
        model_sha256=stored.sbml_sha256,
        progress=progress,
    )
    return stored, outcome


def virtual_population(card: ModelCard, covariates: Path | None, resample: Path | None) -> Population:
    """Covariates from a distribution file, or resampled from a real cohort, else reference values."""
    if covariates is not None and resample is not None:
        raise InteropError("give --covariates or --resample, not both", field="covariates")
    if covariates is not None:
        return Population(load_distributions(covariates, card))
    if resample is not None:
        return Population({}, rows_from_records(load_records(resample), card))
    return Population({})


def simulate_virtual_cohort(
    settings: Settings,
    model: str,
    n: int,
    design: Path,
    out_dir: Path,
    *,
    covariates: Path | None = None,
    resample: Path | None = None,
    seed: int = 1,
    batch_size: int = 250,
    scheduler: str | None = None,
    workers: int = 2,
    records: bool = False,
    progress: Progress | None = None,
) -> tuple[StoredModel, CohortResult]:
    stored = resolve_model(parse_model_ref(model), settings)
    population = virtual_population(stored.card, covariates, resample)
    result = simulate_cohort(
        stored.sbml,
        stored.card,
        load_design(design),
        n,
        out_dir,
        population=population,
        seed=seed,
        batch_size=batch_size,
        scheduler=scheduler,
        workers=workers,
        records=records,
        progress=progress,
    )
    return stored, result


def simulate_pta(
    settings: Settings,
    model: str,
    n: int,
    regimens: Path,
    out_dir: Path,
    *,
    covariates: Path | None = None,
    resample: Path | None = None,
    seed: int = 1,
    block_size: int = 10_000,
    scheduler: str | None = "single",
    workers: int = 2,
    progress: Progress | None = None,
) -> tuple[StoredModel, PtaResult, dict[str, Path]]:
    """PTA of every regimen in ``regimens`` on ``n`` virtual subjects; writes table and plot."""
    stored = resolve_model(parse_model_ref(model), settings)
    population = virtual_population(stored.card, covariates, resample)
    result = run_pta(
        stored.sbml,
        stored.card,
        load_study(regimens),
        n,
        population,
        seed=seed,
        block_size=block_size,
        scheduler=scheduler,
        workers=workers,
        progress=progress,
    )
    return stored, result, write_pta(result, out_dir)
