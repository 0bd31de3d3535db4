"""Fast exact prediction for models that are linear in their states (most popPK models).

Why hand-written: MAP estimation evaluates a subject's predictions hundreds of times, and a
libRoadRunner time course costs milliseconds per call through its Python API. When the model
is linear in its states between breakpoints (``dx/dt = A(p) x + g``, observables ``C(p) x + c``),
the solution over a segment is closed form, ``x(h) = e^{Ah} x0 + (integral_0^h e^{As} ds) g``,
computed from one eigendecomposition of ``A`` per parameter set. The matrices still come from
the compiled roadrunner model (its reaction rates and assignment rules at unit states), so
SBML stays the single source of the equations. Models with events, rate rules, ``time`` in
their math, nonlinear rates or a residual SD of the sbml form are detected at load time and use the
roadrunner path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from interop.errors import TwinError
from interop.twin.binding import Twin
from interop.twin.model import CompiledModel, input_parameter, observable_parameter, outputs
from interop.twin.occasions import occasion_switches

__all__ = ["LinearPredictor", "LinearSystem", "linear_system", "predict_linear"]

log = logging.getLogger(__name__)
_TIME_SYMBOL = "http://www.sbml.org/sbml/symbols/time"
_CONDITION_LIMIT = 1e8
_VECTORISE_FROM = 32  # parameter sets; measured: below this roadrunner's reads are faster


@dataclass(frozen=True)
class _Matrices:
    A: np.ndarray
    g0: np.ndarray  # constant input at zero state (no dose input)
    C: np.ndarray  # observables x states
    c0: np.ndarray
    values: np.ndarray  # every global parameter (assignment rules evaluated)
    V: np.ndarray | None  # eigenvectors (None: use expm)
    W: np.ndarray | None
    lam: np.ndarray | None


class LinearSystem:
    """The state-linear structure of a compiled model, read through roadrunner."""

    def __init__(self, model: CompiledModel) -> None:
        r = model.runner
        m = r.model
        self.model = model
        self.gids: list[str] = list(m.getGlobalParameterIds())
        self.index = {g: i for i, g in enumerate(self.gids)}
        self.species: list[str] = list(m.getFloatingSpeciesIds())
        self.n = len(self.species)
        self.N = np.asarray(r.getFullStoichiometryMatrix(), dtype=float).reshape(self.n, -1)
        rxns = list(m.getReactionIds())
        dose_rxns = {f"_dose_{t}" for t in {d.target for d in model.card.dosing}}
        self.keep = np.array([i for i, x in enumerate(rxns) if x not in dose_rxns], dtype=int)
        self.B = {
            t: self.N[:, rxns.index(f"_dose_{t}")].copy() for t in {d.target for d in model.card.dosing}
        }
        self.obs_index = np.array([self.index[observable_parameter(oid)] for oid, _ in outputs(model.card)])
        self.settable = [g for g in self.gids if g in model.defaults]
        self.defaults = np.array([model.defaults.get(g, 0.0) for g in self.gids])
        self._settable_idx = np.array([self.index[g] for g in self.settable], dtype=np.int32)
        inputs = {input_parameter(t) for t in self.B}
        self._input_pos = np.array([k for k, g in enumerate(self.settable) if g in inputs], dtype=int)
        self._cache: dict[bytes, _Matrices] = {}
        self._Nk = self.N[:, self.keep]
        self._exe = r.model  # the executable model (the runner is never reloaded)
        self._zero = np.zeros(self.n)
        self._units = list(np.eye(self.n))

    def values_for(self, overrides: Mapping[str, float]) -> np.ndarray:
        v = self.defaults.copy()
        for k, x in overrides.items():
            i = self.index.get(k)
            if i is None:
                raise TwinError(f"unknown model parameter {k!r}")
            v[i] = x
        return v

    def matrices(self, values: np.ndarray) -> _Matrices:
        """A, g0, C, c0 at the settable parameter values ``values`` (cached by value)."""
        key = values.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        A, g0, C, c0, allv = self.raw(values)
        n = self.n
        V = W = lam = None
        try:
            lam_, V_ = np.linalg.eig(A)
            W_ = np.linalg.inv(V_)
            # cheap conditioning bound (max|V| max|W| n >= cond): near-defective A uses expm
            if np.all(np.isfinite(W_)) and np.abs(V_).max() * np.abs(W_).max() * n < _CONDITION_LIMIT:
                V, W, lam = V_, W_, lam_
                if not (np.iscomplexobj(lam) or np.iscomplexobj(V)):
                    pass
                elif np.all(lam.imag == 0) and np.all(V.imag == 0):
                    V, W, lam = V.real, W.real, lam.real
        except np.linalg.LinAlgError:
            pass
        out = _Matrices(A, g0, C, c0, allv, V, W, lam)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = out
        return out

    def raw(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A, g0, C, c0 and every global parameter value, read from roadrunner at unit states."""
        m = self._exe
        idx = self._settable_idx
        vals = values[idx]
        vals[self._input_pos] = 0.0  # dose inputs enter as B columns, not through the rate law
        m.setGlobalParameterValues(idx, vals)
        keep, obs = self.keep, self.obs_index
        rates, params = m.getReactionRates, m.getGlobalParameterValues
        m.setFloatingSpeciesAmounts(self._zero)
        v0 = rates()[keep]
        allv = params()
        c0 = allv[obs]
        K = np.empty((len(keep), self.n))
        C = np.empty((len(obs), self.n))
        for j, e in enumerate(self._units):
            m.setFloatingSpeciesAmounts(e)
            K[:, j] = rates()[keep]
            C[:, j] = params()[obs]
        K -= v0[:, None]
        C -= c0[:, None]
        Nk = self._Nk
        return Nk @ K, Nk @ v0, C, c0, allv

    def raw_many(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A, g0, C, c0 stacked for several parameter sets: for many sets, evaluated in numpy at once
        when :mod:`interop.twin.vectorised` compiles the model's maths; else (and for the few sets of
        an optimiser step, where roadrunner's compiled code is faster) one roadrunner read each."""
        from interop.twin.vectorised import vectorised_system

        vs = vectorised_system(self.model) if len(values) >= _VECTORISE_FROM else None
        if vs is not None:
            A, g0, C, c0, _ = vs.matrices(values)
            return A, g0, C, c0
        raws = [self.raw(v) for v in values]
        return tuple(np.stack([r[i] for r in raws]) for i in range(4))  # type: ignore[return-value]

    def check(self) -> bool:
        """True when rates and observables are affine in the states at the default parameters."""
        mats = self.matrices(self.defaults)
        m = self.model.runner.model
        rng = np.random.default_rng(0)
        for _ in range(2):
            x = rng.uniform(0.5, 50.0, self.n)
            m.setFloatingSpeciesAmounts(x)
            v = np.asarray(m.getReactionRates())[self.keep]
            Nk = self.N[:, self.keep]
            if not np.allclose(Nk @ v, mats.A @ x + mats.g0, rtol=1e-9, atol=1e-12):
                return False
            y = np.asarray(m.getGlobalParameterValues())[self.obs_index]
            if not np.allclose(y, mats.C @ x + mats.c0, rtol=1e-9, atol=1e-12):
                return False
        m.setFloatingSpeciesAmounts(np.zeros(self.n))
        return True


def _eligible(model: CompiledModel) -> bool:
    m = model.runner.model
    if m.getNumRateRules() or m.getNumEvents() or _TIME_SYMBOL in model.prepared_sbml:
        return False
    # An sbml-form error's SD is in general no affine function of the states (sqrt(a^2 + b^2 f^2)),
    # and whether it is can depend on parameter values the check below does not try: roadrunner.
    return not any(r.needs_sd for r in model.card.residual_error)


def linear_system(model: CompiledModel) -> LinearSystem | None:
    """The model's linear structure, or None when it is not linear in its states (cached)."""
    if model.linear_checked:
        return model.linear
    lin: LinearSystem | None = None
    with model.lock:
        try:
            if _eligible(model):
                candidate = LinearSystem(model)
                lin = candidate if candidate.check() else None
        except (RuntimeError, np.linalg.LinAlgError) as exc:  # roadrunner or numpy refused
            log.info("model %s: no linear fast path (%s)", model.card.id, exc)
            lin = None
        model.runner.reset()
    model.linear = lin
    model.linear_checked = True
    return lin


def _propagate(mats: _Matrices, x: np.ndarray, h: float, u: np.ndarray) -> np.ndarray:
    if h <= 0:
        return x
    g = mats.g0 + u
    if mats.V is not None and mats.W is not None and mats.lam is not None:
        lam = mats.lam
        lh = lam * h
        e = np.exp(lh)
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = np.where(np.abs(lh) > 1e-12, np.expm1(lh) / np.where(lam == 0, 1.0, lam), h)
        z = e * (mats.W @ x) + phi * (mats.W @ g)
        out = mats.V @ z
        return np.asarray(out.real if np.iscomplexobj(out) else out)
    n = len(x)
    M = np.zeros((n + 1, n + 1))
    M[:n, :n] = mats.A * h
    M[:n, n] = g * h
    E = scipy.linalg.expm(M)
    return np.asarray(E[:n, :n] @ x + E[:n, n])


def _phi(lam: np.ndarray, h: np.ndarray) -> np.ndarray:
    """integral_0^h e^{lam s} ds, elementwise (h for lam == 0)."""
    zero = lam == 0
    safe = np.where(zero, 1.0, lam)
    return np.where(zero, h, np.expm1(lam * h) / safe)


def _piece(
    mats: _Matrices,
    t0: float,
    x0: np.ndarray,
    u0: np.ndarray,
    out_t: np.ndarray,
    ev_t: np.ndarray,
    ev_vec: np.ndarray,
    ev_rate: np.ndarray,
    t1: float,
) -> tuple[np.ndarray, np.ndarray]:
    """States at ``out_t`` and at ``t1`` for one piece of constant matrices, by superposition.

    Each input (bolus or rate step at ``ev_t``) contributes to the states at later times only
    (strictly later: an output at a dose time is the pre-dose value).
    """
    assert mats.V is not None and mats.W is not None and mats.lam is not None
    lam, V, W = mats.lam, mats.V, mats.W
    ts = np.append(out_t, t1)
    h0 = np.maximum(ts - t0, 0.0)[:, None]
    z = np.exp(lam[None, :] * h0) * (W @ x0)[None, :] + _phi(lam[None, :], h0) * (W @ (mats.g0 + u0))[None, :]
    if len(ev_t):
        d = ts[:, None] - ev_t[None, :]
        live = d > 0
        dd = np.where(live, d, 0.0)[:, :, None]
        wv = ev_vec @ W.T  # (events, states) in the eigenbasis
        e = np.where(ev_rate[None, :, None], _phi(lam[None, None, :], dd), np.exp(lam[None, None, :] * dd))
        z = z + np.einsum("tkn,kn->tn", e * live[:, :, None], wv)
    x = z @ V.T
    if np.iscomplexobj(x):
        x = x.real
    return x[:-1], x[-1]


class LinearPredictor:
    """Predictions of one twin at fixed times, set up once and evaluated for many parameter sets.

    The dose schedule, output times and covariate pieces are fixed; only the parameter values
    change between calls (the optimiser's inner loop).
    """

    def __init__(
        self,
        lin: LinearSystem,
        twin: Twin,
        times_h: Sequence[float] | np.ndarray,
        params: Mapping[str, float] | None = None,
    ) -> None:
        self.lin = lin
        self.times = np.asarray(times_h, dtype=float)
        base = dict(params or {})
        covs = twin.covariates
        for name, series in covs.items():
            base[name] = series.at(0.0)
        self.base = lin.values_for(base)
        idx = lin.index
        self.doses: list[tuple] = []
        for ev in twin.doses:
            inp = ev.input
            self.doses.append(
                (
                    ev.time_h,
                    ev.amount,
                    lin.B[inp.target],
                    ev.duration_h,
                    _ref(idx, inp.bioavailability, 1.0),
                    _ref(idx, inp.lag_time_h, 0.0),
                    _ref(idx, inp.duration_parameter, 0.0) if inp.duration_parameter else None,
                )
            )
        self.patient_id = twin.patient_id
        self.static = None
        if all(not isinstance(r, int) for d in self.doses for r in d[4:]):
            self.static = self._schedule(self.base)
        # (time, parameter index, new value or ("eta", index) for an occasion switch)
        changes: list[tuple[float, int, float | tuple[str, int]]] = sorted(
            (t, idx[name], v) for name, series in covs.items() for t, v in series.changes() if t >= 0
        )
        # inter-occasion switches: the IOV parameter takes the value of that occasion's ETA
        self.iov_first: list[tuple[int, int]] = []  # (parameter, eta index or -1 for 0) at t = 0
        for sw in occasion_switches(twin):
            if sw.parameter not in idx or (sw.eta is not None and sw.eta not in idx):
                raise TwinError(
                    f"occasion parameter {sw.parameter} or {sw.eta} is not in the SBML",
                    field="random_effects.occasions",
                )
            src = idx[sw.eta] if sw.eta is not None else -1
            if sw.time_h == 0:
                self.iov_first.append((idx[sw.parameter], src))
            else:
                changes.append((sw.time_h, idx[sw.parameter], ("eta", src)))
        changes.sort(key=lambda c: c[0])
        self.bounds = sorted({t for t, _, _ in changes})
        self.changes = changes
        self.patient_id = twin.patient_id
        t_end = max(float(self.times.max(initial=0.0)), 0.0)
        self.out_sel: list[np.ndarray] = []
        t0 = 0.0
        for k in range(len(self.bounds) + 1):
            last = k == len(self.bounds)
            t1 = t_end if last else self.bounds[k]
            lo = self.times > t0 if k else np.ones(len(self.times), dtype=bool)
            self.out_sel.append(lo if last else lo & (self.times <= t1))
            t0 = t1

    def values(self, overrides: Mapping[int, float] | None = None) -> np.ndarray:
        v = self.base.copy()
        for i, x in (overrides or {}).items():
            v[i] = x
        return v

    def batch(self, values: np.ndarray) -> np.ndarray:
        """Predictions for several parameter sets at once, (sets x observables x times).

        One batched eigendecomposition and a few array operations for all sets: the optimiser
        asks for a point and its n difference neighbours together. Falls back to one call per
        set when the schedule depends on parameters, covariates change, or an eigenbasis is
        complex or ill-conditioned.
        """
        lin = self.lin
        if self.static is None:
            return np.stack([self(v) for v in values])
        et, ev, er = self.static
        times = self.times
        m = len(values)
        out = np.empty((m, len(lin.obs_index), len(times)))
        x = np.zeros((m, lin.n))
        u = np.zeros(lin.n)  # the schedule is the same for every set
        t0 = 0.0
        cur = self._first_occasion(np.array(values, dtype=float))
        nb = len(self.bounds)
        for k in range(nb + 1):
            last = k == nb
            t1 = self.bounds[k] if not last else max(float(times.max(initial=0.0)), t0)
            if last:
                sel_ev = et >= t0 if k else np.ones(len(et), dtype=bool)
            else:
                sel_ev = (et >= t0) & (et < t1) if k else et < t1
            sel_out = self.out_sel[k]
            A, g0, C, c0 = lin.raw_many(cur)
            try:
                lam, V = np.linalg.eig(A)
                W = np.linalg.inv(V)
            except np.linalg.LinAlgError:
                return np.stack([self(v) for v in values])
            if (
                np.iscomplexobj(lam)
                or not np.all(np.isfinite(W))
                or np.any(np.abs(V).max(axis=(1, 2)) * np.abs(W).max(axis=(1, 2)) * lin.n >= _CONDITION_LIMIT)
            ):
                return np.stack([self(v) for v in values])
            ts = np.append(times[sel_out], t1)
            h0 = np.maximum(ts - t0, 0.0)
            lh = lam[:, None, :] * h0[None, :, None]
            z = np.exp(lh) * np.einsum("mij,mj->mi", W, x)[:, None, :]
            z += _phi(lam[:, None, :], h0[None, :, None]) * np.einsum("mij,mj->mi", W, g0 + u)[:, None, :]
            pe, pv, pr = et[sel_ev], ev[sel_ev], er[sel_ev]
            if len(pe):
                d = ts[:, None] - pe[None, :]
                live = d > 0
                dd = np.where(live, d, 0.0)
                wv = np.einsum("mij,kj->mki", W, pv)  # (sets, events, states) in each eigenbasis
                arg = lam[:, None, None, :] * dd[None, :, :, None]
                if pr.any():
                    e = np.where(
                        pr[None, None, :, None],
                        _phi(lam[:, None, None, :], dd[None, :, :, None]),
                        np.exp(arg),
                    )
                else:
                    e = np.exp(arg)
                e *= live[None, :, :, None]
                z = z + np.einsum("mtkn,mkn->mtn", e, wv)
            xs = np.einsum("mtn,mjn->mtj", z, V)
            out[:, :, sel_out] = np.einsum("mtj,moj->mot", xs[:, :-1], C) + c0[:, :, None]
            if last:
                break
            x = xs[:, -1]
            u = u + (pv * pr[:, None]).sum(axis=0)
            cur = cur.copy()
            for t, i, v in self.changes:
                if t == t1:
                    cur[:, i] = _change_value(cur, v)
            t0 = t1
        return out

    def _schedule(self, gv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input times, state vectors and kinds (True: rate step) for parameter values ``gv``."""
        ev_t: list[float] = []
        ev_vec: list[np.ndarray] = []
        ev_rate: list[bool] = []
        for t, amount, col, dur, f_ref, lag_ref, dur_ref in self.doses:
            f = gv[f_ref] if isinstance(f_ref, int) else f_ref
            lag = gv[lag_ref] if isinstance(lag_ref, int) else lag_ref
            duration = dur
            if duration is None and dur_ref is not None:
                duration = gv[dur_ref] if isinstance(dur_ref, int) else dur_ref
            start = t + lag
            if duration is None or duration <= 0:
                ev_t.append(start)
                ev_vec.append(col * (amount * f))
                ev_rate.append(False)
            else:
                rate = col * (amount * f / duration)
                ev_t += [start, start + duration]
                ev_vec += [rate, -rate]
                ev_rate += [True, True]
        if ev_t and min(ev_t) < 0:
            raise TwinError("a dose falls before the twin's origin", source=self.patient_id)
        et = np.asarray(ev_t, dtype=float)
        ev = np.asarray(ev_vec, dtype=float).reshape(len(ev_t), self.lin.n)
        er = np.asarray(ev_rate, dtype=bool)
        return et, ev, er

    def _first_occasion(self, values: np.ndarray) -> np.ndarray:
        if not self.iov_first:
            return values
        values = values.copy()
        for p, src in self.iov_first:
            values[..., p] = values[..., src] if src >= 0 else 0.0
        return values

    def __call__(self, values: np.ndarray) -> np.ndarray:
        lin = self.lin
        values = self._first_occasion(values)
        mats = lin.matrices(values)
        et, ev, er = self.static if self.static is not None else self._schedule(mats.values)
        times = self.times
        out = np.empty((len(lin.obs_index), len(times)))
        x = np.zeros(lin.n)
        u = np.zeros(lin.n)
        t0 = 0.0
        cur = values
        nb = len(self.bounds)
        for k in range(nb + 1):
            last = k == nb
            t1 = self.bounds[k] if not last else max(float(times.max(initial=0.0)), t0)
            if last:
                sel_ev = et >= t0 if k else np.ones(len(et), dtype=bool)
            else:
                sel_ev = (et >= t0) & (et < t1) if k else et < t1
            sel_out = self.out_sel[k]
            step = _sequential if mats.V is None else _piece
            xs, x1 = step(mats, t0, x, u, times[sel_out], et[sel_ev], ev[sel_ev], er[sel_ev], t1)
            out[:, sel_out] = (xs @ mats.C.T + mats.c0).T
            if last:
                break
            x = x1
            u = u + (ev[sel_ev] * er[sel_ev][:, None]).sum(axis=0)
            cur = cur.copy()
            for t, i, v in self.changes:
                if t == t1:
                    cur[i] = _change_value(cur, v)
            mats = lin.matrices(cur)
            t0 = t1
        return out


def _change_value(cur: np.ndarray, v: object) -> np.ndarray | float:
    """A covariate's new value, or (occasion switch) the value of that occasion's ETA."""
    if isinstance(v, tuple):
        src = v[1]
        return cur[..., src] if src >= 0 else 0.0
    return float(v)  # type: ignore[arg-type]


def _ref(index: dict[str, int], ref: float | str | None, default: float) -> float | int:
    if ref is None:
        return default
    if isinstance(ref, str):
        return index[ref]
    return float(ref)


def predict_linear(
    lin: LinearSystem, twin: Twin, times_h: Sequence[float] | np.ndarray, params: Mapping[str, float]
) -> np.ndarray:
    """Observables (rows, card order) at ``times_h`` (any order); outputs at a dose time are pre-dose."""
    predictor = LinearPredictor(lin, twin, times_h, params)
    return predictor(predictor.base)


def _sequential(
    mats: _Matrices,
    t0: float,
    x0: np.ndarray,
    u0: np.ndarray,
    out_t: np.ndarray,
    ev_t: np.ndarray,
    ev_vec: np.ndarray,
    ev_rate: np.ndarray,
    t1: float,
) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_piece`, stepping with matrix exponentials (ill-conditioned eigenvectors)."""
    items = sorted(
        [(float(t), 0, i) for i, t in enumerate(out_t)]
        + [(float(t), 1, i) for i, t in enumerate(ev_t)]
        + [(t1, 2, 0)]
    )
    x, u, tc = x0.copy(), u0.copy(), t0
    xs = np.zeros((len(out_t), len(x0)))
    x1 = x0
    for t, kind, i in items:
        if t > tc:
            x = _propagate(mats, x, t - tc, u)
            tc = t
        if kind == 0:
            xs[i] = x
        elif kind == 1:
            if ev_rate[i]:
                u = u + ev_vec[i]
            else:
                x = x + ev_vec[i]
        else:
            x1 = x
    return xs, x1
