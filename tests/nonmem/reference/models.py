"""The published models of ``examples/nonmem/published/`` written again as equations (not converted).

Each function mirrors one control stream's ``$PK``/``$DES``/``$ERROR`` by hand, from the
publication's structure, so that a conversion error in SBML, card or binding shows up as a
disagreement rather than being shared by both sides.
"""

from __future__ import annotations

import math

import numpy as np

from tests.nonmem.reference.engine import Dosing, Params, RefModel

__all__ = ["MODELS"]


def _two_cmt_oral(p: Params) -> np.ndarray:
    """Depot, central, peripheral (ADVAN4): amounts in mg, times in h."""
    ka, cl, v2, q, v3 = p["KA"], p["CL"], p["V2"], p["Q"], p["V3"]
    return np.array([[-ka, 0.0, 0.0], [ka, -(cl + q) / v2, q / v3], [0.0, q / v2, -q / v3]])


def _tacrolimus_lag() -> RefModel:
    omega = np.diag([0.1283, 0.4627, 0.2120, 0.3931])

    def params(eta: np.ndarray, _items: dict[str, float]) -> Params:
        return {"CL": 19.7 * math.exp(eta[0]), "V2": 234 * math.exp(eta[1]), "Q": 52.6 * math.exp(eta[2]),
                "V3": 403.0, "KA": 4.21 * math.exp(eta[3]), "LAG": 0.828}  # fmt: skip

    return RefModel(
        name="tacrolimus_lag",
        n_states=3,
        omega=omega,
        params=params,
        dosing=lambda p, cmt: Dosing(0, 1.0, p["LAG"]),
        predict=lambda a, p, cmt: a[1] / (p["V2"] / 1000),  # mg in L -> ug/L
        variance=lambda f, cmt: 0.0081 * f * f,
        matrix=_two_cmt_oral,
    )


def _tacrolimus_iov() -> RefModel:
    omega = np.diag([0.1389, 0.2168, 0.4820, 0.2476, 0.0183, 0.0183, 0.0183])

    def params(eta: np.ndarray, items: dict[str, float]) -> Params:
        occ = int(items["OCC"])
        iov = eta[3 + occ] if 1 <= occ <= 3 else 0.0
        cl, v2, q, v3 = (23.0 * math.exp(eta[0] + iov), 692 * math.exp(eta[1]), 11.6 * math.exp(eta[2]),
                         5340 * math.exp(eta[3]))  # fmt: skip
        return {"CL": cl, "V2": v2, "Q": q, "V3": v3, "KA": 3.58, "LAG": 0.38}

    return RefModel(
        name="tacrolimus_iov",
        n_states=3,
        omega=omega,
        params=params,
        dosing=lambda p, cmt: Dosing(0, 1.0, p["LAG"]),
        predict=lambda a, p, cmt: a[1] / (p["V2"] / 1000),
        variance=lambda f, cmt: 0.88**2 + (0.177 * f) ** 2,
        matrix=_two_cmt_oral,
    )


def _phenytoin_mm() -> RefModel:
    omega = np.diag([0.1336, 1.3584, 0.1088])

    def params(eta: np.ndarray, _items: dict[str, float]) -> Params:
        return {"VMAX": 19.3 * math.exp(eta[0]), "KM": 5.0 * math.exp(eta[1]), "V": 78.6 * math.exp(eta[2]),
                "KA": 0.459}  # fmt: skip

    def rhs(a: np.ndarray, p: Params) -> np.ndarray:
        c = a[1] / p["V"]
        return np.array([-p["KA"] * a[0], p["KA"] * a[0] - p["VMAX"] * c / (p["KM"] + c)])

    return RefModel(
        name="phenytoin_mm",
        n_states=2,
        omega=omega,
        params=params,
        dosing=lambda p, cmt: Dosing(0, 0.859, 0.0),
        predict=lambda a, p, cmt: a[1] / p["V"],
        variance=lambda f, cmt: 0.02924 * f * f,
        rhs=rhs,
    )


def _parent_metabolite() -> RefModel:
    omega = np.diag([0.09, 0.04, 0.09, 0.04])

    def params(eta: np.ndarray, _items: dict[str, float]) -> Params:
        return {"CL": 8 * math.exp(eta[0]), "V": 40 * math.exp(eta[1]), "CLM": 4 * math.exp(eta[2]),
                "VM": 25 * math.exp(eta[3])}  # fmt: skip

    def matrix(p: Params) -> np.ndarray:
        k, km = p["CL"] / p["V"], p["CLM"] / p["VM"]
        return np.array([[-k, 0.0], [k, -km]])

    return RefModel(
        name="parent_metabolite",
        n_states=2,
        omega=omega,
        params=params,
        dosing=lambda p, cmt: Dosing(0),
        predict=lambda a, p, cmt: a[0] / p["V"] if cmt == 1 else a[1] / p["VM"],
        variance=lambda f, cmt: (0.01 if cmt == 1 else 0.0144) * f * f,
        matrix=matrix,
    )


def _phenobarbital_tvcov() -> RefModel:
    omega = np.diag([0.0293508, 0.027906])

    def params(eta: np.ndarray, items: dict[str, float]) -> Params:
        wgt = items["WGT"]
        tvv = 0.984258 * wgt * (1 + 0.15892 if items["APGR"] < 5 else 1.0)
        return {"CL": 0.00469555 * wgt * math.exp(eta[0]), "V": tvv * math.exp(eta[1])}

    return RefModel(
        name="phenobarbital_tvcov",
        n_states=1,
        omega=omega,
        params=params,
        dosing=lambda p, cmt: Dosing(0),
        predict=lambda a, p, cmt: a[0] / p["V"],
        variance=lambda f, cmt: 0.013241 * f * f,
        matrix=lambda p: np.array([[-p["CL"] / p["V"]]]),
    )


def _tacrolimus_lag_eta() -> RefModel:
    """The lag model with ETA(5) on the lag time (variance 0.1), our stress case."""
    base = _tacrolimus_lag()

    def params(eta: np.ndarray, items: dict[str, float]) -> Params:
        return {**base.params(eta[:4], items), "LAG": 0.828 * math.exp(eta[4])}

    omega = np.diag([*np.diag(base.omega), 0.1])
    return RefModel(**{**base.__dict__, "name": "tacrolimus_lag_eta", "omega": omega, "params": params})


MODELS: dict[str, RefModel] = {
    m.name: m
    for m in (
        _tacrolimus_lag(),
        _tacrolimus_iov(),
        _phenytoin_mm(),
        _parent_metabolite(),
        _phenobarbital_tvcov(),
        _tacrolimus_lag_eta(),
    )
}
# The crossover set uses the lag model's equations on a design with resets (EVID 3 and 4).
MODELS["tacrolimus_crossover"] = RefModel(
    **{**MODELS["tacrolimus_lag"].__dict__, "name": "tacrolimus_crossover"}
)
