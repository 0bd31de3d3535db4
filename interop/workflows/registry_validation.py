"""The registry's simulate and reproduce stages, done by the twin runtime (composition root).

``registry`` may not import ``interop.twin``; it takes a ``simulate_check`` and this module
supplies it. With a card: compile through the card (``load_model``), simulate the first
reference regimen (or one unit dose on the card's first route) over the reference time span,
check the predictions are finite, then ``check_reference_outputs`` within each output's rtol.
Without a card: libRoadRunner loads the SBML and simulates 0..100 model time units.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import roadrunner

from interop.errors import InteropError, roadrunner_errors
from interop.schema import ModelCard, ReferenceDose
from interop.settings import Settings
from interop.twin import bind_regimen, check_reference_outputs, load_model, simulate
from registry import Issue, Principal, Registry, StageResult, ValidationReport, open_registry
from registry.auth import LOCAL
from registry.validation import Status

__all__ = ["open_validating_registry", "twin_simulate_check", "validate_version"]

NO_CARD_SPAN = 100.0


def _simulate_without_card(sbml: str) -> StageResult:
    t0 = time.perf_counter()
    try:
        with roadrunner_errors(source="simulate"):
            r = roadrunner.RoadRunner(sbml)
            res = r.simulate(0, NO_CARD_SPAN, 101)
    except InteropError as exc:
        return StageResult(
            "simulate", "failed", (Issue("error", exc.message, "roadrunner"),), time.perf_counter() - t0
        )
    values = np.asarray(res)
    if not np.all(np.isfinite(values)):
        return StageResult(
            "simulate",
            "failed",
            (Issue("error", "non-finite values in the simulation"),),
            time.perf_counter() - t0,
        )
    return StageResult(
        "simulate",
        "passed",
        (
            Issue(
                "info",
                f"simulated 0..{NO_CARD_SPAN:g} (model time units) without a card: "
                f"{values.shape[1] - 1} variables",
            ),
        ),
        time.perf_counter() - t0,
    )


def twin_simulate_check(sbml: str, card: ModelCard | None) -> list[StageResult]:
    """The simulate and reproduce stages for ``(sbml, card)``."""
    if card is None:
        sim = _simulate_without_card(sbml)
        return [
            sim,
            StageResult("reproduce", "skipped", (Issue("info", "no card, so no reference outputs"),)),
        ]
    t0 = time.perf_counter()
    unvalued: list[str] = []
    try:
        model = load_model(sbml, card)
        if card.reference_outputs:
            ref = card.reference_outputs[0]
            doses, covs = ref.doses, ref.covariates
            end = max((max(r.times_h) for r in card.reference_outputs if r.times_h), default=24.0)
        else:
            d = card.dosing[0]
            duration = 1.0 if d.route == "iv-infusion" else None
            doses, covs, end = (
                (ReferenceDose(route=d.route, amount=1.0, time_h=0, duration_h=duration),),
                {},
                24.0,
            )
        unvalued = [
            c.name
            for c in card.covariates
            if c.name not in covs and c.reference is None and not model.defaults.get(c.name)
        ]
        twin = bind_regimen(model, doses, covs)
        times = np.linspace(0.0, end, 50)
        pred = simulate(twin, times)
    except InteropError as exc:
        message = str(exc)
        if unvalued:  # simulated at the SBML's 0: name the covariates, not the solver's complaint
            message = (
                f"covariate(s) {', '.join(unvalued)} have no reference value on the card and are 0 in "
                f"the SBML; give them reference values (the simulation at 0 failed: {exc.message})"
            )
        return [
            StageResult(
                "simulate", "failed", (Issue("error", message, "roadrunner"),), time.perf_counter() - t0
            ),
            StageResult("reproduce", "skipped", (Issue("info", "simulation failed"),)),
        ]
    bad = [k for k, v in pred.values.items() if not np.all(np.isfinite(v))]
    issues = [Issue("error", f"observable {k} is not finite over 0..{end:g} h") for k in bad]
    if bad and unvalued:
        issues.append(
            Issue(
                "error",
                f"covariate(s) {', '.join(unvalued)} have no reference value on the card and "
                "are 0 in the SBML; give them reference values",
                "card",
            )  # fmt: skip
        )
    sim = StageResult(
        "simulate",
        "failed" if bad else "passed",
        tuple(issues) or (Issue("info", f"simulated 0..{end:g} h, {len(pred.values)} observables"),),
        time.perf_counter() - t0,
    )
    if bad:
        return [sim, StageResult("reproduce", "skipped", (Issue("info", "simulation failed"),))]
    if not card.reference_outputs:
        return [
            sim,
            StageResult("reproduce", "skipped", (Issue("info", "the card has no reference outputs"),)),
        ]
    t1 = time.perf_counter()
    try:
        checks = check_reference_outputs(model)
    except InteropError as exc:
        return [
            sim,
            StageResult("reproduce", "failed", (Issue("error", str(exc)),), time.perf_counter() - t1),
        ]
    rissues = tuple(
        Issue(
            "info" if c.passed else "error",
            f"{c.description or c.observable}: max relative error {c.max_relative_error:.3g} "
            f"(tolerance {c.rtol:g})",
            "reference",
        )
        for c in checks
    )
    bad_check = any(not c.passed or math.isnan(c.max_relative_error) for c in checks)
    status: Status = "failed" if bad_check else "passed"
    return [sim, StageResult("reproduce", status, rissues, time.perf_counter() - t1)]


def open_validating_registry(settings: Settings, **options: object) -> Registry:
    """The registry of ``settings`` with the twin-based simulate/reproduce stages plugged in."""
    settings.home.mkdir(parents=True, exist_ok=True)
    limit = os.environ.get("INTEROP_MAX_STORED_BYTES")  # per-submission bound on disk (default 50 MB)
    if limit and "max_stored_bytes" not in options:
        options["max_stored_bytes"] = int(limit)
    return open_registry(
        settings.database_url, Path(settings.blob_dir), simulate_check=twin_simulate_check, **options
    )  # type: ignore[arg-type]


def validate_version(
    registry: Registry, model_id: str, version: int | None = None, *, principal: Principal = LOCAL
) -> ValidationReport:
    return registry.validate(model_id, version, principal=principal, simulate_check=twin_simulate_check)
