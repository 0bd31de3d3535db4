"""``run_validation``: a model (SBML + card) against a cohort of ``PatientRecord``s, in batches of
patients on Dask (or one process), to the report, the tables and the validation record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interop.cohort.scale import Progress, run_batches
from interop.schema import ModelCard, PatientRecord, ValidationRecord
from interop.validation.fingerprint import dataset_fingerprint
from interop.validation.patient import LEVEL_COLUMNS, PATIENT_COLUMNS, ValidationSpec, validate_batch
from interop.validation.report import write_plots, write_report
from interop.validation.summary import ValidationSummary, summarise, to_record

__all__ = ["ValidationOutcome", "run_validation"]


@dataclass(frozen=True)
class ValidationOutcome:
    summary: ValidationSummary
    record: ValidationRecord
    out_dir: Path
    report_path: Path
    record_path: Path
    plots: dict[str, Path]
    levels: pd.DataFrame
    patients: pd.DataFrame


def run_validation(
    sbml: str,
    card: ModelCard,
    records: Sequence[PatientRecord],
    out_dir: Path,
    *,
    model_version: int,
    site: str,
    seed: int = 1,
    n_sim: int = 200,
    iterative: bool = True,
    batch_size: int = 25,
    scheduler: str | None = None,
    workers: int = 2,
    n_boot: int = 1000,
    model_sha256: str | None = None,
    progress: Progress | None = None,
    batched: bool = True,
) -> ValidationOutcome:
    """Validate, write ``report.html`` (+ PNGs), tables and ``validation-record.json`` to ``out_dir``.

    ``batched=False`` evaluates every patient on its own (the reference path; the batched path
    covers closed-form models and hands anything else back to it)."""
    if not records:
        raise ValueError("the cohort has no patients")
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = dataset_fingerprint(records)
    sha = model_sha256 or hashlib.sha256(sbml.encode()).hexdigest()
    spec = ValidationSpec(
        sbml, card.model_dump_json(), seed=seed, n_sim=n_sim, iterative=iterative, batched=batched
    )
    ordered = sorted(records, key=lambda r: r.patient.id)
    batches = [
        (tuple(r.model_dump_json() for r in ordered[i : i + batch_size]),)
        for i in range(0, len(ordered), batch_size)
    ]
    key = hashlib.sha256(
        json.dumps([sha, spec.card_json, fingerprint, seed, n_sim, iterative, batch_size, batched]).encode()
    ).hexdigest()
    results = run_batches(
        validate_batch,
        spec,
        batches,
        scheduler=scheduler,
        workers=workers,
        checkpoint_dir=out_dir / "checkpoints" / key[:16],
        run_key=key,
        progress=progress,
    )
    levels = pd.concat(
        [r["levels"] for r in results if len(r["levels"])] or [pd.DataFrame(columns=LEVEL_COLUMNS)],
        ignore_index=True,
    )
    patients = pd.concat([r["patients"] for r in results], ignore_index=True)[PATIENT_COLUMNS]
    summary = summarise(levels, patients, n_boot=n_boot, seed=seed)
    it_note = "iterative forecasting leaves out each first level" if iterative else "no iterative forecasting"
    notes = (
        f"NPDE/VPC from {n_sim} simulations per patient of its own design (seed {seed}); {it_note}; "
        f"{summary.n_levels_unused} level(s) below the limit of quantification or before the first dose "
        f"left out; {summary.map_not_converged} MAP fit(s) not converged; CIs: patient bootstrap "
        f"({n_boot} replicates)"
    )
    record = to_record(
        summary,
        model_id=card.id,
        model_version=model_version,
        model_sha256=sha,
        site=site,
        fingerprint=fingerprint,
        notes=notes,
    )
    if card.ml_models:  # a hybrid twin: the record names both model versions
        from interop.twin.hybrid import ml_model_uses

        record = record.model_copy(update={"ml_models": ml_model_uses(card)})

    levels.drop(columns=["sims"]).to_parquet(out_dir / "levels.parquet", index=False)
    patients.to_parquet(out_dir / "patients.parquet", index=False)
    summary.metrics.to_csv(out_dir / "metrics.csv", index=False)
    summary.per_patient.to_csv(out_dir / "per_patient_metrics.csv", index=False)
    summary.subgroups.to_csv(out_dir / "metrics_by_subgroup.csv", index=False)
    excluded = patients[patients["status"] != "included"]
    excluded[["patient_id", "reason", "detail"]].to_csv(out_dir / "excluded_patients.csv", index=False)
    for obs_id, t in summary.vpc.items():
        t.to_csv(out_dir / f"vpc_{obs_id}.csv", index=False)
        summary.pcvpc[obs_id].to_csv(out_dir / f"pcvpc_{obs_id}.csv", index=False)
    record_path = out_dir / "validation-record.json"
    record_path.write_text(record.model_dump_json(indent=2))

    plots = write_plots(levels, summary, {o.id: o.unit for o in card.observables}, out_dir)
    facts = {
        "model": f"{card.id} version {model_version} (SBML SHA-256 {sha[:16]}…)",
        **(
            {
                "ML models": ", ".join(
                    f"{u.model_id}@{u.model_version} ({u.role} {u.parameter})" for u in record.ml_models
                )
            }
            if record.ml_models
            else {}
        ),
        "site": site,
        "dataset fingerprint": fingerprint,
        "patients": f"{summary.n_read} read = {summary.n_included} included + "
        f"{summary.n_read - summary.n_included} excluded",
        "levels in metrics": f"{summary.n_levels} ({summary.n_levels_unused} levels of included patients "
        "left out: below the limit of quantification or before the first dose)",
        "MAP fits not converged": str(summary.map_not_converged),
        "simulations per patient": str(n_sim),
        "seed": str(seed),
        "software": record.software,
        "date": record.created_at.isoformat(timespec="seconds"),
    }
    report = write_report(
        out_dir / "report.html",
        title=f"Validation of {card.title}",
        facts=facts,
        summary=summary,
        plots=plots,
        excluded=excluded,
    )
    return ValidationOutcome(summary, record, out_dir, report, record_path, plots, levels, patients)
