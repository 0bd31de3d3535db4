"""The model card parts PharmML carries: Omega, residual errors, covariates, observables.

Residual error models are recognised by evaluating the PharmML error function ``g(f)`` (the SD of
the residual, times the SD of its epsilon) at a few predictions ``f``: ``a + b*f`` and
``sqrt(a^2 + b^2 f^2)`` are the two combined forms in DDMoRe's libraries: the card's ``combined-sd``
(SDs add, Monolix's combined1) and ``combined`` (variances add, as in NONMEM and mapbayr).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from interop.schema import LOINC, Coding, Covariate, CovariateSource, Occasion, RandomEffects, ResidualError
from registry.formats.pharmml.flatmodel import Correlation, Eta, Observation
from registry.formats.pharmml.maths import Expr, Sym, Unsupported, evaluate, symbols

__all__ = ["build_covariates", "build_random_effects", "build_residual_error", "covariate_source"]

PHARMML_COVARIATE = "http://www.pharmml.org/covariate"

# Common covariate names -> where the patient schema keeps them (unit the model expects).
_WEIGHT = Coding(system=LOINC, code="29463-7", display="Body weight")
_HEIGHT = Coding(system=LOINC, code="8302-2", display="Body height")
_KNOWN: list[tuple[re.Pattern[str], CovariateSource]] = [
    (re.compile(r"^(WT|BW|WGT|WEIGHT|BODYWEIGHT|TBW)$", re.I),
     CovariateSource(measurement=_WEIGHT, unit="kg")),
    (re.compile(r"^(HT|HGT|HEIGHT)$", re.I),
     CovariateSource(measurement=_HEIGHT, unit="cm")),
    (re.compile(r"^(SCR|CREAT|SCREAT)$", re.I),
     CovariateSource(measurement=Coding(system=LOINC, code="2160-0",
                                        display="Creatinine [Mass/volume] in Serum or Plasma"),
                     unit="mg/dL")),
    (re.compile(r"^AGE$", re.I), CovariateSource(patient_field="age_years")),
]  # fmt: skip


def covariate_source(name: str, *, system: str = PHARMML_COVARIATE) -> CovariateSource:
    """The patient-schema source of a covariate named ``name`` (a code in ``system`` if unknown)."""
    for pattern, source in _KNOWN:
        if pattern.match(name):
            return source
    label = "PharmML" if system == PHARMML_COVARIATE else "model"
    return CovariateSource(
        measurement=Coding(system=system, code=name, display=f"{label} covariate {name}"),
        unit="1",
    )


_FEMALE = {"female", "f", "fem", "woman", "women"}
_MALE = {"male", "m", "man", "men"}


def categorical_source(name: str, codes: dict[str, float]) -> CovariateSource:
    """Sex from the patient record when the categories are female/male; else a local code."""
    female = [c for c in codes if c.lower() in _FEMALE]
    male = [c for c in codes if c.lower() in _MALE]
    if len(codes) == 2 and len(female) == 1 and len(male) == 1:
        return CovariateSource(
            patient_field="sex",
            categories={"female": codes[female[0]], "male": codes[male[0]]},
        )
    return CovariateSource(
        measurement=Coding(system=PHARMML_COVARIATE, code=name, display=f"PharmML covariate {name}"),
        unit="1",
        categories=codes,
    )


def build_covariates(
    covs: list[tuple[str, float | None, dict[str, float] | None]],
) -> tuple[Covariate, ...]:
    """(SBML id, reference, category codes) as card covariates."""
    out = []
    for cid, ref, codes in covs:
        source = categorical_source(cid, codes) if codes else covariate_source(cid)
        out.append(Covariate(name=cid, source=source, reference=ref, missing="error", time_varying=not codes))
    return tuple(out)


def build_random_effects(
    etas: list[Eta],
    correlations: list[Correlation],
    env: dict[str, float],
    warnings: list[str],
    occasions: Sequence[tuple[Eta, tuple[str, ...]]] = (),
) -> RandomEffects:
    """ETAs with positive variance and their Omega (zero-variance ETAs stay in the SBML at 0);
    ``occasions``: each inter-occasion random effect with the SBML ids of its occasions' effects."""
    iov = []
    for eta, ids_per_occasion in occasions:
        v = _variance(eta, env)
        if v > 0:
            iov.append(Occasion(parameter=eta.id, etas=ids_per_occasion, variance=v))
    variances: dict[str, float] = {}
    for eta in etas:
        v = _variance(eta, env)
        if v == 0:
            warnings.append(f"{eta.id} has variance 0 (fixed): kept at 0 in the SBML, not in Omega")
            continue
        variances[eta.id] = v
    ids = list(variances)
    omega = np.diag([variances[i] for i in ids]) if ids else np.zeros((0, 0))
    for c in correlations:
        try:
            value = evaluate(c.value, env)
        except KeyError as exc:
            raise Unsupported(c.element, f"correlation uses {exc} which has no value") from None
        if {c.first, c.second} & {o.parameter for o in iov}:
            if value != 0:
                warnings.append(f"correlation of {c.first} and {c.second} dropped (occasion effects are "
                                "independent in the card)")  # fmt: skip
            continue
        if c.first not in variances or c.second not in variances:
            if value != 0:
                warnings.append(f"correlation of {c.first} and {c.second} dropped (a variance is 0)")
            continue
        i, j = ids.index(c.first), ids.index(c.second)
        cov = (
            value * math.sqrt(variances[c.first] * variances[c.second]) if c.kind == "correlation" else value
        )
        omega[i, j] = omega[j, i] = cov
    if ids and np.linalg.eigvalsh(omega).min() <= 0:
        raise Unsupported(
            correlations[0].element if correlations else etas[0].element,
            "the variance-covariance matrix of the random effects is not positive definite",
        )
    return RandomEffects(
        etas=tuple(ids), omega=tuple(tuple(float(x) for x in row) for row in omega), occasions=tuple(iov)
    )


