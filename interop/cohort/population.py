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
    HD:  {dist: bernoulli, p: 0.05}                  # condition prevalence -> 1/0
    CYP2C19: {dist: genotype, frequencies: {Normal Metabolizer: 0.4, Intermediate Metabolizer: 0.26, ...}}

Genotype frequencies name the card's calls (its ``values`` keys) and draw their model values.
Covariates are drawn jointly through ``populations``: a subject first draws its population by
weight, then each covariate from that population's distributions (else the shared ones);
derived covariates (CrCL from age, weight, creatinine) are then computed from the draws::

    populations:
      european: {weight: 0.7, covariates: {CYP3A5: {dist: genotype, frequencies: {...}}}}
      african:  {weight: 0.3, covariates: {CYP3A5: {dist: genotype, frequencies: {...}}}}

The same block may sit in the design file under ``covariates``. Truncated distributions are
drawn by rejection (at most 1000 tries, then clipped).
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
from interop.schema.base import Frozen

__all__ = [
    "CovariateDistribution",
    "Population",
    "PopulationGroup",
    "Subject",
    "baseline_covariates",
    "draw_subject",
    "load_distributions",
    "load_population",
    "parse_distributions",
    "patient_rng",
    "subject_rng",
]


class CovariateDistribution(Frozen):
    dist: Literal["normal", "lognormal", "uniform", "categorical", "constant", "bernoulli", "genotype"]
    mean: float | None = None
    sd: float | None = Field(default=None, ge=0)
    median: float | None = Field(default=None, gt=0)
    cv: float | None = Field(default=None, ge=0, description="Lognormal: sqrt(exp(s^2)-1)")
    low: float | None = None
    high: float | None = None
    value: float | None = None
    values: dict[str, float] = Field(default_factory=dict, description="category value -> probability")
    p: float | None = Field(default=None, ge=0, le=1, description="Bernoulli: probability of 1 (prevalence)")
    frequencies: dict[str, float] = Field(
        default_factory=dict, description="Genotype: call (as on the card) -> frequency"
    )
    calls: dict[str, float] = Field(
        default_factory=dict, description="Genotype: call -> model value (filled from the card)"
    )
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
            "bernoulli": ("p",),
            "genotype": ("frequencies",),
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
        if self.dist == "genotype":
            total = sum(self.frequencies.values())
            if any(p < 0 for p in self.frequencies.values()) or not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"genotype frequencies must be >= 0 and add up to 1 (got {total:g})")
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
        if self.dist == "bernoulli":
            return float(rng.random() < (self.p or 0.0))
        # categorical and genotype: what Generator.choice(p=...) does (the same draw), without its
        # per-call argument checks
        keys, cdf = self._categories()
        return float(keys[int(cdf.searchsorted(rng.random(), side="right"))])

    def _categories(self) -> tuple[np.ndarray, np.ndarray]:
        """Model values of the categories and their cumulative probabilities."""
        if self.dist == "genotype":
            keys = [float(self.calls[label]) for label in self.frequencies]
            probs = list(self.frequencies.values())
        else:
            keys, probs = [float(k) for k in self.values], list(self.values.values())
        cdf = np.cumsum(probs)
        return np.array(keys), cdf / cdf[-1]

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
        if self.dist == "bernoulli":
            return (rng.random(size) < (self.p or 0.0)).astype(float)
        keys, cdf = self._categories()
        return keys[cdf.searchsorted(rng.random(size), side="right")]


def _genotype_calls(
    card: ModelCard, name: str, dist: CovariateDistribution, where: str
) -> CovariateDistribution:
    """A genotype distribution with each call's model value from the card."""
    cov = next(c for c in card.covariates if c.name == name)
    src = cov.source.genotype
    if src is None:
        raise SchemaError(f"{name} is not a genotype covariate on model {card.id}", source=where)
    known = {k.lower(): v for k, v in src.values.items()}
    unknown = sorted(k for k in dist.frequencies if k.lower() not in known)
    if unknown:
        raise SchemaError(
            f"{name}: calls not on the card: {', '.join(unknown)} (card: {', '.join(src.values)})",
            source=where,
        )
    return dist.model_copy(update={"calls": {k: known[k.lower()] for k in dist.frequencies}})


def parse_distributions(data: object, card: ModelCard, source: str) -> Population:
    """A population from distribution-file data (shared distributions and optional populations)."""
    if not isinstance(data, dict):
        raise SchemaError("a distribution file maps covariate names to distributions", source=source)
    names = {c.name for c in card.covariates}
    groups_data = data.get("populations") or {}
    shared = {k: v for k, v in data.items() if k != "populations"}

    def parse_block(block: object, where: str) -> dict[str, CovariateDistribution]:
        if not isinstance(block, dict):
            raise SchemaError("covariates map names to distributions", source=where)
        unknown = sorted(set(block) - names)
        if unknown:
            raise SchemaError(f"covariates not in model {card.id}: {', '.join(unknown)}", source=where)
        out = {}
        for k, v in block.items():
            d = parse(CovariateDistribution, v, source=f"{where} [{k}]")
            out[k] = _genotype_calls(card, k, d, where) if d.dist == "genotype" else d
        return out

    if not isinstance(groups_data, dict):
        raise SchemaError("populations maps names to {weight, covariates}", source=source)
    groups = []
    for gname, g in groups_data.items():
        where = f"{source} [populations.{gname}]"
        if not isinstance(g, dict) or not isinstance(g.get("weight"), int | float) or g["weight"] < 0:
            raise SchemaError("a population needs weight >= 0 and covariates", source=where)
        groups.append(
            PopulationGroup(str(gname), float(g["weight"]), parse_block(g.get("covariates", {}), where))
        )
    if groups and sum(g.weight for g in groups) <= 0:
        raise SchemaError("population weights add up to 0", source=source)
    return Population(parse_block(shared, source), groups=tuple(groups))


