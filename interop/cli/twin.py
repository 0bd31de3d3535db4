"""``interop twin fit|forecast|recommend|compare-nonmem``: the clinical pharmacologist's commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from interop.errors import TwinError
from interop.settings import get_settings

twin_app = typer.Typer(
    help="Individualise a registered model from drug levels, forecast, recommend a dose.",
    no_args_is_help=True,
)
console = Console()

MODEL_HELP = "Registry model ID[@VERSION], or a path to an SBML file (card from --card or <stem>.card.json)"


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise TwinError(f"{what}: not a comma-separated list of numbers: {text!r}", field=what) from exc
    if not values:
        raise TwinError(f"{what}: give at least one value", field=what)
    return values


def _out_dir(out: Path | None, kind: str, patient: Path) -> Path:
    return out if out is not None else get_settings().output_dir / "twin" / kind / patient.stem


def _print_fit(fit: object, card: object) -> None:
    from interop.twin.estimate import MapResult

    assert isinstance(fit, MapResult)
    t = Table(title=f"MAP estimate, patient {fit.patient_id} ({fit.n_observations} levels)")
    for col in ("ETA", "estimate", "SE", "shrinkage"):
        t.add_column(col, justify="right")
    for name, value in fit.etas.items():
        t.add_row(name, f"{value:.5f}", f"{fit.standard_errors[name]:.4f}", f"{fit.shrinkage[name]:.2f}")
    console.print(t)
    p = Table(title="Individual parameters")
    p.add_column("parameter")
    p.add_column("value", justify="right")
    for name, value in fit.individual_parameters.items():
        p.add_row(name, f"{value:.5g}")
    console.print(p)
    o = Table(title="Levels: observed, a priori (PRED) and a posteriori (IPRED)")
    for col in ("time (h)", "observable", "observed", "PRED", "IPRED"):
        o.add_column(col, justify="right")
    for ob, ip, pp in zip(fit.observations, fit.predictions, fit.population_predictions, strict=False):
        o.add_row(
            f"{ob.time_h:.2f}",
            ob.observable,
            f"{ob.value:.4g}" + (" (BLQ)" if ob.below_lloq else ""),
            f"{pp:.4g}",
            f"{ip:.4g}",
        )
    console.print(o)
    console.print(
        f"objective {fit.objective:.6f}   OFV (NONMEM OBJ) {fit.ofv:.6f}   "
        f"converged {fit.converged} ({fit.message}; {fit.n_evaluations} evaluations)"
    )


def _print_covariates(outcome: object) -> None:
    """Which covariate values were bound, from which records, which fell back; warnings."""
    from interop.twin.covariates import describe_covariates

    info = describe_covariates(outcome.twin)  # type: ignore[attr-defined]
    t = Table(title="Covariates bound (value at the twin's origin; changes in the JSON)")
    for col in ("covariate", "value", "unit", "source", "timing", "from records"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for c in info["covariates"]:  # type: ignore[attr-defined]
        fell = " [yellow](reference)[/]" if c["fell_back_to_reference"] else ""
        shown = ", ".join(c["records"][:3]) + (" ..." if len(c["records"]) > 3 else "")
        t.add_row(
            c["name"], f"{c['value_at_origin']:.4g}{fell}", c["unit"] or "", c["source"], c["timing"], shown
        )
    console.print(t)
    for w in info["warnings"]:  # type: ignore[attr-defined]
        console.print(f"[yellow]warning:[/] {w}")


def _files(outcome: object) -> None:
    for label in ("json_path", "plot_path", "fhir_path"):
        path = getattr(outcome, label)
        if path is not None:
            console.print(f"  {label.removesuffix('_path'):6} {path}")


def register(app: typer.Typer) -> None:
    from interop.cli.imports import import_app

    app.add_typer(twin_app, name="twin")
    register_import(import_app)


@twin_app.command("fit")
def fit_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    patient: Path = typer.Option(..., "--patient", help="PatientRecord JSON"),
    card: Path | None = typer.Option(None, "--card", help="Model card JSON (for an SBML file)"),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: under INTEROP_HOME/output)"),
    starts: int = typer.Option(3, min=1, help="Optimiser starts (the first from the population values)"),
) -> None:
    """MAP individualisation: ETAs, SEs, shrinkage, individual parameters; JSON and PNG."""
    from interop.workflows.twin import fit_patient, load_model_source, read_patient

    sbml, model_card = load_model_source(model, get_settings(), card)
    outcome = fit_patient(
        sbml, model_card, read_patient(patient), _out_dir(out, "fit", patient), starts=starts
    )
    _print_fit(outcome.fit, model_card)
    _print_covariates(outcome)
    console.print("Files written:")
    _files(outcome)


@twin_app.command("forecast")
def forecast_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    patient: Path = typer.Option(..., "--patient", help="PatientRecord JSON"),
    card: Path | None = typer.Option(None, "--card"),
    out: Path | None = typer.Option(None, "--out"),
    until: float | None = typer.Option(
        None, "--until", help="Forecast up to this hour (default: last event + 48 h)"
    ),
    draws: int = typer.Option(500, min=10, help="Posterior draws for the 90% interval"),
    starts: int = typer.Option(3, min=1),
    target_low: float | None = typer.Option(None, "--target-low", help="Target band drawn on the plot"),
    target_high: float | None = typer.Option(None, "--target-high"),
) -> None:
    """A posteriori forecast with a 90% interval; JSON, PNG and FHIR Observations."""
    from interop.workflows.twin import forecast_patient, load_model_source, read_patient

    sbml, model_card = load_model_source(model, get_settings(), card)
    outcome = forecast_patient(
        sbml,
        model_card,
        read_patient(patient),
        _out_dir(out, "forecast", patient),
        until_h=until,
        n_draws=draws,
        starts=starts,
        target=(target_low, target_high) if target_low is not None and target_high is not None else None,
    )
    _print_fit(outcome.fit, model_card)
    _print_covariates(outcome)
    fc = outcome.forecast
    assert fc is not None
    obs = model_card.observables[0].id
    t = Table(title=f"Forecast of {obs} (90% interval)")
    for col in ("time (h)", "PRED", "IPRED", "5%", "95%"):
        t.add_column(col, justify="right")
    for i in range(0, len(fc.times_h), max(1, len(fc.times_h) // 12)):
        t.add_row(
            f"{fc.times_h[i]:.1f}",
            f"{fc.population[obs][i]:.4g}",
            f"{fc.individual[obs][i]:.4g}",
            f"{fc.lower[obs][i]:.4g}",
            f"{fc.upper[obs][i]:.4g}",
        )
    console.print(t)
    console.print("Files written:")
    _files(outcome)


@twin_app.command("recommend")
def recommend_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    patient: Path = typer.Option(..., "--patient", help="PatientRecord JSON"),
    target: str = typer.Option(..., "--target", help="trough | peak | auc | time_above"),
    low: float = typer.Option(..., "--low", help="Lower end of the target range"),
    high: float = typer.Option(..., "--high", help="Upper end of the target range"),
    threshold: float | None = typer.Option(None, "--threshold", help="Concentration for time_above"),
    amounts: str = typer.Option(..., "--amounts", help="Allowed doses, comma-separated (card amount unit)"),
    intervals: str = typer.Option(..., "--intervals", help="Allowed dosing intervals in h, comma-separated"),
    durations: str | None = typer.Option(None, "--durations", help="Allowed infusion durations in h"),
    route: str | None = typer.Option(None, "--route", help="Route (default: that of the last dose)"),
    n_doses: int = typer.Option(8, "--n-doses", min=1, help="Doses in the proposed regimen"),
    start: float | None = typer.Option(None, "--start", help="Hour of the first proposed dose"),
    observable: str | None = typer.Option(None, "--observable"),
    card: Path | None = typer.Option(None, "--card"),
    out: Path | None = typer.Option(None, "--out"),
    draws: int = typer.Option(200, min=10),
    starts: int = typer.Option(3, min=1),
) -> None:
    """The regimen of the allowed grid that best reaches the target, with its probability of target
    attainment; JSON, PNG and FHIR (MedicationRequest proposal + predicted Observations)."""
    from interop.twin.recommend import RegimenOptions, Target
    from interop.workflows.twin import load_model_source, read_patient, recommend_for_patient

    if target not in ("trough", "peak", "auc", "time_above"):
        raise TwinError(f"unknown target {target!r} (trough, peak, auc, time_above)", field="target")
    try:
        tgt = Target(target, low, high, observable, threshold)  # type: ignore[arg-type]
        opts = RegimenOptions(
            _floats(amounts, "amounts"),
            _floats(intervals, "intervals"),
            _floats(durations, "durations") if durations else (None,),
            route,  # type: ignore[arg-type]
            start,
            n_doses,
        )
    except ValueError as exc:
        raise TwinError(str(exc), field="target") from exc
    sbml, model_card = load_model_source(model, get_settings(), card)
    outcome = recommend_for_patient(
        sbml,
        model_card,
        read_patient(patient),
        tgt,
        opts,
        _out_dir(out, "recommend", patient),
        n_draws=draws,
        starts=starts,
    )
    rec = outcome.recommendation
    assert rec is not None
    _print_covariates(outcome)
    unit = model_card.dosing[0].amount_unit
    t = Table(title=f"Regimens for {target} {low:g}-{high:g} (best first)")
    for col in ("dose", "every (h)", "over (h)", "predicted", "90% range", "PTA"):
        t.add_column(col, justify="right")
    for c in rec.candidates[:15]:
        t.add_row(
            f"{c.amount:g} {unit}",
            f"{c.interval_h:g}",
            "-" if c.duration_h is None else f"{c.duration_h:g}",
            f"{c.exposure:.4g}",
            f"{c.exposure_p05:.3g}-{c.exposure_p95:.3g}",
            f"{c.probability:.0%}",
        )
    console.print(t)
    b = rec.best
    console.print(
        f"Recommended: [bold]{b.amount:g} {unit} every {b.interval_h:g} h[/]"
        + (f" over {b.duration_h:g} h" if b.duration_h else "")
        + f" from hour {rec.start_h:g}: predicted {target} {b.exposure:.4g}, "
        f"probability of target attainment {b.probability:.0%}"
    )
    console.print("Files written:")
    _files(outcome)


@twin_app.command("compare-nonmem")
def compare_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    data: Path = typer.Option(..., "--data", help="NONMEM-style event table (CSV)"),
    phi: Path = typer.Option(..., "--phi", help="NONMEM .phi table of the same run"),
    card: Path | None = typer.Option(None, "--card"),
    dose_cmt: list[str] = typer.Option([], "--dose-cmt", help="CMT[:RATE]=ROUTE, e.g. 1=oral, 2:-2=oral"),
    level_cmt: list[str] = typer.Option([], "--level-cmt", help="CMT=OBSERVABLE, e.g. 3=metabolite"),
    ignore: list[str] = typer.Option(["s2_sampling"], "--ignore", help="Columns that are not covariates"),
    starts: int = typer.Option(1, min=1, help="Optimiser starts (NONMEM POSTHOC starts once, from ETA 0)"),
    min_excellent: float = typer.Option(0.95, help="Least share of ETAs within 0.001"),
    min_acceptable: float = typer.Option(0.995, help="Least share of ETAs within 0.1"),
    min_ofv: float = typer.Option(0.95, help="Least share of subjects whose OBJ is within --ofv-tolerance"),
    ofv_tolerance: float = typer.Option(0.01, help="OBJ agreement tolerance"),
    out: Path | None = typer.Option(None, "--out", help="Write the per-subject comparison as JSON"),
) -> None:
    """Reproduce a NONMEM POSTHOC run: the agreement table (excellent / acceptable / discordant)."""
    import json

    from interop.workflows.twin import compare_with_nonmem, event_table_mapping, load_model_source

    sbml, model_card = load_model_source(model, get_settings(), card)
    mapping = event_table_mapping(model_card, dose_cmt, level_cmt)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("MAP per subject", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        agreement = compare_with_nonmem(
            sbml,
            model_card,
            data,
            phi,
            mapping=mapping,
            ignore_columns=ignore,
            starts=starts,
            ofv_tolerance=ofv_tolerance,
            progress=tick,
        )
    print_agreement(agreement, f"{model_card.id}: {data.name} vs {phi.name}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(agreement.to_dict(), indent=2))
        console.print(f"comparison written to {out}")
    if not agreement.passes(min_excellent, min_acceptable, min_ofv):
        console.print(
            f"[bold red]below thresholds[/] (excellent >= {min_excellent:.1%}, within 0.1 >= "
            f"{min_acceptable:.1%}, OBJ within {ofv_tolerance:g} >= {min_ofv:.1%})"
        )
        raise typer.Exit(2)


def print_agreement(agreement: object, title: str) -> None:
    from interop.twin.agreement import Agreement

    assert isinstance(agreement, Agreement)
    t = Table(title=f"Agreement with NONMEM, {title} ({agreement.n_subjects} subjects)")
    for col in ("ETA", "n", "excellent (<0.001)", "acceptable (<0.1)", "discordant", "max |diff|"):
        t.add_column(col, justify="right")
    for r in (*agreement.rows, agreement.total):
        t.add_row(
            r.eta,
            str(r.n),
            f"{r.excellent} ({r.share('excellent'):.1%})",
            f"{r.acceptable} ({r.share('acceptable'):.1%})",
            f"{r.discordant} ({r.share('discordant'):.1%})",
            f"{r.max_difference:.2e}",
        )
    console.print(t)
    console.print(
        f"OBJ within {agreement.ofv_tolerance:g}: {agreement.ofv_within}/{agreement.n_subjects} "
        f"(max |diff| {agreement.max_ofv_difference:.3g}; {agreement.better_mode} subject(s) off where "
        "our mode has the lower objective)"
    )


def register_import(import_app: typer.Typer) -> None:
    """``interop import nonmem``: a NONMEM-style event table into patient records (JSON per ID)."""

    @import_app.command("nonmem")
    def import_nonmem(
        data: Path = typer.Argument(..., help="NONMEM-style event table (CSV)"),
        model: str = typer.Option(
            ..., "--model", help=MODEL_HELP + "; its card names drug, routes, analytes"
        ),
        out: Path = typer.Option(..., "--out", help="Folder: records/<patient id>.json and report.json"),
        card: Path | None = typer.Option(None, "--card"),
        dose_cmt: list[str] = typer.Option([], "--dose-cmt", help="CMT[:RATE]=ROUTE, e.g. 2:-2=oral"),
        level_cmt: list[str] = typer.Option([], "--level-cmt", help="CMT=OBSERVABLE"),
        ignore: list[str] = typer.Option(["s2_sampling"], "--ignore", help="Columns that are not covariates"),
    ) -> None:
        """Convert every ID of the table; every row converted or reported with a reason."""
        from converters.nonmem import read_event_table
        from interop.workflows.twin import event_table_mapping, load_model_source

        _, model_card = load_model_source(model, get_settings(), card)
        result = read_event_table(
            data, event_table_mapping(model_card, dose_cmt, level_cmt), ignore=tuple(ignore)
        )
        (out / "records").mkdir(parents=True, exist_ok=True)
        for record in result.records:
            (out / "records" / f"{record.patient.id}.json").write_text(record.model_dump_json(indent=2))
        (out / "report.json").write_text(result.report.to_json())
        t = Table(title=f"{data.name}: {len(result.records)} patient record(s)")
        for col in ("rows", "read", "converted", "rejected", "skipped"):
            t.add_column(col, justify="right")
        for row in result.report.summary_rows():
            t.add_row(*map(str, row))
        console.print(t)
        console.print(f"records in {out / 'records'}, report {out / 'report.json'}")
