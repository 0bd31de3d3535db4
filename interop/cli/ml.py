"""``interop ml``: export a fitted scikit-learn model to ONNX with its ML card; pack an archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from interop.errors import SchemaError

ml_app = typer.Typer(
    help="ML models (ONNX): export from scikit-learn, pack for the registry.", no_args_is_help=True
)
console = Console()


def _rows(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read reference rows: {exc}", source=str(path)) from exc
    return frame.to_numpy(dtype=float)


@ml_app.command("export")
def export(
    model: Annotated[Path, typer.Argument(help="fitted scikit-learn estimator or pipeline (joblib/pickle)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for model.onnx, ml-card.json, <id>.zip")],
    card: Annotated[
        Path | None, typer.Option("--card", help="ML card template (JSON): all but expected outputs")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="CSV of reference input rows (feature columns in card order)"),
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="load the pickle: it is code, only for files you trust")
    ] = False,
) -> None:
    """Convert with skl2onnx; without --card, write a skeleton card to fill (marked TODO)."""
    from interop.workflows.ml import export_sklearn

    rows = _rows(reference) if reference is not None else None
    result = export_sklearn(model, out, trusted=trust, card_template=card, reference_rows=rows)
    console.print(f"ONNX: {result.onnx_path} ({result.n_features} features)")
    if result.archive_path is None:
        console.print(f"card skeleton: {result.card_path} (fill every TODO, then pass it as --card)")
        return
    console.print(
        f"card: {result.card_path}\narchive: {result.archive_path} (interop registry submit takes it)"
    )
    if result.max_abs_difference is not None:
        console.print(f"largest |ONNX - scikit-learn| on the reference rows: {result.max_abs_difference:.3g}")


@ml_app.command("pack")
def pack_cmd(
    onnx: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="ONNX model")],
    card: Annotated[Path, typer.Option("--card", exists=True, dir_okay=False, help="ML card JSON")],
    out: Annotated[Path, typer.Option("--out", "-o", help="archive to write (.zip)")],
) -> None:
    """Pack an ONNX file and its ML card into the archive the registry takes (both checked)."""
    from interop.schema.onnx_model import inspect_onnx
    from interop.workflows.ml import read_card
    from registry.formats.onnx import pack

    c = read_card(card)
    data, _ = inspect_onnx(onnx.read_bytes(), source=str(onnx))
    out.write_bytes(pack(data, c))
    console.print(f"archive: {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(ml_app, name="ml")