def load_distributions(path: Path, card: ModelCard) -> dict[str, CovariateDistribution]:
    """Covariate distributions from a file (shared ones; see :func:`load_population`)."""
    return load_population(path, card).distributions


def load_population(path: Path, card: ModelCard) -> Population:
    """The population of a distribution file: shared distributions and weighted populations."""
    return parse_distributions(read_structured_file(path), card, str(path))


def baseline_covariates(record: PatientRecord, card: ModelCard) -> dict[str, float]:
    """Each card covariate's value at the record's first dose, bound as a twin binds it
    (reference where the card allows)."""
    from interop.twin.covariates import baseline_values

    return baseline_values(card, record)


@dataclass(frozen=True)
class PopulationGroup:
    """One population of a mixture (e.g. an ancestry group with its genotype frequencies)."""

    name: str
    weight: float
    distributions: dict[str, CovariateDistribution]


@dataclass(frozen=True)
class Population:
    """Where covariates come from: distributions, rows of a real cohort, or reference values."""

    distributions: dict[str, CovariateDistribution]
    rows: tuple[dict[str, float], ...] = ()
    groups: tuple[PopulationGroup, ...] = ()

    def draw_group(self, rng: np.random.Generator) -> PopulationGroup | None:
        if not self.groups:
            return None
        w = np.array([g.weight for g in self.groups], dtype=float)
        return self.groups[int(rng.choice(len(self.groups), p=w / w.sum()))]

    def draw_covariates(self, card: ModelCard, rng: np.random.Generator) -> dict[str, float]:
        return self.draw(card, rng)[0]

    def draw(self, card: ModelCard, rng: np.random.Generator) -> tuple[dict[str, float], str | None]:
        """One subject's covariates (derived ones computed from the draws) and its population."""
        from interop.twin.covariates import complete_covariates

        if self.rows:
            return dict(self.rows[int(rng.integers(len(self.rows)))]), None
        group = self.draw_group(rng)
        out = {}
        for cov in card.covariates:
            d = (group.distributions.get(cov.name) if group else None) or self.distributions.get(cov.name)
            if d is not None:
                out[cov.name] = d.draw(rng)
            elif cov.source.derived is not None:
                continue
            elif cov.reference is not None:
                out[cov.name] = float(cov.reference)
            else:
                raise SchemaError(f"no distribution and no reference value for covariate {cov.name}")
        return complete_covariates(card, out), group.name if group else None

    def draw_table(self, card: ModelCard, rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
        """Covariates of ``size`` subjects at once (columns), for population-scale studies: the
        same distributions, mixture of populations and derived covariates as :meth:`draw`."""
        from interop.twin.covariates import complete_covariates

        if self.rows:
            picks = rng.integers(len(self.rows), size=size)
            return {c.name: np.array([float(r[c.name]) for r in self.rows])[picks] for c in card.covariates}
        groups: list[PopulationGroup | None] = list(self.groups) or [None]
        member = np.zeros(size, dtype=int)
        if self.groups:
            w = np.array([g.weight for g in self.groups], dtype=float)
            member = np.cumsum(w / w.sum()).searchsorted(rng.random(size), side="right")
        out: dict[str, np.ndarray] = {}
        for cov in card.covariates:
            column = np.full(size, np.nan)
            for k, group in enumerate(groups):
                rows = member == k
                n = int(rows.sum())
                d = (group.distributions.get(cov.name) if group else None) or self.distributions.get(cov.name)
                if d is not None:
                    column[rows] = d.draw_many(rng, n)
                elif cov.source.derived is not None:
                    continue
                elif cov.reference is not None:
                    column[rows] = float(cov.reference)
                else:
                    raise SchemaError(f"no distribution and no reference value for covariate {cov.name}")
            out[cov.name] = column
        derived = [
            c.name for c in card.covariates if c.source.derived is not None and np.isnan(out[c.name]).any()
        ]
        if derived:  # formulas over the drawn values, subject by subject (the formula interpreter is scalar)
            drawn = [k for k in out if k not in derived]
            for i in range(size):
                done = complete_covariates(card, {k: float(out[k][i]) for k in drawn})
                for name in derived:
                    out[name][i] = done[name]
        return out


@dataclass(frozen=True)
class Subject:
    index: int
    id: str
    covariates: dict[str, float]
    etas: dict[str, float]
    population: str | None = None


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
    covs, group = population.draw(card, rng)
    etas = draw_etas(card, rng)
    return Subject(
        index,
        f"{prefix}-{seed}-{index:07d}",
        covs,
        {e: float(v) for e, v in zip(card.random_effects.etas, etas, strict=True)},
        group,
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
