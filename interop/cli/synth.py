"""``interop synth fhir --n N``: synthetic TDM feeds (levels simulated from a model)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from interop.errors import InteropError
from interop.settings import get_settings

__all__ = ["register"]

synth_app = typer.Typer(help="Generate synthetic data.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")


@synth_app.command("fhir")
def synth_fhir(
    n: int = typer.Option(..., "--n", min=1, help="Number of patients"),
    out: Path = typer.Option(Path("synthetic-fhir"), "--out", help="Output folder"),
    fmt: str = typer.Option("bundle", "--format", help="bundle (one R4 Bundle per patient) or ndjson (Bulk)"),
    model: str | None = typer.Option(
        None, "--model", help="Registered model ID[@VERSION] (default: bundled gentamicin demo model)"
    ),
    days: int = typer.Option(3, "--days", min=1, help="Days of once-daily dosing per patient"),
    seed: int = typer.Option(1, "--seed", help="Random seed (same seed, same feed)"),
    gz: bool = typer.Option(False, "--gzip", help="gzip the NDJSON files"),
) -> None:
    """Write N synthetic patients with doses, weight, creatinine and simulated drug levels as FHIR R4."""
    from interop.workflows.synth import (  # loaded on use: keeps `interop --help` fast
        load_synth_model,
        write_synthetic_feed,
    )

    if fmt not in ("bundle", "ndjson"):
        raise InteropError(f"--format must be bundle or ndjson, not {fmt!r}", field="--format")
    console = Console(stderr=True)
    sbml, card, label = load_synth_model(get_settings(), model)
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("patients", total=n)
        res = write_synthetic_feed(
            out,
            n,
            sbml=sbml,
            card=card,
            label=label,
            fmt=fmt,  # type: ignore[arg-type]
            days=days,
            seed=seed,
            gzip_ndjson=gz,
            on_patient=lambda: progress.advance(task),
        )
    console.print(
        f"{res.patients} patients, {res.resources} resources ({res.format}) from model "
        f"{res.model} in {res.out}"
    )
