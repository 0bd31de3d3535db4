"""The card's residual error of one PharmML observation ``y = f + g * eps``.

The error SD ``g`` (times the SD of ``eps``) is first written out: model variables it names are
replaced by their definitions, so an SD computed in the model (``W_err = b*sqrt(W)``) is seen as
the function of the prediction it is. When ``g`` then depends on the prediction and population
values only, it is evaluated at a few predictions ``f`` and matched to a closed form of the card:
``a``, ``b*f``, ``a + b*f`` (``combined-sd``: SDs add, Monolix's combined1), ``sqrt(a^2 + b^2 f^2)``
(``combined``: variances add, as in NONMEM and mapbayr) and ``sqrt(a^2 + b^2 f^(2c))`` (``power``).
Any other ``g`` (another function of the prediction, or one using individual parameters,
covariates, states or time) becomes an SBML quantity: a parameter ``<observation>_sd`` assigned
``|g| * sd(eps)``, which the card's ``sbml`` form names and the twin simulates (on a
log-transformed observation: the ``exponential`` form with that ``sd_parameter``).
"""

from __future__ import annotations

import math

from interop.schema import ResidualError
from registry.formats.pharmml.flatmodel import Observation, Parameter, ReadModel
from registry.formats.pharmml.maths import (
    Expr,
    Num,
    Op,
    Sym,
    Unsupported,
    evaluate,
    evaluate_variance,
    substitute,
    symbols,
    uses_time,
)

__all__ = ["build_residual_error", "error_function_name"]

_PROBES = (0.0, 1.0, 2.0, 3.0, 4.0)


def build_residual_error(
    obs: Observation, env: dict[str, float], model: ReadModel, warnings: list[str]
) -> ResidualError | None:
    """The card's residual error for one observation (None, with a warning, if it is zero); an
    SD that is no closed form adds its SBML parameter to ``model``."""
    if not isinstance(obs.output, Sym):
        raise Unsupported(obs.element, "the observation output must be a model symbol")
    y = obs.output.name
    sd_eps = math.sqrt(evaluate_variance(obs.epsilon_variance, env, obs.element, "residual variance"))
    if sd_eps == 0:
        warnings.append(f"{obs.id}: residual error is 0")
        return None
    g = written_out(obs.error, model, env, y)
    if symbols(g) <= set(env) | {y} and not uses_time(g):
        values = _values(g, env, y)
        if values is not None:
            closed = _closed_form(obs, values, sd_eps, warnings)
            if closed is not None and closed.model in ("combined", "combined-sd"):
                warnings.extend(_role_warnings(obs.id, g, env, y, closed))
            if closed is not None or all(v == 0 for v in values):
                return closed
    unknown = sorted(symbols(obs.error) - set(model.params))
    if unknown:
        raise Unsupported(
            obs.element, f"the error model uses {', '.join(unknown)}, which the model does not define"
        )
    pid = model.table.fresh(f"{obs.id}_sd")
    model.add(
        Parameter(pid, "derived", obs.element, rule=Op("times", (Op("abs", (obs.error,)), Num(sd_eps))))
    )
    model_name = "exponential" if obs.log_transformed else "sbml"  # log scale: an SD that varies there
    return ResidualError(observable=obs.id, model=model_name, sd_parameter=pid)


def written_out(expr: Expr, model: ReadModel, env: dict[str, float], prediction: str) -> Expr:
    """``expr`` with the model variables it uses replaced by their definitions (not the prediction,
    values in ``env``, states or random effects), as far as definitions go."""
    for _ in range(len(model.params) + 1):
        mapping = {}
        for name in symbols(expr) - set(env) - {prediction}:
            p = model.params.get(name)
            if p is not None and p.rule is not None and p.rate is None and not p.prior:
                mapping[name] = p.rule
        if not mapping:
            break
        expr = substitute(expr, mapping)
    return expr


