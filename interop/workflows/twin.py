"""Twin use cases: load a model (registry id or file), bind a patient, fit, forecast, recommend,
and compare the MAP estimator with a NONMEM run (event table + ``.phi``).

This module composes the registry, the NONMEM converter and the twin runtime; the CLI and the
HTTP API call it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.nonmem import DoseCompartment, EventTableMapping, LevelCompartment, read_event_table
from converters.nonmem.phi import PhiRow, read_phi
from interop.errors import InteropError, TwinError
from interop.schema import ModelCard, PatientRecord, parse_json
from interop.schema.model_id import parse_model_ref
from interop.settings import Settings
from interop.twin import bind_patient, estimate_map, load_model
from interop.twin.agreement import Agreement, FailedSubject, SubjectComparison, summarise_agreement
from interop.twin.binding import Twin
from interop.twin.covariates import describe_covariates
from interop.twin.estimate import MapResult, make_predictor
from interop.twin.fhir_export import forecast_bundle, recommendation_bundle
from interop.twin.forecast import Forecast, forecast
from interop.twin.model import CompiledModel
from interop.twin.objective import objective_value, residual_terms
from interop.twin.occasions import nonmem_eta_order, occasion_omega
from interop.twin.plot import plot_concentrations
from interop.twin.recommend import Recommendation, RegimenOptions, Target, recommend_dose
from interop.twin.recommend import continue_regimen as repeat_regimen
from interop.workflows.ml import resolve_ml_links

__all__ = [
    "FitOutcome",
    "compare_subject",
    "compare_with_nonmem",
    "event_table_mapping",
    "fit_patient",
    "forecast_patient",
    "load_model_source",
    "parse_model_ref",
    "read_patient",
    "recommend_for_patient",
    "select_ids",
]

log = logging.getLogger(__name__)


def load_model_source(ref: str, settings: Settings, card_path: Path | None = None) -> tuple[str, ModelCard]:
    """SBML text and card: a path to an SBML file (card from ``card_path`` or ``<stem>.card.json``
    beside it), else a registry reference ``ID[@VERSION]``; ML models a hybrid card names are
    loaded from the registry into the card."""
    path = Path(ref)
    if path.suffix.lower() in {".xml", ".sbml"} or path.exists():
        if not path.is_file():
            raise TwinError(f"no SBML file {path}", source=str(path))
        card_file = card_path or path.with_name(path.stem + ".card.json")
        if not card_file.is_file():
            raise TwinError(f"no model card for {path.name}: pass --card", source=str(card_file))
        card = parse_json(ModelCard, card_file.read_text(), source=str(card_file))
        return path.read_text(), resolve_ml_links(card, settings)
    model_id, version = parse_model_ref(ref)
    from interop.workflows.registry_session import registry_session

    with registry_session(settings) as registry:
        stored = registry.get(model_id, version)
        if card_path is not None:
            card = parse_json(ModelCard, card_path.read_text(), source=str(card_path))
        else:
            card = stored.card
        return stored.sbml, resolve_ml_links(card, registry)


def read_patient(path: Path) -> PatientRecord:
    """A ``PatientRecord`` from its JSON file."""
    path = Path(path)
    if not path.is_file():
        raise TwinError(f"no patient file {path}", source=str(path))
    return parse_json(PatientRecord, path.read_text(), source=str(path))


def _cmt_spec(spec: str) -> tuple[int, int | None, str, int | None]:
    """``CMT[:RATE]=NAME[@ADM]`` -> (cmt, rate code, name, administration id)."""
    m = re.match(r"^\s*(\d+)(?::(-[12]))?\s*=\s*([A-Za-z0-9_-]+)(?:@(\d+))?\s*$", spec)
    if not m:
        raise TwinError(f"not a compartment mapping CMT[:RATE]=NAME[@ADM]: {spec!r}", field="cmt")
    return int(m[1]), int(m[2]) if m[2] else None, m[3], int(m[4]) if m[4] else None


def event_table_mapping(
    card: ModelCard, dose_cmts: Sequence[str] = (), level_cmts: Sequence[str] = ()
) -> EventTableMapping:
    """The mapping of CMT numbers for ``card``'s model.

    Without options, the card's ``compartments`` (set by NONMEM import), else ADVAN-style
    defaults: CMT 1 takes the first dosing route; an input with a modelled duration is CMT 2 with
    RATE -2; an input with an administration id ``adm`` (a route dosed in several places) is CMT
    ``adm``, the dataset's number; observations in CMT 2, 3, ... are the card's observables in
    order. Covariate columns named like the card's covariates map to them.
    """
    doses: list[DoseCompartment] = []
    cmts = card.compartments  # the source run's own CMT numbers (NONMEM import), when known
    if cmts is not None and not dose_cmts:
        dose_cmts = [
            f"{d.cmt}{'' if d.rate_code is None else f':{d.rate_code}'}={d.route}"
            + ("" if d.adm is None else f"@{d.adm}")
            for d in cmts.doses
        ]
    item = None
    if cmts is not None and not level_cmts and cmts.observation_item is None:
        level_cmts = [f"{lv.cmt}={lv.observable}" for lv in cmts.levels]
    if dose_cmts:
        for spec in dose_cmts:
            cmt, rate, route, adm = _cmt_spec(spec)
            if not card.dosing_for(route, adm):
                which = f"{route!r}" + ("" if adm is None else f" administration {adm}")
                raise TwinError(f"model {card.id} takes no {which} dose", field="dose-cmt")
            doses.append(DoseCompartment(cmt, route, rate, adm))  # type: ignore[arg-type]
    else:
        by_adm: dict[int, str] = {}
        for inp in card.dosing:  # the first route of each administration id (a bolus before an infusion)
            if inp.adm:
                by_adm.setdefault(inp.adm, inp.route)
        if 1 not in by_adm:
            doses.append(DoseCompartment(1, card.dosing[0].route))
        doses += [DoseCompartment(adm, route, None, adm) for adm, route in by_adm.items()]  # type: ignore[arg-type]
        for inp in card.dosing:
            if inp.duration_parameter:
                doses.append(DoseCompartment(2, inp.route, -2, inp.adm))
    levels: list[LevelCompartment] = []
    by_id = {o.id: o for o in card.observables}
    if cmts is not None and not level_cmts and cmts.observation_item is not None:
        item = cmts.observation_item  # rows told apart by an item's value (NONMEM DVID), CMT or not
        for lv in cmts.levels:
            o = next(o for o in card.observables if o.id == lv.observable)
            levels.append(LevelCompartment(lv.cmt, o.analyte, o.unit, lv.value))
    elif level_cmts:
        for spec in level_cmts:
            cmt, _, name, _ = _cmt_spec(spec)
            if name not in by_id:
                raise TwinError(f"model {card.id} has no observable {name!r}", field="level-cmt")
            levels.append(LevelCompartment(cmt, by_id[name].analyte, by_id[name].unit))
    else:
        levels = [LevelCompartment(2 + i, o.analyte, o.unit) for i, o in enumerate(card.observables)]
    covs = {
        c.name: (c.source.measurement, c.source.unit or "1")
        for c in card.covariates
        if c.source.measurement is not None
    }
    return EventTableMapping(
        drug=card.drugs[0],
        doses=tuple(doses),
        levels=tuple(levels),
        amount_unit=card.dosing[0].amount_unit,
        covariates=covs,
        observation_item=item,
    )  # type: ignore[arg-type]


def select_ids(spec: str | None) -> set[str] | None:
    """``101-500,7,9`` -> the set of IDs as the table writes them (None: every ID)."""
    if spec is None or not spec.strip():
        return None
    out: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = int(m[1]), int(m[2])
            if hi < lo:
                raise TwinError(f"empty ID range {part!r}", field="ids")
            out.update(str(i) for i in range(lo, hi + 1))
        elif part:
            out.add(part)
    return out


def _reference_etas(card: ModelCard, n_reference: int, source: str) -> list[str]:
    """The card's ETA names in NONMEM's order: between-subject first, then occasion by occasion."""
    names = nonmem_eta_order(card)
    if n_reference == len(names):
        return names
    if n_reference == len(card.random_effects.etas):
        return list(card.random_effects.etas)
    raise TwinError(
        f"the .phi file has {n_reference} ETAs, model {card.id} has {len(card.random_effects.etas)} "
        f"between-subject and {len(names) - len(card.random_effects.etas)} occasion ETAs",
        source=source,
    )


def compare_subject(
    model: CompiledModel, record: PatientRecord, sid: str, reference: PhiRow | None, starts: int
) -> SubjectComparison | FailedSubject:
    """One subject beside NONMEM: never raises for the subject's own trouble, records why instead."""
    card = model.card
    if reference is None:
        return FailedSubject(sid, "no row in the .phi file")
    try:
        names = _reference_etas(card, len(reference.etas), ".phi")
        twin = bind_patient(model, record)
        fit = estimate_map(twin, starts=starts)
        predict, _ = make_predictor(twin, twin.observations)
        terms = residual_terms(card, twin.observations)
        all_names = list(fit.etas)
        ref_eta = np.zeros(len(all_names))
        for name, value in zip(names, reference.etas, strict=True):
            ref_eta[all_names.index(name)] = value
        omega_inv = np.linalg.inv(occasion_omega(card))
        with np.errstate(all="ignore"):
            at_ref = objective_value(terms, predict(ref_eta), ref_eta, omega_inv)
        return SubjectComparison(
            subject=sid,
            etas=tuple(fit.etas[n] for n in names),
            reference_etas=tuple(reference.etas),
            ofv=fit.ofv,
            reference_ofv=reference.obj,
            objective=fit.objective,
            objective_at_reference=float(at_ref),
            converged=fit.converged,
        )
    except (InteropError, ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
        log.warning("subject %s failed: %s", sid, exc)
        return FailedSubject(sid, f"{type(exc).__name__}: {exc}")


_WORKER: dict[str, CompiledModel] = {}


def _init_worker(sbml: str, card_json: str) -> None:
    _WORKER["model"] = load_model(sbml, ModelCard.model_validate_json(card_json))


def _compare_in_worker(
    args: tuple[str, str, PhiRow | None, int],
) -> SubjectComparison | FailedSubject:
    record_json, sid, reference, starts = args
    return compare_subject(
        _WORKER["model"], PatientRecord.model_validate_json(record_json), sid, reference, starts
    )


def compare_with_nonmem(
    sbml: str,
    card: ModelCard,
    data: Path,
    phi: Path,
    *,
    mapping: EventTableMapping | None = None,
    ignore_columns: Sequence[str] = ("s2_sampling",),
    starts: int = 3,
    ofv_tolerance: float = 0.01,
    progress: Callable[[int, int], None] | None = None,
    ids: str | None = None,
    exclude: str | None = None,
    jobs: int = 1,
) -> Agreement:
    """MAP estimates for every ID of ``data`` (or those of ``ids`` minus ``exclude``, e.g.
    ``101-500``) beside NONMEM's ``.phi`` answers, in ``jobs`` processes. A subject that fails is
    recorded with its reason and the run goes on."""
    model = load_model(sbml, card)
    mapping = mapping or event_table_mapping(card)
    result = read_event_table(data, mapping, ignore=tuple(ignore_columns))
    reference = read_phi(phi)
    if reference:
        _reference_etas(card, len(next(iter(reference.values())).etas), str(phi))  # the same for all rows
    wanted, unwanted = select_ids(ids), select_ids(exclude) or set()
    chosen = []
    for record in result.records:
        sid = record.patient.id.removeprefix(mapping.id_prefix)
        if (wanted is None or sid in wanted) and sid not in unwanted:
            chosen.append((record, sid))
    outcomes: list[SubjectComparison | FailedSubject] = []
    if jobs > 1 and len(chosen) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # roadrunner state must not be forked
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(sbml, card.model_dump_json()),
        ) as pool:
            tasks = [(r.model_dump_json(), sid, reference.get(sid), starts) for r, sid in chosen]
            for k, outcome in enumerate(pool.map(_compare_in_worker, tasks, chunksize=4)):
                outcomes.append(outcome)
                if progress:
                    progress(k + 1, len(chosen))
    else:
        for k, (record, sid) in enumerate(chosen):
            outcomes.append(compare_subject(model, record, sid, reference.get(sid), starts))
            if progress:
                progress(k + 1, len(chosen))
    asked = set(reference) if wanted is None else set(reference) & wanted
    missing = sorted(asked - unwanted - {sid for _, sid in chosen})
    if missing:
        log.warning("%d .phi subject(s) have no rows in the event table: %s", len(missing), missing[:5])
    subjects = [o for o in outcomes if isinstance(o, SubjectComparison)]
    failed = [o for o in outcomes if isinstance(o, FailedSubject)]
    n_ref = len(next(iter(reference.values())).etas) if reference else len(card.random_effects.etas)
    names = _reference_etas(card, n_ref, str(phi))
    notes = tuple(
        f"{n} {kind} row(s) {outcome}: {reason}"
        for (kind, outcome, reason), n in result.report.reasons().most_common()
        if outcome in ("rejected", "skipped") and kind != "other-event"
    )
    return dataclasses.replace(summarise_agreement(names, subjects, ofv_tolerance, failed), input_notes=notes)