def _variance(eta: Eta, env: dict[str, float]) -> float:
    try:
        v = evaluate(eta.variance, env)
    except KeyError as exc:
        raise Unsupported(eta.element, f"variance of {eta.name!r} uses {exc} which has no value") from None
    if not math.isfinite(v) or v < 0:
        raise Unsupported(eta.element, f"variance of {eta.name!r} is {v}")
    return v


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def build_residual_error(
    obs: Observation, env: dict[str, float], warnings: list[str]
) -> ResidualError | None:
    """The card's residual error for one observation (None, with a warning, if it is zero)."""
    if not isinstance(obs.output, Sym):
        raise Unsupported(obs.element, "the observation output must be a model symbol")
    y = obs.output.name
    missing = symbols(obs.error) - set(env) - {y}
    if missing:
        raise Unsupported(
            obs.element,
            f"the error model uses {', '.join(sorted(missing))}: only population parameters "
            "with values and the prediction are supported",
        )
    try:
        sd_eps = math.sqrt(evaluate(obs.epsilon_variance, env))
    except KeyError as exc:
        raise Unsupported(obs.element, f"residual variance uses {exc} which has no value") from None

    def g(f: float, changed: dict[str, float] | None = None) -> float:
        return abs(evaluate(obs.error, {**env, **(changed or {}), y: f}))

    a, g1, g2, g4 = g(0.0), g(1.0), g(2.0), g(4.0)
    if obs.log_transformed:
        if not (_close(g1, a) and _close(g4, a)):
            raise Unsupported(obs.element, "a log-transformed observation needs a constant error SD")
        if a * sd_eps == 0:
            warnings.append(f"{obs.id}: residual error is 0")
            return None
        return ResidualError(observable=obs.id, model="exponential", proportional_sd=a * sd_eps)
    b = g1 - a
    sds_add = False
    if _close(g2 - a, 2 * b) and _close(g4 - a, 4 * b):
        sds_add = a > 0 and b > 0  # SD = a + b*f: the card's combined-sd
    elif _close(g2**2 - a**2, 4 * (g1**2 - a**2)) and _close(g4**2 - a**2, 16 * (g1**2 - a**2)):
        b = math.sqrt(max(g1**2 - a**2, 0.0))
    else:
        raise Unsupported(obs.element, _other_error_model(a, g1, g2, g4))
    add, prop = a * sd_eps, b * sd_eps
    if add == 0 and prop == 0:
        warnings.append(f"{obs.id}: residual error is 0")
        return None
    model = "combined" if add > 0 and prop > 0 else ("additive" if add > 0 else "proportional")
    if model == "combined" and sds_add:
        model = "combined-sd"
    named = error_function_name(obs.element)
    if named and _named_model(named) not in (None, model.split("-")[0]):
        warnings.append(
            f"{obs.id}: the error function is called {named!r} but its body is {model} "
            "(check the model against its NONMEM/MLXTRAN twin)"
        )
    if model.startswith("combined"):
        warnings.extend(_role_warnings(obs.id, g, env, sds_add, (add, prop)))
    return ResidualError(observable=obs.id, model=model, additive_sd=add, proportional_sd=prop)


def _role_warnings(
    obs_id: str, g: Callable[..., float], env: dict[str, float], sds_add: bool, sds: tuple[float, float]
) -> list[str]:
    """Parameters named additive or proportional (``RUV_ADD``, ``RUV_PROP``) that set the other part
    of a combined error model: the card follows the body, its NONMEM twin usually follows the names.

    A parameter's part is found by setting it to 0: the additive SD is ``g(0)``, the proportional SD
    ``g(1) - g(0)`` (SDs add) or ``sqrt(g(1)^2 - g(0)^2)`` (variances add)."""

    def parts(changed: dict[str, float]) -> tuple[float, float]:
        a, g1 = g(0.0, changed), g(1.0, changed)
        return a, (g1 - a) if sds_add else math.sqrt(max(g1**2 - a**2, 0.0))

    add, prop = parts({})
    out = []
    for name, value in env.items():
        role = _named_model(name)
        if role not in ("additive", "proportional") or value == 0:
            continue
        try:
            add0, prop0 = parts({name: 0.0})
        except (ArithmeticError, ValueError):
            continue
        part = None
        if not _close(add0, add) and _close(prop0, prop):
            part = "additive"
        elif _close(add0, add) and not _close(prop0, prop):
            part = "proportional"
        if part and part != role:
            out.append(
                f"{obs_id}: {name} is named {role} but sets the {part} part of the error model; the card "
                f"follows the body (additive SD {sds[0]:g}, proportional {sds[1]:g}): check the model "
                "against its NONMEM/MLXTRAN twin, which may swap them"
            )
    return out


def _other_error_model(a: float, g1: float, g2: float, g4: float) -> str:
    """Why an error model has no card form, naming a power model ``SD = b*f^c`` when it is one."""
    if a == 0 and g1 > 0 and g2 > 0 and _close(g4 / g2, g2 / g1):
        c = math.log2(g2 / g1)
        return (
            f"a power error model (SD = {g1:g}*f^{c:g}) has no form in the card "
            "(additive, proportional, combined or exponential)"
        )
    return "the error model is neither additive, proportional nor combined"


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


def output_symbol(expr: Expr) -> str | None:
    return expr.name if isinstance(expr, Sym) else None
