"""An independent MAP reference for NONMEM-style models: NOT NONMEM, a stand-in where NONMEM cannot run.

Why written by hand: the agreement goal needs "NONMEM's ETAs" for models written here, and
NONMEM is not available. This module solves the same MAP problem a second way, sharing no code
with ``interop`` (not the event-table reader, not the SBML, not the optimiser):

- the data file is read with the csv module as NONMEM reads it: one record per row, PK parameters
  evaluated per record, and the advance from one record to the next uses the parameters of the
  record at the end of the interval (so a time-varying covariate or OCC on a row holds back to the
  previous row); EVID 1 dose, 0 observation, 2 other, 3 reset, 4 reset then dose; ALAG delays a
  dose; RATE > 0 is an infusion;
- the model's equations are written again in Python (:mod:`tests.nonmem.reference.models`):
  linear systems are advanced exactly with the matrix exponential (an augmented matrix carries
  infusions), nonlinear ones with LSODA (``odeint``) at rtol 1e-11;
- the objective is NONMEM's -2 log-likelihood at the individual prediction (FOCE-I POSTHOC):
  ``sum log var + (y - f)^2 / var + eta' Omega^-1 eta``; its minimum is found from several starts
  (zero, the simulation's true ETAs, prior draws) with Powell's method, then polished by Newton steps
  on central-difference derivatives until the gradient is below 1e-6 — not BFGS, the optimiser
  ``interop`` uses;
- NONMEM's subject OBJ (the ``.phi`` column) adds ``log det Omega + log det(Omega^-1 + sum J'J/var
  + 1/2 sum D'D/var^2)`` (J = df/deta, D = dvar/deta at the mode), and ETC is that matrix's inverse.
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
from scipy.integrate import odeint
from scipy.optimize import minimize

Params = dict[str, float]


@dataclass(frozen=True)
class Record:
    time: float
    evid: int
    amt: float
    cmt: int
    rate: float
    dv: float
    mdv: int
    items: dict[str, float]  # every other column (covariates, OCC)


@dataclass(frozen=True)
class Dosing:
    """Where a dose into a data CMT goes: state index, bioavailability, lag (h)."""

    state: int
    bio: float = 1.0
    lag: float = 0.0


@dataclass(frozen=True)
class RefModel:
    """A model's equations, written independently of its control stream's conversion."""

    name: str
    n_states: int
    omega: np.ndarray  # the full prior: between-subject ETAs then occasion ETAs, NONMEM's order
    params: Callable[[np.ndarray, dict[str, float]], Params]  # (eta, record items) -> parameters
    dosing: Callable[[Params, int], Dosing]  # (parameters, CMT) -> where the dose goes
    predict: Callable[[np.ndarray, Params, int], float]  # (amounts, parameters, CMT) -> f
    variance: Callable[[float, int], float]  # (f, CMT) -> residual variance
    matrix: Callable[[Params], np.ndarray] | None = None  # linear: dA/dt = M A + inputs
    rhs: Callable[[np.ndarray, Params], np.ndarray] | None = None  # nonlinear: dA/dt = rhs + inputs
    eta_names: tuple[str, ...] = field(default=())

    @property
    def n_eta(self) -> int:
        return self.omega.shape[0]


def read_data(path: Path) -> dict[str, list[Record]]:
    """Records by ID (text), in file order."""
    out: dict[str, list[Record]] = {}
    with Path(path).open(newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            upper = {k.strip().upper(): (v or "").strip() for k, v in row.items()}

            def num(key: str, default: float = 0.0, _u: dict[str, str] = upper) -> float:
                v = _u.get(key, "")
                return default if v in ("", ".", "NA") else float(v)

            core = {"ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DV", "MDV"}
            items = {k: num(k, math.nan) for k in upper if k not in core}
            sid = upper["ID"]
            sid = str(int(float(sid))) if float(sid).is_integer() else sid
            out.setdefault(sid, []).append(
                Record(
                    num("TIME"),
                    int(num("EVID")),
                    num("AMT"),
                    int(num("CMT")),
                    num("RATE"),
                    num("DV", math.nan),
                    int(num("MDV", 0.0)),
                    items,
                )  # fmt: skip
            )
    return out


def _advance(model: RefModel, a: np.ndarray, p: Params, inputs: np.ndarray, dt: float) -> np.ndarray:
    if dt <= 0:
        return a
    if model.matrix is not None:
        eig = _eigen(model, p)
        if eig is None:  # defective or ill-conditioned: the matrix exponential of the augmented system
            n = model.n_states
            aug = np.zeros((n + 1, n + 1))
            aug[:n, :n] = model.matrix(p)
            aug[:n, n] = inputs
            return (scipy.linalg.expm(aug * dt) @ np.append(a, 1.0))[:n]
        lam, vec, vinv, minv = eig
        steady = -(minv @ inputs)  # the constant-input equilibrium: A(t) = e^{Mt}(A0 - s) + s
        return vec @ (np.exp(lam * dt) * (vinv @ (a - steady))) + steady
    assert model.rhs is not None
    rhs = model.rhs

    def f(y: np.ndarray, _t: float) -> np.ndarray:
        return rhs(y, p) + inputs

    sol = odeint(f, a, [0.0, dt], rtol=1e-11, atol=1e-12, mxstep=200000)
    return np.asarray(sol[-1])


_EIGEN: dict[tuple, tuple | None] = {}


def _eigen(model: RefModel, p: Params) -> tuple | None:
    """M = V diag(lam) V^-1 (and M^-1), cached per parameter set; None when V is ill-conditioned."""
    key = (model.name, *sorted(p.items()))
    if key in _EIGEN:
        return _EIGEN[key]
    if len(_EIGEN) > 20000:
        _EIGEN.clear()
    m = model.matrix(p) if model.matrix is not None else None
    out = None
    if m is not None:
        lam, vec = np.linalg.eig(m)
        if np.all(np.isreal(lam)) and np.linalg.cond(vec) < 1e6 and np.min(np.abs(lam)) > 0:
            lam, vec = lam.real, vec.real
            out = (lam, vec, np.linalg.inv(vec), np.linalg.inv(m))
    _EIGEN[key] = out
    return out


def predictions(model: RefModel, records: Sequence[Record], eta: np.ndarray) -> np.ndarray:
    """The individual prediction at every observation record (EVID 0, MDV 0), in order."""
    n = model.n_states
    a = np.zeros(n)
    t = records[0].time
    pending: list[tuple[float, int, str, int, float]] = []  # (time, seq, kind, state, value)
    infusions: dict[int, tuple[int, float]] = {}  # seq -> (state, rate)
    seq = 0
    out: list[float] = []
    for rec in records:
        p = model.params(eta, rec.items)
        # advance to this record with its parameters, applying lagged doses and infusion ends
        while True:
            nxt = pending[0][0] if pending and pending[0][0] <= rec.time else rec.time
            inputs = np.zeros(n)
            for state, rate in infusions.values():
                inputs[state] += rate
            a = _advance(model, a, p, inputs, nxt - t)
            t = nxt
            if pending and pending[0][0] <= rec.time:
                _, s, kind, state, value = heapq.heappop(pending)
                if kind == "bolus":
                    a[state] += value
                elif kind == "start":
                    infusions[s] = (state, value)
                else:
                    infusions.pop(s, None)
                continue
            break
        if rec.evid in (3, 4):
            a = np.zeros(n)
            pending.clear()
            infusions.clear()
        if rec.evid in (1, 4):
            d = model.dosing(p, rec.cmt)
            amount = rec.amt * d.bio
            seq += 1
            if rec.rate > 0:
                duration = amount / rec.rate
                start = rec.time + d.lag
                heapq.heappush(pending, (start, seq, "start", d.state, rec.rate))
                heapq.heappush(pending, (start + duration, seq, "end", d.state, rec.rate))
            elif d.lag > 0:
                heapq.heappush(pending, (rec.time + d.lag, seq, "bolus", d.state, amount))
            else:
                a[d.state] += amount
            # a start at this very time is applied now
            while pending and pending[0][0] <= t and pending[0][2] == "start":
                _, s, _kind, state, value = heapq.heappop(pending)
                infusions[s] = (state, value)
        elif rec.evid == 0 and rec.mdv == 0:
            out.append(model.predict(a, p, rec.cmt))
    return np.asarray(out)


def observations(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(DV, CMT) of the observation records."""
    obs = [r for r in records if r.evid == 0 and r.mdv == 0]
    return np.array([r.dv for r in obs]), np.array([r.cmt for r in obs])