@dataclass(frozen=True)
class FitOutcome:
    twin: Twin
    fit: MapResult
    forecast: Forecast | None
    recommendation: Recommendation | None
    json_path: Path | None
    plot_path: Path | None
    fhir_path: Path | None


def _grid(twin: Twin, until_h: float | None, extra: float = 24.0) -> np.ndarray:
    last = max([*(d.time_h for d in twin.doses), *(o.time_h for o in twin.observations), 0.0])
    end = until_h if until_h is not None else last + extra
    return np.linspace(0.0, max(end, 1.0), 600)


def _write_json(path: Path, payload: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path


def _header(twin: Twin, kind: str) -> dict[str, object]:
    return {
        "kind": kind,
        "model": f"{twin.card.id}@{twin.card.version}",
        "model_sha256": twin.model.sha256,
        "patient_id": twin.patient_id,
        "origin": twin.origin.isoformat(),
        "notes": list(twin.notes),
        **describe_covariates(twin),
    }


def fit_patient(
    sbml: str, card: ModelCard, record: PatientRecord, out_dir: Path | None = None, *, starts: int = 3
) -> FitOutcome:
    """MAP fit of ``record``; with ``out_dir``, a JSON result and a PNG plot."""
    twin = bind_patient(load_model(sbml, card), record)
    if not twin.observations:
        raise TwinError(
            f"patient {twin.patient_id} has no drug level for model {card.id}",
            source=twin.patient_id,
            field="measurements",
        )
    fit = estimate_map(twin, starts=starts)
    json_path = plot_path = None
    if out_dir is not None:
        grid = _grid(twin, None)
        from interop.twin import simulate

        pop = simulate(twin, grid)
        ind = simulate(twin, grid, fit.etas)
        for k, obs in enumerate(card.observables):  # fit.png, then fit-<observable>.png for the others
            path = plot_concentrations(
                twin,
                grid,
                {"a priori (population)": pop.values[obs.id], "a posteriori (MAP)": ind.values[obs.id]},
                out_dir / ("fit.png" if k == 0 else f"fit-{obs.id}.png"),
                observable=obs.id,
                title=f"{card.title}\nMAP fit, patient {twin.patient_id}",
            )
            plot_path = plot_path or path
        json_path = _write_json(out_dir / "fit.json", {**_header(twin, "fit"), "fit": fit.to_dict()})
    return FitOutcome(twin, fit, None, None, json_path, plot_path, None)


def forecast_patient(
    sbml: str,
    card: ModelCard,
    record: PatientRecord,
    out_dir: Path | None = None,
    *,
    until_h: float | None = None,
    n_draws: int = 500,
    starts: int = 3,
    target: tuple[float, float] | None = None,
    continue_regimen: bool = False,
) -> FitOutcome:
    """Fit, then forecast with both 90% intervals (individual prediction, new measured level);
    ``continue_regimen`` repeats the current regimen past the last recorded dose. Writes JSON, PNG
    and a FHIR bundle of predictions."""
    outcome = fit_patient(sbml, card, record, None, starts=starts)
    twin, fit = outcome.twin, outcome.fit
    grid = _grid(twin, until_h, 48.0)
    if continue_regimen:
        extended, assumed = repeat_regimen(twin, float(grid[-1]))
        twin = dataclasses.replace(extended, notes=(*twin.notes, assumed))
    fc = forecast(twin, fit, grid, n_draws=n_draws)
    json_path = plot_path = fhir_path = None
    if out_dir is not None:
        for k, obs in enumerate(card.observables):
            path = plot_concentrations(
                twin,
                grid,
                {"a priori (population)": fc.population[obs.id], "a posteriori (MAP)": fc.individual[obs.id]},
                out_dir / ("forecast.png" if k == 0 else f"forecast-{obs.id}.png"),
                observable=obs.id,
                band=(fc.lower[obs.id], fc.upper[obs.id]),
                band_label=f"{fc.level:.0%} prediction interval (new level, with residual error)",
                target=target if k == 0 else None,
                title=f"{card.title}\nforecast, patient {twin.patient_id}",
            )
            plot_path = plot_path or path
        json_path = _write_json(
            out_dir / "forecast.json",
            {**_header(twin, "forecast"), "fit": fit.to_dict(), "forecast": fc.to_dict()},
        )
        fhir_path = out_dir / "forecast.fhir.json"
        fhir_path.write_text(
            forecast_bundle(twin, fc, step=max(1, len(grid) // 60)).model_dump_json(indent=2)
        )
    return FitOutcome(twin, fit, fc, None, json_path, plot_path, fhir_path)


def recommend_for_patient(
    sbml: str,
    card: ModelCard,
    record: PatientRecord,
    target: Target | Sequence[Target],
    options: RegimenOptions,
    out_dir: Path | None = None,
    *,
    n_draws: int = 200,
    starts: int = 3,
    start_at: dt.datetime | None = None,
) -> FitOutcome:
    """Fit, then the best regimen for every target (or the one regimen of ``options``, when it allows a
    single one: a planned regimen); ``start_at`` gives the first new dose as a date-time. Writes JSON,
    PNG and a FHIR bundle (MedicationRequest proposal + predicted-level Observations)."""
    outcome = fit_patient(sbml, card, record, None, starts=starts)
    twin, fit = outcome.twin, outcome.fit
    if start_at is not None:
        options = dataclasses.replace(options, start_h=twin.hours(start_at))
    targets = [target] if isinstance(target, Target) else list(target)
    try:
        if not targets:
            targets = [Target("trough", 0.0, math.inf)]  # a planned regimen: report, do not judge
        if options.start_h is not None and options.start_h < 0:
            raise ValueError("the first new dose cannot come before the record's first event")
        rec = recommend_dose(twin, fit, targets, options, n_draws=n_draws)
    except ValueError as exc:
        raise TwinError(str(exc), field="target") from exc
    end = rec.start_h + rec.n_doses * rec.best.interval_h
    grid = np.linspace(0.0, end, 800)
    fc = forecast(rec.twin, fit, grid, n_draws=n_draws)
    json_path = plot_path = fhir_path = None
    if out_dir is not None:
        obs_id = rec.observable
        conc = [t for t in rec.targets if t.kind in ("trough", "peak")]
        band = (conc[0].low, min(conc[0].high, float(np.max(fc.upper[obs_id])) * 1.2)) if conc else None
        plot_path = plot_concentrations(
            rec.twin,
            grid,
            {"a posteriori, recommended regimen": fc.individual[obs_id]},
            out_dir / "recommendation.png",
            observable=obs_id,
            band=(fc.lower[obs_id], fc.upper[obs_id]),
            band_label=f"{fc.level:.0%} prediction interval (new level, with residual error)",
            target=band,
            title=f"{card.title}\nrecommended: {rec.summary_line().split(':')[0]}, patient {twin.patient_id}",
        )
        json_path = _write_json(
            out_dir / "recommendation.json",
            {
                **_header(twin, "recommendation"),
                "fit": fit.to_dict(),
                "recommendation": {**rec.to_dict(), "summary": rec.summary_line()},
                "forecast": fc.to_dict(),
            },
        )
        fhir_path = out_dir / "recommendation.fhir.json"
        fhir_path.write_text(
            recommendation_bundle(rec, fc, step=max(1, len(grid) // 80)).model_dump_json(indent=2)
        )
    return FitOutcome(twin, fit, fc, rec, json_path, plot_path, fhir_path)


def describe_error(exc: InteropError) -> str:
    return str(exc)
