"""MAP fits of many twins at once on the vectorised closed-form path (cohort validation).

A validation batch fits every patient several times (all its levels, then each prefix for
iterative forecasting), each from the starts of :func:`~interop.twin.estimate.estimate_map`
(ETA = 0, then its deterministic prior draws). Here every fit, start and difference point of
a whole batch of patients is one row of one array program per Newton iteration
(:func:`interop.twin.vectorised.solve_inputs`), instead of a Python optimiser per fit asking
for a few points at a time.

Each Newton step takes the objective's gradient (central differences, step 1e-5) and Hessian
(second differences, step 1e-3, as ``estimate_map``'s mode check) from one stencil of
1 + 2n + 2n^2 points, with a backtracking line search and the Hessian's eigenvalues made
positive where it is not positive definite. Steps shrink quadratically; a fit stops when its
Newton step is below 1e-9 in every ETA, so it lands on the mode to that precision (BFGS in
``estimate_map`` stops at its gradient tolerance, typically 1e-7..1e-5 from it).

Where this path cannot vouch for a fit it returns None and the caller runs ``estimate_map``
(unchanged, with its restarts): the objective is not finite on a stencil; a kink (the
second differences at 1e-5 and 1e-3 disagree: a lag time or an infusion end at a sampling
time, as in issue 18); no convergence in 50 iterations or a failed line search; a gradient
already below BFGS's tolerance at ETA = 0 (where ``estimate_map`` would not move and would
restart); a mode that fails :func:`~interop.twin.estimate.check_mode`; or an ETA that moves a lag
time or an infusion end across a sampling time within its plausible range (the objective then
has other pieces, which ``estimate_map`` searches: :mod:`interop.twin.event_times`). Extra starts replace
the ETA = 0 mode only when their objective is lower by more than 1e-6, as in ``estimate_map``.

Why hand-written: scipy's optimisers take one problem at a time; batching thousands of small
problems per array call is what makes cohort validation cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from interop.errors import TwinError
from interop.schema.residual_error import residual_variance
from interop.twin.binding import Twin
from interop.twin.estimate import _starts, check_mode
from interop.twin.event_times import event_time_etas, segment_midpoints
from interop.twin.model import CompiledModel
from interop.twin.objective import ResidualTerms, laplace_information, residual_terms
from interop.twin.occasions import occasion_omega
from interop.twin.vectorised import Unsupported, VectorisedSystem, solve_inputs, vectorised_system

__all__ = ["BatchFit", "TwinBatch", "batchable", "fit_batch"]

_VAR_FLOOR = 1e-300  # as interop.twin.objective
_PENALTY = 1e12
_GRAD_STEP = 1e-5
_HESS_STEP = 1e-3
_STEP_TOL = 1e-9
_MAX_ITERATIONS = 50
_BFGS_GTOL = 1e-4  # estimate_map's gtol: a start whose gradient is below it makes BFGS stay put
_ALPHAS = np.array([1.0, 0.5, 0.25, 0.1, 0.03, 0.01])
_BLOCK_ELEMENTS = 2_000_000  # rows x times x inputs x states per array call (bounds memory)


@dataclass(frozen=True)
class BatchFit:
    """One MAP fit: the mode, its objective and NONMEM-style OFV, the check and the predictions."""

    etas: np.ndarray
    objective: float
    ofv: float
    converged: bool
    message: str
    predictions: np.ndarray  # at every observation of the twin (not only the fitted ones)


def batchable(model: CompiledModel, twin: Twin) -> bool:
    """Whether this twin can join a :class:`TwinBatch`: the model is on the vectorised closed-form
    path, without occasions or sbml-form errors; the twin has no state resets and no covariate
    change after time 0."""
    if model.card.random_effects.occasions or twin.resets or not twin.doses or not twin.observations:
        return False
    if any(r.needs_sd for r in model.card.residual_error):  # SDs simulated beside the levels
        return False
    if any(t >= 0 for s in twin.covariates.values() for t, _ in s.changes()):
        return False
    return vectorised_system(model) is not None


class TwinBatch:
    """Predictions of several twins at their own observation times, for any rows of ETAs.

    Set up once per batch: parameter vectors, padded dose events and observation times.
    """

    def __init__(self, model: CompiledModel, twins: Sequence[Twin]) -> None:
        vs = vectorised_system(model)
        if vs is None:
            raise Unsupported(f"model {model.card.id} has no vectorised closed-form path")
        if not all(batchable(model, t) for t in twins):
            raise Unsupported("a twin with resets, occasions or time-varying covariates")
        self.vs: VectorisedSystem = vs
        self.model = model
        self.twins = list(twins)
        card = model.card
        lin = vs.lin
        self.eta_names = list(card.random_effects.etas)
        self.eta_idx = np.array([lin.index[e] for e in self.eta_names], dtype=int)
        self.base = np.stack([lin.values_for({n: s.at(0.0) for n, s in t.covariates.items()}) for t in twins])
        obs_ids = [o.id for o in card.observables]
        n_obs = np.array([len(t.observations) for t in twins])
        T = int(n_obs.max())
        self.n_obs = n_obs
        self.times = np.zeros((len(twins), T))
        self.obs_row = np.zeros((len(twins), T), dtype=int)
        for p, t in enumerate(twins):
            k = len(t.observations)
            self.times[p, :k] = [o.time_h for o in t.observations]
            self.times[p, k:] = self.times[p, k - 1]
            self.obs_row[p, :k] = [obs_ids.index(o.observable) for o in t.observations]
        self.inputs = list(card.dosing)
        E = max(len(t.doses) for t in twins)
        self.ev_time = np.zeros((len(twins), E))
        self.ev_amount = np.zeros((len(twins), E))
        self.ev_given = np.full((len(twins), E), np.nan)  # given duration; NaN: none given
        self.ev_input = np.zeros((len(twins), E), dtype=int)
        for p, t in enumerate(twins):
            for e, d in enumerate(t.doses):
                self.ev_time[p, e] = d.time_h
                self.ev_amount[p, e] = d.amount
                self.ev_given[p, e] = np.nan if d.duration_h is None else d.duration_h
                self.ev_input[p, e] = self.inputs.index(d.input)
        self.B = np.stack([lin.B[i.target] for i in self.inputs])  # (inputs, states)
        self.has_dp = np.array([i.duration_parameter is not None for i in self.inputs])

    def _param(self, allv: np.ndarray, ref: float | str | None, default: float) -> np.ndarray:
        if ref is None:
            return np.full(len(allv), default)
        if isinstance(ref, str):
            return allv[:, self.vs.lin.index[ref]]
        return np.full(len(allv), float(ref))

    def _events(self, owner: np.ndarray, allv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input start times (m,E), state vectors (m,E,n; amount or rate), durations (m,E; 0 bolus),
        as :class:`interop.twin.linear.LinearPredictor` builds them for one twin."""
        ii = self.ev_input[owner]
        col = {
            "f": np.stack([self._param(allv, i.bioavailability, 1.0) for i in self.inputs], axis=1),
            "lag": np.stack([self._param(allv, i.lag_time_h, 0.0) for i in self.inputs], axis=1),
            "dp": np.stack([self._param(allv, i.duration_parameter, np.nan) for i in self.inputs], axis=1),
        }
        f, lag, dp = (np.take_along_axis(col[k], ii, axis=1) for k in ("f", "lag", "dp"))
        dur = self.ev_given[owner]
        dur = np.where(np.isnan(dur) & self.has_dp[ii], dp, dur)
        dur = np.where(np.isnan(dur) | (dur <= 0), 0.0, dur)
        dose = self.ev_amount[owner] * f
        per = np.where(dur > 0, dose / np.where(dur > 0, dur, 1.0), dose)
        et = self.ev_time[owner] + lag
        if np.any(et < 0):
            raise TwinError("a dose falls before the twin's origin")
        return et, per[:, :, None] * self.B[ii], dur

    def predict(self, owner: np.ndarray, etas: np.ndarray) -> np.ndarray:
        """Predictions (m, T) of twin ``owner[r]`` with ETAs ``etas[r]`` at its observation times
        (padded columns repeat the last time); NaN where the parameters are not finite."""
        owner = np.asarray(owner, dtype=int)
        m, T = len(owner), self.times.shape[1]
        out = np.full((m, T), np.nan)
        per_row = max(1, T * self.ev_time.shape[1] * self.vs.lin.n)
        block = max(1, _BLOCK_ELEMENTS // per_row)
        for lo in range(0, m, block):
            rows = slice(lo, min(m, lo + block))
            o = owner[rows]
            values = self.base[o].copy()
            values[:, self.eta_idx] = etas[rows]
            A, g0, C, c0, allv = self.vs.matrices(values)
            ok = (
                np.isfinite(A).all(axis=(1, 2))
                & np.isfinite(C).all(axis=(1, 2))
                & np.isfinite(allv).all(axis=1)
            )
            if not ok.any():
                continue
            sel = np.flatnonzero(ok)
            et, ev, dur = self._events(o[sel], allv[sel])
            with np.errstate(all="ignore"):
                y = solve_inputs(A[sel], g0[sel], C[sel], c0[sel], et, ev, dur, self.times[o[sel]])
            picked = np.take_along_axis(y, self.obs_row[o[sel]][:, None, :], axis=1)[:, 0, :]
            out[lo + sel] = picked
        return out


class _Terms:
    """Every twin's residual terms padded to one length (rows: twins)."""

    def __init__(self, batch: TwinBatch) -> None:
        card = batch.model.card
        T = batch.times.shape[1]
        P = len(batch.twins)
        self.full: list[ResidualTerms] = [residual_terms(card, t.observations) for t in batch.twins]
        self.y = np.ones((P, T))
        self.kind = np.zeros((P, T), dtype=int)
        self.a = np.zeros((P, T))
        self.b = np.zeros((P, T))
        self.c = np.zeros((P, T))
        self.blq = np.zeros((P, T), dtype=bool)
        self.lloq = np.ones((P, T))
        for p, r in enumerate(self.full):
            k = len(r.y)
            self.y[p, :k], self.kind[p, :k], self.a[p, :k], self.b[p, :k] = r.y, r.kind, r.a, r.b
            self.c[p, :k], self.blq[p, :k] = r.c, r.blq
            self.lloq[p, :k] = np.where(r.blq, r.lloq, 1.0)

    def subset(self, p: int, k: int) -> ResidualTerms:
        return self.full[p].subset(k)

    def objective(
        self, pat: np.ndarray, k: np.ndarray, F: np.ndarray, E: np.ndarray, omega_inv: np.ndarray
    ) -> np.ndarray:
        """The MAP objective (:func:`interop.twin.objective.objective_value`) of each row of
        ``F`` (G,S,T) and ``E`` (G,S,n), for twin ``pat[g]`` on its first ``k[g]`` levels; +inf
        where a fitted prediction is not finite."""
        T = F.shape[2]
        mask = (np.arange(T)[None, :] < k[:, None])[:, None, :]
        g = lambda a: a[pat][:, None, :]  # noqa: E731
        kind, blq = g(self.kind), g(self.blq)
        finite = np.all(np.isfinite(F) | ~mask, axis=2)
        with np.errstate(all="ignore"):
            f = np.where(mask, np.nan_to_num(F, nan=1.0), 1.0)
            prior = np.einsum("gsi,ij,gsj->gs", E, omega_inv, E)
            expo = (kind == 3) & mask
            penalty = np.any(expo & (f <= 0), axis=2)
            f = np.where(expo, np.log(np.where(expo & (f > 0), f, 1.0)), f)
            y = np.where(expo & ~blq, np.log(np.where(expo & ~blq, g(self.y), 1.0)), g(self.y))
            lloq = np.where(expo & blq, np.log(np.where(expo & blq, g(self.lloq), 1.0)), g(self.lloq))
            var = np.maximum(residual_variance(kind, g(self.a), g(self.b), g(self.c), f), _VAR_FLOOR)
            q = mask & ~blq
            total = np.sum(np.where(q, np.log(var) + (y - f) ** 2 / var, 0.0), axis=2)
            b = mask & blq
            if b.any():
                total -= 2.0 * np.sum(np.where(b, log_ndtr((lloq - f) / np.sqrt(var)), 0.0), axis=2)
            total = np.where(penalty, _PENALTY, total) + prior
        return np.where(finite & np.isfinite(total), total, np.inf)


def _stencil(n: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Offsets: centre, +-h_g e_i, +-h_H e_i, then h_H(+-e_i +-e_j) per pair i < j."""
    eye = np.eye(n)
    pts = [np.zeros(n), *(_GRAD_STEP * eye), *(-_GRAD_STEP * eye), *(_HESS_STEP * eye), *(-_HESS_STEP * eye)]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for i, j in pairs:
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            pts.append(_HESS_STEP * (si * eye[i] + sj * eye[j]))
    return np.array(pts), pairs


def _other_pieces(
    twin: Twin, names: Sequence[str], omega: np.ndarray, mode: np.ndarray, moving: Sequence[int], k: int
) -> bool:
    """Whether an event-time ETA cuts the objective on the first ``k`` levels into pieces other
    than the one holding ``mode`` (where another local mode may lie)."""
    times = [o.time_h for o in twin.observations[:k]]
    return any(len(segment_midpoints(twin, names, omega, mode, j, times)) for j in moving)


def fit_batch(batch: TwinBatch, fits: Sequence[tuple[int, int]], *, starts: int = 3) -> list[BatchFit | None]:
    """MAP fits of twin ``p`` on its first ``k`` levels for each ``(p, k)`` in ``fits``; None where
    this path cannot vouch for the fit (the caller then runs ``estimate_map``)."""
    card = batch.model.card
    omega = occasion_omega(card)
    omega_inv = np.linalg.inv(omega)
    _, logdet_omega = np.linalg.slogdet(omega)
    terms = _Terms(batch)
    n = len(batch.eta_names)
    S, pairs = _stencil(n)
    ns = len(S)
    nf = len(fits)
    fit_pat = np.array([p for p, _ in fits], dtype=int)
    fit_k = np.array([k for _, k in fits], dtype=int)
    if np.any(fit_k < 1) or np.any(fit_k > batch.n_obs[fit_pat]):
        raise ValueError("each fit needs 1 <= k <= the twin's number of levels")
    draws = {p: _starts(batch.twins[p], omega, starts) for p in set(fit_pat.tolist())}
    moving = {p: event_time_etas(batch.twins[p], batch.eta_names, omega) for p in draws}
    G = nf * starts
    g_fit = np.repeat(np.arange(nf), starts)
    g_start = np.tile(np.arange(starts), nf)
    x = np.stack([draws[int(fit_pat[f])][s] for f, s in zip(g_fit, g_start, strict=True)])
    active = np.ones(G, dtype=bool)
    done = np.zeros(G, dtype=bool)
    failed = np.zeros(G, dtype=bool)
    O_at = np.full(G, np.inf)
    grad = np.zeros((G, n))
    hess = np.zeros((G, n, n))
    f_at = np.zeros((G, batch.times.shape[1]))
    jac = np.zeros((G, n, batch.times.shape[1]))
    first = True
    for _ in range(_MAX_ITERATIONS):
        act = np.flatnonzero(active)
        if not len(act):
            break
        pts = x[act][:, None, :] + S[None, :, :]  # (a, ns, n)
        pat = fit_pat[g_fit[act]]
        F = batch.predict(np.repeat(pat, ns), pts.reshape(-1, n)).reshape(len(act), ns, -1)
        obj = terms.objective(pat, fit_k[g_fit[act]], F, pts, omega_inv)
        o0 = obj[:, 0]
        op, om = obj[:, 1 : 1 + n], obj[:, 1 + n : 1 + 2 * n]
        hp, hm = obj[:, 1 + 2 * n : 1 + 3 * n], obj[:, 1 + 3 * n : 1 + 4 * n]
        with np.errstate(all="ignore"):
            g = (op - om) / (2 * _GRAD_STEP)
            d2g = (op - 2 * o0[:, None] + om) / _GRAD_STEP**2
            H = np.zeros((len(act), n, n))
            H[:, np.arange(n), np.arange(n)] = (hp - 2 * o0[:, None] + hm) / _HESS_STEP**2
            for c, (i, j) in enumerate(pairs):
                b = 1 + 4 * n + 4 * c
                H[:, i, j] = H[:, j, i] = (obj[:, b] - obj[:, b + 1] - obj[:, b + 2] + obj[:, b + 3]) / (
                    4 * _HESS_STEP**2
                )
            diag = H[:, np.arange(n), np.arange(n)]
            noise = 64 * np.finfo(float).eps * (1 + np.abs(o0)) / _GRAD_STEP**2
            kink = np.any(np.abs(d2g - diag) > 0.02 * (np.abs(diag) + 1) + noise[:, None], axis=1)
        bad = ~np.all(np.isfinite(obj), axis=1) | kink
        if first:  # BFGS would not move from ETA = 0 here: leave it to estimate_map's rescue
            bad |= (g_start[act] == 0) & (np.max(np.abs(g), axis=1) <= _BFGS_GTOL)
            first = False
        failed[act[bad]] = True
        active[act[bad]] = False
        keep = ~bad
        act, g, H, o0 = act[keep], g[keep], H[keep], o0[keep]
        F = F[keep]
        O_at[act], grad[act], hess[act], f_at[act] = o0, g, H, F[:, 0]
        jac[act] = (F[:, 1 : 1 + n] - F[:, 1 + n : 1 + 2 * n]) / (2 * _GRAD_STEP)
        if not len(act):
            continue
        lam, vec = np.linalg.eigh(H)
        floor = np.maximum(1e-4 * np.abs(lam).max(axis=1, keepdims=True), 1e-8)
        lam = np.maximum(np.abs(lam), floor)
        d = -np.einsum("aij,aj,akj,ak->ai", vec, 1 / lam, vec, g)
        big = np.max(np.abs(d), axis=1)
        d *= np.minimum(1.0, 1.0 / np.maximum(big, 1e-300))[:, None]  # at most 1 in any ETA
        step = np.max(np.abs(d), axis=1)
        conv = step <= _STEP_TOL
        done[act[conv]] = True
        active[act[conv]] = False
        search = ~conv & (step > 1e-3)
        x[act[~conv & ~search]] += d[~conv & ~search]
        if search.any():
            sa, sd, sg, so = act[search], d[search], g[search], o0[search]
            cand = x[sa][:, None, :] + _ALPHAS[None, :, None] * sd[:, None, :]
            spat = fit_pat[g_fit[sa]]
            Fc = batch.predict(np.repeat(spat, len(_ALPHAS)), cand.reshape(-1, n)).reshape(
                len(sa), len(_ALPHAS), -1
            )
            Oc = terms.objective(spat, fit_k[g_fit[sa]], Fc, cand, omega_inv)
            slope = np.einsum("ai,ai->a", sg, sd)
            ok = Oc <= so[:, None] + 1e-4 * _ALPHAS[None, :] * slope[:, None]
            found = ok.any(axis=1)
            pick = np.argmax(ok, axis=1)
            x[sa[found]] = cand[found, pick[found]]
            failed[sa[~found]] = True
            active[sa[~found]] = False
    failed |= active  # no convergence within the iterations
    out: list[BatchFit | None] = []
    for f in range(nf):
        rows = np.flatnonzero(g_fit == f)
        if failed[rows].any():
            out.append(None)
            continue
        r0 = rows[g_start[rows] == 0][0]
        best = r0
        low = rows[np.argmin(O_at[rows])]
        if O_at[low] < O_at[r0] - 1e-6:
            best = low
        converged, why = check_mode(grad[best], hess[best])
        if not converged:
            out.append(None)
            continue
        p, k = int(fit_pat[f]), int(fit_k[f])
        if moving[p] and _other_pieces(batch.twins[p], batch.eta_names, omega, x[best], moving[p], k):
            out.append(None)  # estimate_map searches the other pieces of the objective
            continue
        info = laplace_information(terms.subset(p, k), f_at[best, :k], jac[best, :, :k].T, omega_inv)
        _, logdet_info = np.linalg.slogdet(info)
        message = "Newton (batched closed form) converged"
        try:
            np.linalg.inv(info)
        except np.linalg.LinAlgError:
            converged = False
            message += "; singular information matrix"
        out.append(
            BatchFit(
                etas=x[best].copy(),
                objective=float(O_at[best]),
                ofv=float(O_at[best] + logdet_omega + logdet_info),
                converged=converged,
                message=message,
                predictions=f_at[best, : batch.n_obs[p]].copy(),
            )
        )
    return out
