"""``interop pharmml convert``: a PharmML model as SBML plus a model card, without a registry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import typer
from pydantic import RootModel
from rich.console import Console

from interop.schema import RXNORM, Coding, ModelCard, ReferenceOutput, parse_json

__all__ = ["pharmml_app", "register"]

log = logging.getLogger(__name__)
pharmml_app = typer.Typer(help="PharmML models (DDMoRe): convert to SBML + model card.", no_args_is_help=True)
out_console = Console()


class _ReferenceList(RootModel[list[ReferenceOutput]]):
    pass


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=what)
        out[key.strip()] = value.strip()
    return out


def drug_coding(rxnorm: str | None, drug_name: str | None) -> Coding | None:
    """The card's drug from ``--rxnorm``/``--drug-name`` (a name alone is refused)."""
    if rxnorm:
        return Coding(system=RXNORM, code=rxnorm, display=drug_name or None)
    if drug_name:
        raise typer.BadParameter("--drug-name needs --rxnorm", param_hint="--drug-name")
    return None


def write_converted(out: Path, sbml: str, card: ModelCard, warnings: Sequence[str]) -> tuple[Path, Path]:
    """Write a converted model as ``OUT/<id>.xml`` and ``OUT/<id>.card.json``; log its warnings."""
    out.mkdir(parents=True, exist_ok=True)
    sbml_path, card_path = out / f"{card.id}.xml", out / f"{card.id}.card.json"
    sbml_path.write_text(sbml, encoding="utf-8")
    card_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    for w in warnings:
        log.warning("%s", w)
    return sbml_path, card_path


@pharmml_app.command("convert")
def convert_command(
    model: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="PharmML file (0.6, 0.8/0.8.1 or 0.9)"
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", file_okay=False, help="Directory for <id>.xml (SBML) and <id>.card.json"
    ),
    set_values: list[str] = typer.Option(
        [], "--set", help="Parameter value NAME=NUMBER (fills values the file lacks; repeatable)"
    ),
    units: list[str] = typer.Option([], "--unit", help="UCUM unit OBSERVABLE=UNIT or dose=UNIT (repeatable)"),
    rxnorm: str | None = typer.Option(None, "--rxnorm", help="RxNorm code of the drug"),
    drug_name: str | None = typer.Option(None, "--drug-name", help="Drug name for the card"),
    institution: str | None = typer.Option(None, "--institution", help="Institution for the card"),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        exists=True,
        dir_okay=False,
        help="JSON list of reference outputs (independent solutions) to put on the card",
    ),
) -> None:
    """Convert MODEL; writes nothing unless the whole model converts."""
    from registry.formats.pharmml import convert  # loaded on use: keeps `interop --help` fast

    try:
        values = {k: float(v) for k, v in _pairs(set_values, "--set").items()}
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from exc
    drug = drug_coding(rxnorm, drug_name)
    refs: list[ReferenceOutput] = []
    if reference is not None:
        refs = list(parse_json(_ReferenceList, reference.read_bytes(), source=str(reference)).root)
    result = convert(
        model.read_bytes(),
        reference_outputs=refs,
        source=str(model),
        values=values,
        units=_pairs(units, "--unit"),
        drug=drug,
        institution=institution,
    )
    sbml_path, card_path = write_converted(out, result.sbml, result.card, result.warnings)
    out_console.print(
        f"PharmML {result.pharmml_version} -> {sbml_path} and {card_path}",
        markup=False,
        highlight=False,
    )
    for dose in result.trial_doses:
        out_console.print(
            f"  trial-design dose: {dose.amount:g} {dose.route} at {dose.time_h:g} h"
            + (f" over {dose.duration_h:g} h" if dose.duration_h else "")
            + (f" (administration {dose.adm})" if dose.adm is not None else "")
        )
    if result.warnings:
        out_console.print(f"  {len(result.warnings)} warning(s), logged above")


def register(app: typer.Typer) -> None:
    app.add_typer(pharmml_app, name="pharmml")
