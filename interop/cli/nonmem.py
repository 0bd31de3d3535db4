"""``interop nonmem convert|export``: NONMEM control streams to SBML + model card, and back."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from interop.cli.pharmml import _pairs, drug_coding, write_converted

__all__ = ["nonmem_app", "register"]

nonmem_app = typer.Typer(
    help="NONMEM control streams: convert to SBML + model card (pharmpy).", no_args_is_help=True
)
out_console = Console()


@nonmem_app.command("convert")
def convert_command(
    model: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="control stream (.mod/.ctl)"
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", file_okay=False, help="Directory for <id>.xml and <id>.card.json"
    ),
    units: list[str] = typer.Option([], "--unit", help="UCUM unit OBSERVABLE=UNIT or dose=UNIT (repeatable)"),
    rxnorm: str | None = typer.Option(None, "--rxnorm", help="RxNorm code of the drug"),
    drug_name: str | None = typer.Option(None, "--drug-name", help="Drug name for the card"),
    institution: str | None = typer.Option(None, "--institution", help="Institution for the card"),
) -> None:
    """Convert MODEL; writes nothing unless the whole model converts."""
    from registry.formats.nonmem import convert  # pharmpy loads slowly: only on use

    drug = drug_coding(rxnorm, drug_name)
    result = convert(
        model.read_bytes(),
        source=str(model),
        units=_pairs(units, "--unit"),
        drug=drug,
        institution=institution,
    )
    sbml_path, card_path = write_converted(out, result.sbml, result.card, result.warnings)
    out_console.print(f"NONMEM -> {sbml_path} and {card_path}", markup=False, highlight=False)
    cmts = result.card.compartments
    if cmts is not None:
        for d in cmts.doses:
            rate = "" if d.rate_code is None else f" (RATE={d.rate_code})"
            out_console.print(f"  CMT {d.cmt}{rate}: {d.route} dose", markup=False, highlight=False)
        for lv in cmts.levels:
            where = (
                f"CMT {lv.cmt}"
                if cmts.observation_item is None
                else (
                    f"{cmts.observation_item} {'other' if lv.value is None else f'{lv.value:g}'}"
                    + ("" if lv.cmt is None else f" in CMT {lv.cmt}")
                )
            )
            out_console.print(f"  {where}: observable {lv.observable}", markup=False, highlight=False)
    if result.warnings:
        out_console.print(f"  {len(result.warnings)} warning(s), logged above")


@nonmem_app.command("export")
def export_command(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="SBML file"),
    card: Path = typer.Option(..., "--card", exists=True, dir_okay=False, help="model card JSON"),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="control stream to write"),
    data: str = typer.Option("data.csv", "--data", help="$DATA file name to write into the stream"),
) -> None:
    """Write a linear compartmental model (SBML + card) as a NONMEM control stream."""
    from interop.schema import ModelCard, parse_json
    from registry.formats.nonmem.export import export_control_stream

    text = export_control_stream(
        model.read_text(encoding="utf-8"),
        parse_json(ModelCard, card.read_bytes(), source=str(card)),
        data_file=data,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    out_console.print(f"control stream written to {out}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(nonmem_app, name="nonmem")
