"""``interop validate``: a registered model against this site's cohort; the record to a registry."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from interop.settings import get_settings


@contextmanager
def batch_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar fed by ``(done, total)`` batch callbacks (stderr).

    Dask's scheduler logs every worker start and stop at INFO; unless ``--verbose`` asked for
    INFO, the CLI keeps them to warnings so the bar stays readable.
    """
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        model: str = typer.Option(..., "--model", help="Registered model: ID or ID@VERSION"),
        cohort: Path = typer.Option(..., "--cohort", help="Cohort folder (Parquet tables or records/*.json)"),
        site: str = typer.Option(os.environ.get("INTEROP_SITE", "local"), "--site", help="This site's name"),
        out: Path | None = typer.Option(
            None, "--out", help="Output folder (default: <home>/output/validate)"
        ),
        submit: str | None = typer.Option(
            None,
            "--submit",
            help="Registry to send the record to: a database URL or SQLite path, or an http(s):// API URL",
        ),
        token: str | None = typer.Option(None, "--token", envvar="INTEROP_TOKEN", help="API bearer token"),
        images: bool = typer.Option(
            True,
            "--images/--no-images",
            help="Send the VPC and NPDE images (aggregate plots) with the record",
        ),
        scheduler: str | None = typer.Option(
            None,
            "--scheduler",
            help="Dask scheduler tcp://host:port; default a LocalCluster; 'single' for one process",
        ),
        workers: int = typer.Option(2, "--workers", min=1, help="LocalCluster worker processes"),
        n_sim: int = typer.Option(
            200, "--n-sim", min=20, help="Simulated replicates per patient (NPDE, VPC)"
        ),
        batch_size: int = typer.Option(25, "--batch-size", min=1, help="Patients per task"),
        seed: int = typer.Option(1, "--seed"),
        iterative: bool = typer.Option(
            True, "--iterative/--no-iterative", help="Iterative forecasting (one MAP fit per earlier level)"
        ),
    ) -> None:
        """Validate a registered model on a cohort: metrics, NPDE, VPC, HTML report, validation record."""
        from interop.workflows.validate import submit_record, validate_cohort  # heavy: on use only

        settings = get_settings()
        out_dir = out or settings.output_dir / "validate"
        console = Console()
        with batch_progress("validating") as progress:
            stored, res = validate_cohort(
                settings,
                model,
                cohort,
                out_dir,
                site=site,
                seed=seed,
                n_sim=n_sim,
                iterative=iterative,
                batch_size=batch_size,
                scheduler=scheduler,
                workers=workers,
                progress=progress,
            )
        s = res.summary
        console.print(
            f"Model [bold]{stored.model_id}@{stored.version}[/] on {s.n_read} patients: "
            f"{s.n_included} included, {s.n_read - s.n_included} excluded, {s.n_levels} levels"
        )
        for use in res.record.ml_models:  # a hybrid twin: the ML model versions that took part
            console.print(f"  with ML model {use.model_id}@{use.model_version} ({use.role} {use.parameter})")
        for reason, count in s.exclusions.items():
            console.print(f"  excluded ({reason}): {count}")
        table = Table(title="Predictive performance (95 % CI, patient bootstrap)")
        for col in ("setting", "observable", "metric", "value", "95 % CI"):
            table.add_column(col)
        for r in s.metrics.itertuples(index=False):
            if r.name in ("mpe_percent", "rrmse_percent", "within_20_percent", "within_30_percent"):
                table.add_row(
                    r.setting, r.observable, r.name, f"{r.value:.3g}", f"[{r.ci_low:.3g}, {r.ci_high:.3g}]"
                )
        console.print(table)
        for obs, n in s.npde.items():
            if "mean" in n:
                console.print(
                    f"NPDE {obs}: mean {n['mean']:.3f}, variance {n['variance']:.3f}, "
                    f"global p {n['p_global']:.3g}; 90 % PI coverage {s.coverage_90[obs]:.1f} %"
                )
        console.print(f"Report: {res.report_path}")
        console.print(f"Validation record: {res.record_path}")
        if submit:
            from interop.validation import shared_images

            sent = shared_images(res.plots) if images else []
            where = submit_record(
                res.record, submit, token=token, submitted_by=site, blob_dir=settings.blob_dir, images=sent
            )
            console.print(f"Record sent to {where}" + (f" with {len(sent)} images" if sent else ""))
