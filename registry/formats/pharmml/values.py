"""Population values of a PharmML model: from the modelling steps, the caller's overrides and
priors' means, and the numeric environment (every population-level quantity with a value) the
card's Omega and residual errors are computed in."""

from __future__ import annotations

import math
from collections.abc import Mapping

from interop.errors import InteropError
from registry.formats.pharmml.document import Problem, Problems
from registry.formats.pharmml.maths import evaluate, symbols, uses_time
from registry.formats.pharmml.reader import ReadModel

__all__ = ["apply_values", "numeric_env", "with_constants"]


def apply_values(
    model: ReadModel, steps: dict[str, float], overrides: Mapping[str, float], problems: Problems
) -> None:
    """Population values from the modelling steps, then ``overrides`` (by symbol or SBML id)."""
    by_name = {d.name: d.sbml for d in model.table.declarations.values()}
    forced: dict[str, float] = {}
    for key, value in overrides.items():
        pid = key if key in model.params else by_name.get(key)
        if pid is None or pid not in model.params:
            raise InteropError(f"no parameter {key!r} in the PharmML model to set")
        forced[pid] = float(value)
    for pid, value in {**steps, **forced}.items():
        param = model.params.get(pid)
        if param is None or param.kind not in ("population", "covariate"):
            continue
        if param.rule is None or pid in forced or param.prior:
            param.value, param.rule, param.prior = value, None, False
    for param in model.params.values():
        if param.kind == "population" and param.rule is not None and not symbols(param.rule):
            try:
                param.value, param.rule = evaluate(param.rule, {}), None
            except (KeyError, ValueError):
                pass
    refused = [p.path for p in problems.items]
    for param in model.params.values():
        if any(path.startswith(param.path) for path in refused):
            continue  # already reported at (or inside) its declaration
        if param.kind == "population" and param.rule is None and param.value is None:
            problems.items.append(
                Problem(
                    param.path,
                    param.line,
                    f"population parameter {param.id!r} has "
                    "no value (no initial estimate or assignment); give one",
                )
            )


def numeric_env(model: ReadModel) -> dict[str, float]:
    """Values of every population-level quantity that has one (rules evaluated in order)."""
    env = {
        p.id: float(p.value)
        for p in model.params.values()
        if p.value is not None and p.rule is None and p.kind in ("population", "eta")
    }
    pending = [p for p in model.params.values() if p.kind == "population" and p.rule is not None]
    for _ in range(len(pending) + 1):
        left = []
        for p in pending:
            try:
                assert p.rule is not None
                env[p.id] = evaluate(p.rule, env)
            except (KeyError, ValueError, ZeroDivisionError):
                left.append(p)
        pending = left
    return {k: v for k, v in env.items() if math.isfinite(v)}


def with_constants(model: ReadModel, env: dict[str, float]) -> dict[str, float]:
    """``env`` plus the individual parameters and variables that are constants: rules of population
    values only (no random effect, time or state), such as an error SD ``sqrt(1/TAU)``."""
    population = {p.id for p in model.params.values() if p.kind == "population"}
    out = dict(env)
    pending = [
        p for p in model.params.values() if p.kind in ("individual", "variable") and p.rule is not None
    ]
    for _ in range(len(pending) + 1):
        left = []
        for p in pending:
            assert p.rule is not None
            if symbols(p.rule) <= population | (set(out) - set(env)) and not uses_time(p.rule):
                try:
                    out[p.id] = evaluate(p.rule, out)
                    continue
                except (KeyError, ValueError, ZeroDivisionError):
                    pass
            left.append(p)
        if len(left) == len(pending):
            break
        pending = left
    return {k: v for k, v in out.items() if math.isfinite(v)}
