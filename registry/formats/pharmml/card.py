"""The model card parts PharmML carries: Omega, covariates, observables (residual errors:
:mod:`registry.formats.pharmml.errormodel`)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from interop.schema import LOINC, Coding, Covariate, CovariateSource, Occasion, RandomEffects
from registry.formats.pharmml.flatmodel import Correlation, Eta
from registry.formats.pharmml.maths import Expr, Sym, Unsupported, evaluate, evaluate_variance

__all__ = ["build_covariates", "build_random_effects", "covariate_source"]

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
    occasion_covariate: str | None = None,
) -> RandomEffects:
    """ETAs with positive variance and their Omega (zero-variance ETAs stay in the SBML at 0);
    ``occasions``: each inter-occasion random effect with the SBML ids of its occasions' effects,
    switched by ``occasion_covariate`` (None: at the doses)."""
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
        etas=tuple(ids),
        omega=tuple(tuple(float(x) for x in row) for row in omega),
        occasions=tuple(iov),
        occasion_covariate=occasion_covariate if iov else None,
    )


def _variance(eta: Eta, env: dict[str, float]) -> float:
    return evaluate_variance(eta.variance, env, eta.element, f"variance of {eta.name!r}")


def output_symbol(expr: Expr) -> str | None:
    return expr.name if isinstance(expr, Sym) else None