def objective(model: RefModel, records: Sequence[Record], eta: np.ndarray) -> float:
    """-2 log-likelihood at the individual prediction plus the prior, without constants."""
    y, cmts = observations(records)
    f = predictions(model, records, eta)
    var = np.array([model.variance(fi, int(c)) for fi, c in zip(f, cmts, strict=True)])
    if not np.all(np.isfinite(f)) or np.any(var <= 0):
        return math.inf
    omega_inv = np.linalg.inv(model.omega)
    return float(np.sum(np.log(var) + (y - f) ** 2 / var) + eta @ omega_inv @ eta)


def _derivatives(
    fun: Callable[[np.ndarray], float], x: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian."""
    n = x.size
    f0 = fun(x)
    g = np.zeros(n)
    hess = np.zeros((n, n))
    fp = np.zeros(n)
    fm = np.zeros(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        fp[i], fm[i] = fun(x + e), fun(x - e)
        g[i] = (fp[i] - fm[i]) / (2 * h)
        hess[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
    for i in range(n):
        for j in range(i + 1, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = h
            ej[j] = h
            v = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * h * h)
            hess[i, j] = hess[j, i] = v
    return g, hess


def _newton(
    fun: Callable[[np.ndarray], float], x: np.ndarray, *, steps: int = 40
) -> tuple[np.ndarray, float]:
    """Damped Newton polish: stops when the largest gradient component is below 1e-6."""
    fx = fun(x)
    for _ in range(steps):
        g, hess = _derivatives(fun, x, 1e-4)
        if np.max(np.abs(g)) < 1e-6:
            break
        w, v = np.linalg.eigh(hess)
        w = np.maximum(np.abs(w), 1e-6)  # a saddle or flat direction: move downhill anyway
        step = -(v @ ((v.T @ g) / w))
        lam = 1.0
        while lam > 1e-8:
            cand = x + lam * step
            fc = fun(cand)
            if fc < fx:
                x, fx = cand, fc
                break
            lam /= 2
        else:
            break
    return x, fx


@dataclass(frozen=True)
class ReferenceFit:
    subject: str
    eta: np.ndarray
    objective: float  # the MAP objective at the mode
    obj: float  # NONMEM-style subject OBJ (with the Laplace terms)
    etc: np.ndarray
    gradient_max: float
    starts: int


def fit_subject(
    model: RefModel,
    sid: str,
    records: Sequence[Record],
    *,
    extra_starts: Sequence[np.ndarray] = (),
    n_draws: int = 2,
    seed: int = 7,
) -> ReferenceFit:
    """The MAP mode from zero, ``extra_starts`` and ``n_draws`` prior draws; the lowest wins."""

    def fun(x: np.ndarray) -> float:
        return objective(model, records, x)

    rng = np.random.default_rng(seed + sum(map(ord, sid)))
    draws = rng.multivariate_normal(np.zeros(model.n_eta), model.omega, size=n_draws)
    starts = [np.zeros(model.n_eta), *map(np.asarray, extra_starts), *draws]
    best: tuple[float, np.ndarray] | None = None
    for x0 in starts:
        res = minimize(
            fun, x0, method="Powell", options={"xtol": 1e-3, "ftol": 1e-9, "maxfev": 300 * model.n_eta}
        )
        x, fx = _newton(fun, np.asarray(res.x, dtype=float))
        if best is None or fx < best[0]:
            best = (fx, x)
    assert best is not None
    fx, x = best
    g, _ = _derivatives(fun, x, 1e-4)
    obj, etc = _laplace(model, records, x, fx)
    return ReferenceFit(sid, x, fx, obj, etc, float(np.max(np.abs(g))), len(starts))


def _laplace(
    model: RefModel, records: Sequence[Record], eta: np.ndarray, fx: float
) -> tuple[float, np.ndarray]:
    _y, cmts = observations(records)
    h = 1e-5
    n = eta.size
    f0 = predictions(model, records, eta)
    jac = np.zeros((f0.size, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        jac[:, i] = (predictions(model, records, eta + e) - predictions(model, records, eta - e)) / (2 * h)
    var = np.array([model.variance(f, int(c)) for f, c in zip(f0, cmts, strict=True)])
    dvar_df = np.array(
        [(model.variance(f * (1 + 1e-6) + 1e-12, int(c)) - model.variance(f * (1 - 1e-6) - 1e-12, int(c)))
         / (2e-6 * f + 2e-12) for f, c in zip(f0, cmts, strict=True)]
    )  # fmt: skip
    dvar = jac * dvar_df[:, None]
    omega_inv = np.linalg.inv(model.omega)
    info = omega_inv + (jac / var[:, None]).T @ jac + 0.5 * (dvar / var[:, None] ** 2).T @ dvar
    obj = fx + float(np.linalg.slogdet(model.omega)[1]) + float(np.linalg.slogdet(info)[1])
    return obj, np.linalg.inv(info)


def write_phi(path: Path, fits: Sequence[ReferenceFit]) -> None:
    """A NONMEM-format ``.phi`` table (SUBJECT_NO, ID, ETA(i), ETC(i,j) lower triangle, OBJ)."""
    n = fits[0].eta.size
    etc_names = [f"ETC({i + 1},{j + 1})" for i in range(n) for j in range(i + 1)]
    head = ["SUBJECT_NO", "ID", *(f"ETA({i + 1})" for i in range(n)), *etc_names, "OBJ"]
    lines = ["TABLE NO.     1: digphat-interop independent MAP reference (not NONMEM)",
             " " + "".join(f"{h:>22}" for h in head)]  # fmt: skip
    for k, fit in enumerate(fits, start=1):
        etc = [fit.etc[i, j] for i in range(n) for j in range(i + 1)]
        vals = [
            f"{k:>22d}",
            f"{fit.subject:>22}",
            *(f"{v:22.12E}" for v in (*fit.eta, *etc)),
            f"{fit.obj:22.12f}",
        ]
        lines.append(" " + "".join(vals))
    Path(path).write_text("\n".join(lines) + "\n")