def _values(g: Expr, env: dict[str, float], y: str) -> list[float] | None:
    """|g| at the probe predictions, or None where it cannot be evaluated there."""
    try:
        out = [abs(evaluate(g, {**env, y: f})) for f in _PROBES]
    except (ValueError, ZeroDivisionError, OverflowError, KeyError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _closed_form(
    obs: Observation, values: list[float], sd_eps: float, warnings: list[str]
) -> ResidualError | None:
    """The card form whose SD is ``values`` (times ``sd_eps``) at the probes; None if none is."""
    a, g1, g2, g3, g4 = values
    if all(_close(v, a) for v in values):
        if a == 0:
            warnings.append(f"{obs.id}: residual error is 0")
            return None
        if obs.log_transformed:
            return ResidualError(observable=obs.id, model="exponential", proportional_sd=a * sd_eps)
        return _named(
            obs, ResidualError(observable=obs.id, model="additive", additive_sd=a * sd_eps), warnings
        )
    if obs.log_transformed:
        return None
    b = g1 - a
    if all(_close(v - a, f * b) for f, v in zip(_PROBES, values, strict=True)):  # SD = a + b*f
        model = "combined-sd" if a > 0 else "proportional"
        err = ResidualError(
            observable=obs.id, model=model, additive_sd=a * sd_eps, proportional_sd=b * sd_eps
        )
        return _named(obs, err, warnings)
    h = [v * v - a * a for v in values]  # variance = a^2 + b^2 f^(2c)
    if h[1] <= 0 or h[2] <= 0:
        return None
    two_c = math.log2(h[2] / h[1])
    if not all(_close(hv, h[1] * f**two_c) for f, hv in zip(_PROBES[1:], h[1:], strict=True)):
        return None
    add, prop, c = a * sd_eps, float(f"{math.sqrt(h[1]) * sd_eps:.12g}"), round(two_c / 2, 12)
    if _close(c, 1.0):
        model = "combined" if add > 0 else "proportional"
        return _named(
            obs,
            ResidualError(observable=obs.id, model=model, additive_sd=add, proportional_sd=prop),
            warnings,
        )
    return ResidualError(observable=obs.id, model="power", additive_sd=add, proportional_sd=prop, exponent=c)


def _role_warnings(obs_id: str, g: Expr, env: dict[str, float], y: str, err: ResidualError) -> list[str]:
    """Parameters named additive or proportional (``RUV_ADD``, ``RUV_PROP``) that set the other part
    of a combined error model: the card follows the body, its NONMEM twin usually follows the names.

    A parameter's part is found by setting it to 0: the additive SD is ``g(0)``, the proportional SD
    ``g(1) - g(0)`` (SDs add) or ``sqrt(g(1)^2 - g(0)^2)`` (variances add)."""
    sds_add = err.model == "combined-sd"

    def parts(changed: dict[str, float]) -> tuple[float, float]:
        a, g1 = (abs(evaluate(g, {**env, **changed, y: f})) for f in (0.0, 1.0))
        return a, (g1 - a) if sds_add else math.sqrt(max(g1**2 - a**2, 0.0))

    add, prop = parts({})
    out = []
    for name, value in env.items():
        role = _named_model(name)
        if role not in ("additive", "proportional") or value == 0:
            continue
        try:
            add0, prop0 = parts({name: 0.0})
        except (ArithmeticError, ValueError, KeyError):
            continue
        part = None
        if not _close(add0, add) and _close(prop0, prop):
            part = "additive"
        elif _close(add0, add) and not _close(prop0, prop):
            part = "proportional"
        if part and part != role:
            out.append(
                f"{obs_id}: {name} is named {role} but sets the {part} part of the error model; the card "
                f"follows the body (additive SD {err.additive_sd:g}, proportional {err.proportional_sd:g}): "
                "check the model against its NONMEM/MLXTRAN twin, which may swap them"
            )
    return out


def _named(obs: Observation, err: ResidualError, warnings: list[str]) -> ResidualError:
    """``err``, warned when the error function's name says another form than its body."""
    named = error_function_name(obs.element)
    if named and _named_model(named) not in (None, err.model.split("-")[0]):
        warnings.append(
            f"{obs.id}: the error function is called {named!r} but its body is {err.model} "
            "(check the model against its NONMEM/MLXTRAN twin)"
        )
    return err


def error_function_name(element: object) -> str | None:
    """The name of the function an observation's ErrorModel calls (``proportionalError``), if any."""
    for el in getattr(element, "iter", lambda: [])():
        tag = getattr(el, "tag", "")
        if isinstance(tag, str) and tag.endswith("}ErrorModel"):
            for ref in el.iter():
                if isinstance(ref.tag, str) and ref.tag.endswith("}SymbRef") and ref.get("symbIdRef"):
                    return str(ref.get("symbIdRef"))
    return None


def _named_model(name: str) -> str | None:
    low = name.lower()
    if "comb" in low:
        return "combined"
    if "prop" in low:
        return "proportional"
    if "add" in low or "const" in low:
        return "additive"
    return None
