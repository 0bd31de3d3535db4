"""Virtual individuals: covariates from a distribution file or resampled from a real cohort,
random effects from the card's Omega.

Every subject draws from its own generator, seeded by (seed, subject index) through numpy's
``SeedSequence``: subject 17 is the same whether it is simulated alone, in a batch of 500 on
one process, or on any Dask worker. That is what makes distributed runs equal single-process
runs.

Distribution file (JSON or YAML), one entry per covariate named in the card::

    WT:  {dist: lognormal, median: 70, cv: 0.2, min: 40, max: 120}
    SCR: {dist: normal, mean: 1.0, sd: 0.3, min: 0.5, max: 4}
    AGE: {dist: uniform, low: 18, high: 90}
    SEX: {dist: categorical, values: {"0": 0.5, "1": 0.5}}

Truncated distributions are drawn by rejection (at most 1000 tries, then clipped).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import Field, model_validator

from interop.cohort.design import read_structured_file
from interop.errors import SchemaError, TwinError
from interop.schema import ModelCard, PatientRecord, parse
from interop.schema.analytes import convert_analyte, same_analyte
from interop.schema.base import Frozen
from interop.schema.units import UnitError

__all__ = [
    "CovariateDistribution",
    "Population",
    "Subject",
    "baseline_covariates",
    "draw_subject",
    "load_distributions",
    "patient_rng",
    "subject_rng",
]


class CovariateDistribution(Frozen):
    dist: Literal["normal", "lognormal", "uniform", "categorical", "constant"]
    mean: float | None = None
    sd: float | None = Field(default=None, ge=0)
    median: float | None = Field(default=None, gt=0)
    cv: float | None = Field(default=None, ge=0, description="Lognormal: sqrt(exp(s^2)-1)")
    low: float | None = None
    high: float | None = None
    value: float | None = None
    values: dict[str, float] = Field(default_factory=dict, description="category value -> probability")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _params(self) -> Self:
        need = {
            "normal": ("mean", "sd"),
            "lognormal": ("median", "cv"),
            "uniform": ("low", "high"),
            "constant": ("value",),
            "categorical": ("values",),
        }[self.dist]
        for name in need:
            if getattr(self, name) in (None, {}):
                raise ValueError(f"a {self.dist} distribution needs {name}")
        if self.dist == "categorical":
            total = sum(self.values.values())
            if any(p < 0 for p in self.values.values()) or not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"categorical probabilities must be >= 0 and add up to 1 (got {total:g})")
            for k in self.values:
                float(k)  # categories are model values (e.g. SEX 0/1)
        return self

    def _once(self, rng: np.random.Generator) -> float:
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None  # checked by _params
            return float(rng.normal(self.mean, self.sd))
        if self.dist == "lognormal":
            assert self.median is not None and self.cv is not None
            return float(self.median * math.exp(rng.normal(0.0, math.sqrt(math.log1p(self.cv**2)))))
        if self.dist == "uniform":
            assert self.low is not None and self.high is not None
            return float(rng.uniform(self.low, self.high))
        if self.dist == "constant":
            return float(self.value or 0.0)
        # what Generator.choice(p=...) does (same draw), without its per-call argument checks
        keys, cdf = self._categories()
        return float(keys[int(cdf.searchsorted(rng.random(), side="right"))])

    def _categories(self) -> tuple[np.ndarray, np.ndarray]:
        cdf = np.cumsum(list(self.values.values()))
        return np.array([float(k) for k in self.values]), cdf / cdf[-1]

    def draw(self, rng: np.random.Generator) -> float:
        lo = -math.inf if self.min is None else self.min
        hi = math.inf if self.max is None else self.max
        x = self._once(rng)
        for _ in range(1000):
            if lo <= x <= hi:
                return x
            x = self._once(rng)
        return min(max(x, lo), hi)

    def draw_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` values at once, truncated as :meth:`draw` truncates (redraw, then clip)."""
        lo = -math.inf if self.min is None else self.min
        hi = math.inf if self.max is None else self.max
        x = self._many(rng, size)
        for _ in range(1000):
            out = (x < lo) | (x > hi)
            if not out.any():
                break
            x[out] = self._many(rng, int(out.sum()))
        return np.clip(x, lo, hi)

    def _many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.dist == "normal":
            assert self.mean is not None and self.sd is not None  # checked by _params
            return rng.normal(self.mean, self.sd, size)
        if self.dist == "lognormal":
            assert self.median is not None and self.cv is not None
            return self.median * np.exp(rng.normal(0.0, math.sqrt(math.log1p(self.cv**2)), size))
        if self.dist == "uniform":
            assert self.low is not None and self.high is not None
            return rng.uniform(self.low, self.high, size)
        if self.dist == "constant":
            return np.full(size, float(self.value or 0.0))
        keys, cdf = self._categories()
        return keys[cdf.searchsorted(rng.random(size), side="right")]


