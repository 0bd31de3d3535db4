"""``simulate_cohort``: a virtual cohort of any size, in batches, written as Parquet."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interop.cohort.design import Design
from interop.cohort.population import Population, parse_distributions
from interop.cohort.records import to_records
from interop.cohort.scale import Progress, run_batches
from interop.cohort.simulate import CohortSpec, simulate_batch
from interop.schema import ModelCard
from interop.schema.cohort import write_cohort

__all__ = ["CohortResult", "simulate_cohort"]


@dataclass(frozen=True)
class CohortResult:
    n_subjects: int
    n_failed: int
    n_levels: int
    levels_path: Path
    subjects_path: Path
    cohort_dir: Path | None
    failures: dict[str, str]  # subject id -> error


def run_key(spec: CohortSpec, n: int, batch_size: int) -> str:
    pop = {
        "dist": {k: v.model_dump(mode="json") for k, v in spec.population.distributions.items()},
        "rows": list(spec.population.rows),
        "groups": [
            [g.name, g.weight, {k: v.model_dump(mode="json") for k, v in g.distributions.items()}]
            for g in spec.population.groups
        ],
    }
    blob = json.dumps(
        {
            "sbml": hashlib.sha256(spec.sbml.encode()).hexdigest(),
            "card": spec.card_json,
            "design": spec.design.model_dump(mode="json"),
            "pop": pop,
            "seed": spec.seed,
            "n": n,
            "batch": batch_size,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def simulate_cohort(
    sbml: str,
    card: ModelCard,
    design: Design,
    n: int,
    out_dir: Path,
    *,
    population: Population | None = None,
    seed: int = 1,
    batch_size: int = 250,
    scheduler: str | None = None,
    workers: int = 2,
    records: bool = False,
    progress: Progress | None = None,
) -> CohortResult:
    """Simulate ``n`` subjects; write ``levels.parquet`` and ``subjects.parquet`` (the truth:
    covariates and ETAs) to ``out_dir``, and with ``records`` a cohort of ``PatientRecord``s in
    ``out_dir/cohort``. Finished batches are kept in ``out_dir/checkpoints/<run key>`` so an
    interrupted run resumes where it stopped."""
    if n < 1 or batch_size < 1:
        raise ValueError("n and batch_size must be >= 1")
    if population is None or (not population.distributions and not population.rows and not population.groups):
        population = (
            parse_distributions(design.covariates, card, "design covariates") if design.covariates else None
        )
    spec = CohortSpec(sbml, card.model_dump_json(), design, population or Population({}), seed)
    key = run_key(spec, n, batch_size)
    batches = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    out_dir.mkdir(parents=True, exist_ok=True)
    results = run_batches(
        simulate_batch,
        spec,
        batches,
        scheduler=scheduler,
        workers=workers,
        checkpoint_dir=out_dir / "checkpoints" / key[:16],
        run_key=key,
        progress=progress,
    )
    levels = pd.concat([r["levels"] for r in results], ignore_index=True)
    subjects = pd.concat([r["subjects"] for r in results], ignore_index=True)
    levels_path, subjects_path = out_dir / "levels.parquet", out_dir / "subjects.parquet"
    levels.to_parquet(levels_path, index=False)
    subjects.to_parquet(subjects_path, index=False)
    cohort_dir = None
    if records:
        cohort_dir = out_dir / "cohort"
        write_cohort(to_records(card, design, subjects, levels), cohort_dir)
    failed = subjects[subjects["status"] != "ok"]
    return CohortResult(
        len(subjects),
        len(failed),
        len(levels),
        levels_path,
        subjects_path,
        cohort_dir,
        dict(zip(failed["patient_id"], failed["error"], strict=True)),
    )
