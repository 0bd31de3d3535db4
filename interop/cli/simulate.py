"""``interop simulate cohort`` (a virtual cohort of a registered model, as Parquet) and
``interop simulate pta`` (probability of target attainment of regimens on a virtual population)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from interop.cli.validate import batch_progress
from interop.settings import get_settings

simulate_app = typer.Typer(help="Simulate virtual subjects and cohorts.", no_args_is_help=True)


@simulate_app.command("cohort")
def cohort(
    model: str = typer.Option(..., "--model", help="Registered model: ID or ID@VERSION"),
    n: int = typer.Option(..., "--n", min=1, help="Number of virtual subjects"),
    design: Path = typer.Option(..., "--design", help="Dosing and sampling design (JSON or YAML)"),
    covariates: Path | None = typer.Option(None, "--covariates", help="Covariate distribution file"),
    resample: Path | None = typer.Option(
        None, "--resample", help="Real cohort folder to resample covariates from"
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default <home>/output/cohort)"),
    records: bool = typer.Option(
        False, "--records", help="Also write PatientRecords (a cohort folder that `interop validate` reads)"
    ),
    seed: int = typer.Option(1, "--seed"),
    batch_size: int = typer.Option(250, "--batch-size", min=1, help="Subjects per task"),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler tcp://host:port; default a LocalCluster; 'single' for one process",
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="LocalCluster worker processes"),
) -> None:
    """Draw subjects from the card (Omega, covariates), simulate the design, write Parquet."""
    from interop.workflows.validate import simulate_virtual_cohort  # heavy: on use only

    settings = get_settings()
    out_dir = out or settings.output_dir / "cohort"
    with batch_progress("simulating") as progress:
        stored, res = simulate_virtual_cohort(
            settings,
            model,
            n,
            design,
            out_dir,
            covariates=covariates,
            resample=resample,
            seed=seed,
            batch_size=batch_size,
            scheduler=scheduler,
            workers=workers,
            records=records,
            progress=progress,
        )
    console = Console()
    console.print(
        f"{stored.model_id}@{stored.version}: {res.n_subjects} subjects "
        f"({res.n_failed} failed), {res.n_levels} levels"
    )
    console.print(f"Levels: {res.levels_path}")
    console.print(f"Subjects (covariates, ETAs, status): {res.subjects_path}")
    if res.cohort_dir:
        console.print(f"Cohort of PatientRecords: {res.cohort_dir}")
    for pid, error in list(res.failures.items())[:10]:
        console.print(f"  failed {pid}: {error}")


@simulate_app.command("pta")
def pta(
    model: str = typer.Option(..., "--model", help="Registered model: ID or ID@VERSION"),
    regimens: Path = typer.Option(..., "--regimens", help="Study file: targets and regimens (JSON or YAML)"),
    n: int = typer.Option(10_000, "--n", min=1, help="Virtual subjects per regimen"),
    covariates: Path | None = typer.Option(None, "--covariates", help="Covariate distribution file"),
    resample: Path | None = typer.Option(
        None, "--resample", help="Real cohort folder to resample covariates from"
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default <home>/output/pta)"),
    seed: int = typer.Option(1, "--seed"),
    block_size: int = typer.Option(10_000, "--block-size", min=1, help="Subjects per task"),
    scheduler: str | None = typer.Option(
        "single",
        "--scheduler",
        help="'single' (default: this process), 'local' (a LocalCluster) or tcp://host:port",
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="LocalCluster worker processes"),
) -> None:
    """Simulate every regimen on the same virtual subjects; write pta.csv, pta.json and pta.png."""
    from interop.workflows.validate import simulate_pta  # heavy: on use only

    settings = get_settings()
    out_dir = out or settings.output_dir / "pta"
    with batch_progress("simulating") as progress:
        stored, result, paths = simulate_pta(
            settings,
            model,
            n,
            regimens,
            out_dir,
            covariates=covariates,
            resample=resample,
            seed=seed,
            block_size=block_size,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
        )
    console = Console()
    console.print(f"{stored.model_id}@{stored.version}: {result.n:,} virtual subjects per regimen")
    for row in result.table.to_dict(orient="records"):
        console.print(f"  {row['regimen']}: PTA {100 * float(row['PTA all targets']):.1f} %")
    for kind, path in paths.items():
        console.print(f"{kind.upper()}: {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