def load_distributions(path: Path, card: ModelCard) -> dict[str, CovariateDistribution]:
    """Covariate distributions from a file; every card covariate must have one or a reference."""
    data = read_structured_file(path)
    if not isinstance(data, dict):
        raise SchemaError("a distribution file maps covariate names to distributions", source=str(path))
    names = {c.name for c in card.covariates}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SchemaError(f"covariates not in model {card.id}: {', '.join(unknown)}", source=str(path))
    return {k: parse(CovariateDistribution, v, source=f"{path} [{k}]") for k, v in data.items()}


def baseline_covariates(record: PatientRecord, card: ModelCard) -> dict[str, float]:
    """Each card covariate's first value in a real record (reference where the card allows)."""
    out: dict[str, float] = {}
    pid = record.patient.id
    for cov in card.covariates:
        src, value = cov.source, None
        if src.measurement is not None:
            rows = sorted(
                (m for m in record.measurements if same_analyte(m.code, src.measurement)),
                key=lambda m: m.time,
            )
            if rows:
                try:
                    value = convert_analyte(
                        rows[0].value, rows[0].unit, src.unit or rows[0].unit, rows[0].code
                    )
                except UnitError as exc:
                    raise TwinError(str(exc), source=rows[0].id, field="unit") from exc
        elif src.patient_field == "age_years":
            value = record.patient.age_years
        elif src.patient_field == "sex":
            value = src.categories.get(record.patient.sex)
        if value is None:
            if cov.missing == "reference" and cov.reference is not None:
                value = cov.reference
            else:
                raise TwinError(
                    f"patient {pid} has no value for covariate {cov.name}", source=pid, field=cov.name
                )
        out[cov.name] = float(value)
    return out


@dataclass(frozen=True)
class Population:
    """Where covariates come from: distributions, rows of a real cohort, or reference values."""

    distributions: dict[str, CovariateDistribution]
    rows: tuple[dict[str, float], ...] = ()

    def draw_covariates(self, card: ModelCard, rng: np.random.Generator) -> dict[str, float]:
        if self.rows:
            return dict(self.rows[int(rng.integers(len(self.rows)))])
        out = {}
        for cov in card.covariates:
            d = self.distributions.get(cov.name)
            if d is not None:
                out[cov.name] = d.draw(rng)
            elif cov.reference is not None:
                out[cov.name] = float(cov.reference)
            else:
                raise SchemaError(f"no distribution and no reference value for covariate {cov.name}")
        return out

    def draw_table(self, card: ModelCard, rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
        """Covariates of ``size`` subjects at once (columns), for population-scale studies."""
        if self.rows:
            picks = rng.integers(len(self.rows), size=size)
            return {c.name: np.array([float(r[c.name]) for r in self.rows])[picks] for c in card.covariates}
        out = {}
        for cov in card.covariates:
            d = self.distributions.get(cov.name)
            if d is not None:
                out[cov.name] = d.draw_many(rng, size)
            elif cov.reference is not None:
                out[cov.name] = np.full(size, float(cov.reference))
            else:
                raise SchemaError(f"no distribution and no reference value for covariate {cov.name}")
        return out


@dataclass(frozen=True)
class Subject:
    index: int
    id: str
    covariates: dict[str, float]
    etas: dict[str, float]


def subject_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of subject ``index``: independent of batching and of the worker."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def patient_rng(seed: int, patient_id: str) -> np.random.Generator:
    """A generator keyed by a (pseudonymous) patient id, for simulations in validation."""
    key = int.from_bytes(hashlib.sha256(patient_id.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


@lru_cache(maxsize=64)
def _cholesky(omega: tuple[tuple[float, ...], ...]) -> np.ndarray:
    return np.linalg.cholesky(np.array(omega))


def draw_etas(card: ModelCard, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """ETA vectors from N(0, Omega): shape (n_eta,) or (size, n_eta)."""
    re = card.random_effects
    n = len(re.etas)
    if n == 0:
        return np.zeros((0,) if size is None else (size, 0))
    chol = _cholesky(tuple(map(tuple, re.omega_matrix())))
    z = rng.standard_normal((n,) if size is None else (size, n))
    return z @ chol.T


def draw_subject(
    card: ModelCard, population: Population, seed: int, index: int, prefix: str = "vs"
) -> Subject:
    """Subject ``index`` of the virtual cohort with seed ``seed``: covariates, then ETAs."""
    rng = subject_rng(seed, index)
    covs = population.draw_covariates(card, rng)
    etas = draw_etas(card, rng)
    return Subject(
        index,
        f"{prefix}-{seed}-{index:07d}",
        covs,
        {e: float(v) for e, v in zip(card.random_effects.etas, etas, strict=True)},
    )


def rows_from_records(records: Sequence[PatientRecord], card: ModelCard) -> tuple[dict[str, float], ...]:
    """Baseline covariate rows of a real cohort (patients lacking a required one are skipped)."""
    rows = []
    for rec in records:
        try:
            rows.append(baseline_covariates(rec, card))
        except TwinError:
            continue
    if not rows:
        raise SchemaError("no patient of the cohort has the covariates the model needs")
    return tuple(rows)
