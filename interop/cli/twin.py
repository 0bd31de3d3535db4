"""``interop twin fit|forecast|recommend|compare-nonmem``: the clinical pharmacologist's commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from interop.errors import TwinError
from interop.settings import get_settings

if TYPE_CHECKING:
    from interop.twin.recommend import Target

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


def _print_fit(fit: object, card: object, units: dict[str, str] | None = None) -> None:
    from interop.schema import ModelCard
    from interop.twin.display import format_number, format_quantity
    from interop.twin.estimate import MapResult

    assert isinstance(fit, MapResult) and isinstance(card, ModelCard)
    t = Table(
        title=f"MAP estimate, patient {fit.patient_id} ({fit.n_observations} levels; ETAs have no unit)"
    )
    for col in ("ETA", "estimate", "SE", "posterior/prior variance"):
        t.add_column(col, justify="right")
    for name, value in fit.etas.items():
        t.add_row(
            name,
            f"{value:.5f}",
            f"{fit.standard_errors[name]:.4f}",
            format_number(fit.variance_ratio[name], 2),
        )
    console.print(t)
    p = Table(title="Individual parameters")
    p.add_column("parameter")
    p.add_column("value", justify="right")
    for name, value in fit.individual_parameters.items():
        unit = (units or {}).get(name)
        p.add_row(
            name, format_quantity(value, unit) if unit else f"{format_number(value)} (unit not in the model)"
        )
    console.print(p)
    unit_of = {o.id: o.unit for o in card.observables}
    o = Table(title="Levels: observed, a priori (PRED) and a posteriori (IPRED)")
    for col in ("time", "observable", "observed", "PRED", "IPRED"):
        o.add_column(col, justify="right")
    for ob, ip, pp in zip(fit.observations, fit.predictions, fit.population_predictions, strict=False):
        u = unit_of.get(ob.observable, "")
        o.add_row(
            format_quantity(ob.time_h, "h"),
            ob.observable,
            format_quantity(ob.value, u) + (" (BLQ)" if ob.below_lloq else ""),
            format_quantity(pp, u),
            format_quantity(ip, u),
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
    """MAP individualisation: ETAs, SEs, variance ratios, individual parameters; JSON and PNG."""
    from interop.twin.model import parameter_units
    from interop.workflows.twin import fit_patient, load_model_source, read_patient

    sbml, model_card = load_model_source(model, get_settings(), card)
    outcome = fit_patient(
        sbml, model_card, read_patient(patient), _out_dir(out, "fit", patient), starts=starts
    )
    _print_fit(outcome.fit, model_card, parameter_units(sbml, model_card))
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
    continue_regimen: bool = typer.Option(
        False,
        "--continue",
        help="Continued therapy: repeat the last dosing interval and dose past the last dose",
    ),
) -> None:
    """A posteriori forecast with both 90% intervals; JSON, PNG and FHIR Observations."""
    from interop.twin.display import format_number, format_quantity
    from interop.twin.model import parameter_units
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
        continue_regimen=continue_regimen,
    )
    _print_fit(outcome.fit, model_card, parameter_units(sbml, model_card))
    _print_covariates(outcome)
    fc = outcome.forecast
    assert fc is not None
    obs = model_card.observables[0].id
    u = model_card.observables[0].unit
    t = Table(title=f"Forecast of {obs}")
    for col in ("time", "PRED", "IPRED", "90% interval of IPRED", "90% prediction interval (new level)"):
        t.add_column(col, justify="right")
    for i in range(0, len(fc.times_h), max(1, len(fc.times_h) // 12)):
        t.add_row(
            format_quantity(fc.times_h[i], "h"),
            format_quantity(fc.population[obs][i], u),
            format_quantity(fc.individual[obs][i], u),
            f"{format_number(fc.individual_lower[obs][i])}-{format_quantity(fc.individual_upper[obs][i], u)}",
            f"{format_number(fc.observation_lower[obs][i])}-"
            + format_quantity(fc.observation_upper[obs][i], u),
        )
    console.print(t)
    console.print(
        "IPRED interval: parameter uncertainty only; prediction interval: where a level measured then "
        "should fall (adds the residual error)."
        + (" Continued therapy: the current regimen repeats past the last dose." if continue_regimen else "")
    )
    console.print("Files written:")
    _files(outcome)


TARGET_HELP = (
    "Target, repeatable (all must be met): KIND:LOW-HIGH, KIND:>=LOW or KIND:<=HIGH with KIND trough, peak, "
    "auc (AUC24) or time_above; e.g. --target auc:400-600 --target trough:<=20. "
    "A bare KIND takes --low/--high."
)


def _targets(specs: list[str], low: float | None, high: float | None, **extra: object) -> list[Target]:
    """Targets from ``--target`` specifications (see TARGET_HELP)."""
    import math

    out: list[Target] = []
    for spec in specs:
        kind, sep, rng = spec.partition(":")
        kind = kind.strip()
        if kind not in ("trough", "peak", "auc", "time_above"):
            raise TwinError(f"unknown target {kind!r} (trough, peak, auc, time_above)", field="target")
        try:
            if not sep:
                if low is None or high is None:
                    raise ValueError(f"target {kind}: give a range (KIND:LOW-HIGH) or --low and --high")
                lo, hi = low, high
            elif rng.startswith(">="):
                lo, hi = float(rng[2:]), math.inf
            elif rng.startswith("<="):
                lo, hi = 0.0, float(rng[2:])
            else:
                a, dash, b = rng.partition("-")
                if not dash:
                    raise ValueError(f"not a range LOW-HIGH: {rng!r}")
                lo, hi = float(a), float(b)
            from interop.twin.recommend import Target

            out.append(Target(kind, lo, hi, **extra))  # type: ignore[arg-type]
        except ValueError as exc:
            raise TwinError(f"--target {spec}: {exc}", field="target") from exc
    if not out:
        raise TwinError("give at least one --target", field="target")
    return out


def _start_at(start_at: str | None) -> object:
    """``--start-at`` as an aware date-time (None when not given)."""
    if start_at is None:
        return None
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(start_at)
    except ValueError as exc:
        raise TwinError(f"--start-at: not an ISO date-time: {start_at!r}", field="start-at") from exc
    if when.tzinfo is None:
        raise TwinError("--start-at needs a time zone, e.g. 2024-03-01T08:00+01:00", field="start-at")
    return when


def _print_recommendation(rec: object) -> None:
    from interop.twin.display import format_number, format_quantity
    from interop.twin.recommend import Recommendation

    assert isinstance(rec, Recommendation)
    cu, au = rec.unit, rec.amount_unit
    t = Table(title="Regimens, best first: " + " and ".join(x.describe(cu) for x in rec.targets))
    for col in ("loading", "dose", "every", "over", "first dose"):
        t.add_column(col, justify="right")
    for x in rec.targets:
        t.add_column(f"{x.name} (90% range)", justify="right")
    for col in ("trough", "AUC24", "meets all", "PTA (all)"):
        t.add_column(col, justify="right")
    for c in rec.candidates[:15]:
        cells = [
            "-" if c.loading_amount is None else format_quantity(c.loading_amount, au),
            format_quantity(c.amount, au),
            format_quantity(c.interval_h, "h"),
            "-" if c.duration_h is None else format_quantity(c.duration_h, "h"),
            f"hour {format_number(c.start_h)}",
        ]
        for x, e in zip(rec.targets, c.exposures, strict=True):
            u = x.unit(cu)
            cells.append(
                f"{format_quantity(e.value, u)} ({format_number(e.p05)}-{format_quantity(e.p95, u)})"
            )
        cells += [
            format_quantity(c.summary["trough"], cu),
            format_quantity(c.summary["auc24"], x.unit(cu) if x.kind == "auc" else _auc(cu)),
            "yes" if c.in_range else "no",
            f"{c.probability:.0%}",
        ]
        t.add_row(*cells)
    console.print(t)
    for x in rec.targets:
        console.print(f"{x.name}: measured as {x.label()}")
    for note in rec.notes:
        console.print(f"[bold yellow]{note}[/]")
    console.print(f"[bold]Recommended: {rec.summary_line()}[/]")


def _auc(unit: str) -> str:
    from interop.twin.display import auc_unit

    return auc_unit(unit)


@twin_app.command("recommend")
def recommend_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    patient: Path = typer.Option(..., "--patient", help="PatientRecord JSON"),
    target: list[str] = typer.Option(..., "--target", help=TARGET_HELP),
    low: float | None = typer.Option(None, "--low", help="Lower end of a bare --target"),
    high: float | None = typer.Option(None, "--high", help="Upper end of a bare --target"),
    threshold: float | None = typer.Option(None, "--threshold", help="Concentration for time_above"),
    auc_window: float | None = typer.Option(
        None, "--auc-window", help="AUC24 from this hour after the first new dose (default: steady state)"
    ),
    amounts: str = typer.Option(..., "--amounts", help="Allowed doses, comma-separated (card amount unit)"),
    intervals: str = typer.Option(..., "--intervals", help="Allowed dosing intervals in h, comma-separated"),
    durations: str | None = typer.Option(None, "--durations", help="Allowed infusion durations in h"),
    loading: str | None = typer.Option(
        None, "--loading", help="Loading doses to try (first dose), comma-separated"
    ),
    route: str | None = typer.Option(None, "--route", help="Route (default: that of the last dose)"),
    n_doses: int = typer.Option(8, "--n-doses", min=1, help="Doses in the proposed regimen"),
    start: float | None = typer.Option(
        None, "--start", help="Hour of the first proposed dose (from the origin)"
    ),
    start_at: str | None = typer.Option(
        None, "--start-at", help="Date-time of the first proposed dose (ISO)"
    ),
    hold: bool = typer.Option(
        False, "--hold", help="Wait until the predicted level is below the trough ceiling"
    ),
    observable: str | None = typer.Option(None, "--observable"),
    card: Path | None = typer.Option(None, "--card"),
    out: Path | None = typer.Option(None, "--out"),
    draws: int = typer.Option(200, min=10),
    starts: int = typer.Option(3, min=1),
) -> None:
    """The regimen of the allowed grid that best meets every target, with the probability of meeting
    them all; JSON, PNG and FHIR (MedicationRequest proposal + predicted Observations)."""
    from interop.twin.recommend import RegimenOptions
    from interop.workflows.twin import load_model_source, read_patient, recommend_for_patient

    targets = _targets(
        target, low, high, observable=observable, threshold=threshold, window_start_h=auc_window
    )
    try:
        opts = RegimenOptions(
            _floats(amounts, "amounts"),
            _floats(intervals, "intervals"),
            _floats(durations, "durations") if durations else (None,),
            route,  # type: ignore[arg-type]
            start,
            n_doses,
            _floats(loading, "loading") if loading else (None,),
            hold,
        )
    except ValueError as exc:
        raise TwinError(str(exc), field="regimen") from exc
    sbml, model_card = load_model_source(model, get_settings(), card)
    outcome = recommend_for_patient(
        sbml,
        model_card,
        read_patient(patient),
        targets,
        opts,
        _out_dir(out, "recommend", patient),
        n_draws=draws,
        starts=starts,
        start_at=_start_at(start_at),  # type: ignore[arg-type]
    )
    assert outcome.recommendation is not None
    _print_covariates(outcome)
    _print_recommendation(outcome.recommendation)
    console.print("Files written:")
    _files(outcome)


@twin_app.command("plan")
def plan_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    patient: Path = typer.Option(..., "--patient", help="PatientRecord JSON"),
    amount: float = typer.Option(..., "--amount", help="Maintenance dose (card amount unit)"),
    interval: float = typer.Option(..., "--interval", help="Dosing interval (h)"),
    n_doses: int = typer.Option(..., "--n-doses", min=1),
    start: float | None = typer.Option(None, "--start", help="Hour of the first dose (from the origin)"),
    start_at: str | None = typer.Option(None, "--start-at", help="Date-time of the first dose (ISO)"),
    duration: float | None = typer.Option(None, "--duration", help="Infusion duration (h)"),
    loading: float | None = typer.Option(None, "--loading", help="Loading dose (the first dose)"),
    target: list[str] = typer.Option([], "--target", help=TARGET_HELP),
    route: str | None = typer.Option(None, "--route"),
    hold: bool = typer.Option(
        False, "--hold", help="Wait until the predicted level is below the trough ceiling"
    ),
    card: Path | None = typer.Option(None, "--card"),
    out: Path | None = typer.Option(None, "--out"),
    draws: int = typer.Option(200, min=10),
    starts: int = typer.Option(3, min=1),
) -> None:
    """Forecast a planned regimen typed in by the user: its trough, peak, AUC24 and, with targets,
    the probability of meeting them all; JSON, PNG and FHIR like ``recommend``."""
    from interop.twin.recommend import RegimenOptions
    from interop.workflows.twin import load_model_source, read_patient, recommend_for_patient

    targets = _targets(target, None, None) if target else []
    try:
        opts = RegimenOptions(
            (amount,),
            (interval,),
            (duration,),
            route,  # type: ignore[arg-type]
            start,
            n_doses,
            (loading,),
            hold,
        )
    except ValueError as exc:
        raise TwinError(str(exc), field="regimen") from exc
    sbml, model_card = load_model_source(model, get_settings(), card)
    outcome = recommend_for_patient(
        sbml,
        model_card,
        read_patient(patient),
        targets,
        opts,  # type: ignore[arg-type]
        _out_dir(out, "plan", patient),
        n_draws=draws,
        starts=starts,
        start_at=_start_at(start_at),  # type: ignore[arg-type]
    )
    assert outcome.recommendation is not None
    _print_recommendation(outcome.recommendation)
    console.print("Files written:")
    _files(outcome)


@twin_app.command("compare-nonmem")
def compare_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    data: Path = typer.Option(..., "--data", help="NONMEM-style event table (CSV)"),
    phi: Path = typer.Option(..., "--phi", help="NONMEM .phi table of the same run"),
    card: Path | None = typer.Option(None, "--card"),
    dose_cmt: list[str] = typer.Option(
        [], "--dose-cmt", help="CMT[:RATE]=ROUTE[@ADM], e.g. 1=oral, 2:-2=oral, 3=iv-bolus@3"
    ),
    level_cmt: list[str] = typer.Option([], "--level-cmt", help="CMT=OBSERVABLE, e.g. 3=metabolite"),
    ignore: list[str] = typer.Option(["s2_sampling"], "--ignore", help="Columns that are not covariates"),
    starts: int = typer.Option(1, min=1, help="Optimiser starts (NONMEM POSTHOC starts once, from ETA 0)"),
    min_excellent: float = typer.Option(0.95, help="Least share of ETAs within 0.001"),
    min_acceptable: float = typer.Option(0.995, help="Least share of ETAs within 0.1"),
    min_ofv: float = typer.Option(0.95, help="Least share of subjects whose OBJ is within --ofv-tolerance"),
    ofv_tolerance: float = typer.Option(0.01, help="OBJ agreement tolerance"),
    out: Path | None = typer.Option(None, "--out", help="Write the per-subject comparison as JSON"),
    ids: str | None = typer.Option(None, "--ids", help="IDs to compare, e.g. 101-500,7 (default: all)"),
    exclude: str | None = typer.Option(None, "--exclude", help="IDs to leave out, e.g. 120,130-140"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes"),
) -> None:
    """Reproduce a NONMEM POSTHOC run: the agreement table (excellent / acceptable / discordant).
    A subject that cannot be fitted is listed with its reason; the exit status follows the thresholds
    (failed subjects count as disagreeing)."""
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
            ids=ids,
            exclude=exclude,
            jobs=jobs,
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
    t = Table(
        title=f"Agreement with NONMEM, {title} ({agreement.n_subjects} subjects fitted, "
        f"{len(agreement.failed)} failed)"
    )
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
    console.print(
        f"objective at our mode higher than at NONMEM's ETAs by > {agreement.ofv_tolerance:g}: "
        f"{agreement.worse_mode} subject(s); not converged: "
        f"{sum(not s.converged for s in agreement.subjects)}"
    )
    if agreement.better_mode:
        same = agreement.same_mode()
        console.print(
            f"better modes found (lower objective than at NONMEM's ETAs): "
            f"{', '.join(b.subject for b in agreement.better_subjects)}; on the other subjects "
            f"{same.share_excellent:.1%} of ETAs within 0.001 and {same.ofv_within}/{same.n_subjects} OBJ "
            f"within {agreement.ofv_tolerance:g} (the thresholds apply to these)"
        )
    for note in agreement.input_notes:
        console.print(f"[yellow]event table: {note}[/]")
    if agreement.failed:
        f = Table(title="Subjects that could not be fitted (counted as disagreeing)")
        f.add_column("ID")
        f.add_column("reason")
        for s in agreement.failed:
            f.add_row(s.subject, s.reason)
        console.print(f)


def register_import(import_app: typer.Typer) -> None:
    """``interop import nonmem``: a NONMEM-style event table into patient records (JSON per ID)."""
    from interop.cli.imports import KEY_FILE_OPTION, SHOW_PATHS_OPTION

    @import_app.command("nonmem")
    def import_nonmem(
        data: Path = typer.Argument(..., help="NONMEM-style event table (CSV)"),
        model: str = typer.Option(
            ..., "--model", help=MODEL_HELP + "; its card names drug, routes, analytes"
        ),
        out: Path = typer.Option(..., "--out", help="Folder: records/<patient id>.json and report.json"),
        card: Path | None = typer.Option(None, "--card"),
        dose_cmt: list[str] = typer.Option([], "--dose-cmt", help="CMT[:RATE]=ROUTE[@ADM], e.g. 2:-2=oral"),
        level_cmt: list[str] = typer.Option([], "--level-cmt", help="CMT=OBSERVABLE"),
        ignore: list[str] = typer.Option(["s2_sampling"], "--ignore", help="Columns that are not covariates"),
        key_file: Path | None = KEY_FILE_OPTION,
        show_paths: bool = SHOW_PATHS_OPTION,
    ) -> None:
        """Convert every ID of the table; every row converted or reported with a reason. Subject ids
        become keyed pseudonyms and the table is named by its keyed token, as in every importer."""
        from converters.nonmem import read_event_table
        from converters.report import write_report
        from interop.cli.imports import (
            fail_if_all_rejected,
            hider,
            print_report,
            require_key,
            shown,
            terminate_cleanly,
        )
        from interop.schema.record_store import RecordStore
        from interop.workflows.twin import event_table_mapping, load_model_source

        key = require_key(key_file)
        _, model_card = load_model_source(model, get_settings(), card)
        result = read_event_table(
            data, event_table_mapping(model_card, dose_cmt, level_cmt), ignore=tuple(ignore), key=key
        )
        store = RecordStore(out)
        with terminate_cleanly():
            for record in result.records:
                store.merge(record)  # merged with what other imports wrote, never overwritten
            report_json, _ = write_report(result.report, out, hide=hider(key))
        name = data.name if show_paths else hider(key)(str(data))
        print_report(
            console,
            result.report,
            f"{name}: {len(result.records)} patient record(s)",
            shown if show_paths else hider(key),
        )
        console.print(f"records in {store.directory}, report {report_json}")
        fail_if_all_rejected(result.report, report_json)
