"""Reading the DDMoRe repository's twins (NM-TRAN ``$THETA``, NONMEM datasets and tables, the standard
output's tables, MLXTRAN and mrgsolve parameter values) and solving them independently of the
project (scipy's ``solve_ivp`` between dose times), for ``test_ddmore_twins`` and
``test_ddmore_pkpd_twins``. Every reader skips the running test when the corpus is absent."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from interop.schema import ReferenceDose
from interop.twin import bind_regimen, load_model, simulate
from registry.formats.pharmml import convert
from tests.data import require_corpus

RTOL = 1e-5
# NONMEM's predictions are compared to within 2 units of their last printed digit: they are printed
# to 5 significant figures, and so are the ETAs they were computed with (the estimates to 6), whose
# rounding moves a prediction by up to ~1 unit more (meropenem: median 0.23, maximum 1.7 units).
NONMEM_DIGITS = 2
TIMES = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0, 30.0, 36.0, 48.0, 60.0, 72.0])

# --- reading the twins: $THETA of a control stream, tables of a standard output (SO) -------------


def control_stream(path: Path) -> str:
    """The NM-TRAN control stream of ``path``: a control stream, or the echo at the top of a .lst."""
    require_corpus(path)
    text = path.read_text(errors="replace")
    return text.split("NM-TRAN MESSAGES")[0]


def corpus_text(path: Path) -> str:
    """The text of a corpus file (skips the test when it is absent)."""
    require_corpus(path)
    return path.read_text()


def theta_list(control: str) -> list[tuple[float, str]]:
    """``$THETA`` initial estimates in order, each with the label of its comment (``(0,10.0) ; POP_CL``)."""
    out: list[tuple[float, str]] = []
    for block in re.findall(r"^\$THETA(.*?)(?=^\$)", control, re.M | re.S):
        for line in block.splitlines():
            code, _, label = line.partition(";")
            values = [v for v in re.split(r"[\s,()]+", code.replace("FIX", "")) if v]
            if values:
                init = values[0] if len(values) == 1 else values[1]  # (low, init[, up]) or init
                out.append((float(init), label.strip()))
    return out


def thetas(control: str) -> dict[str, float]:
    """``$THETA`` initial estimates by the (last word of the) label of their comment."""
    return {label.split()[-1]: value for value, label in theta_list(control)}


def so_table(path: Path, block: str) -> list[dict[str, str]]:
    """The rows of an SO table (``PopulationEstimates/MLE``, ``EffectMean``, ``Predictions``) as text."""
    require_corpus(path)
    root = ET.parse(path).getroot()
    node = next(e for e in root.iter() if e.tag.split("}")[-1] == block.split("/")[0])
    for part in block.split("/")[1:]:
        node = next(e for e in node.iter() if e.tag.split("}")[-1] == part)
    columns = [c.get("columnId", "") for c in node.iter() if c.tag.endswith("}Column")]
    rows = [e for e in node.iter() if e.tag.endswith("}Row")]
    return [dict(zip(columns, [(v.text or "").strip() for v in row], strict=True)) for row in rows]


def nonmem_table(path: Path) -> list[dict[str, float]]:
    """A NONMEM ``$TABLE`` file (``TABLE NO. 1`` line, header line, rows)."""
    require_corpus(path)
    lines = path.read_text().splitlines()
    header = lines[1].split()
    return [dict(zip(header, map(float, ln.split()), strict=True)) for ln in lines[2:] if ln.strip()]


def dataset(path: Path, control: str) -> list[dict[str, str]]:
    """The data records of a NONMEM dataset, named by the control stream's ``$INPUT`` (a header line
    starting with a letter is skipped, as ``IGNORE=@`` does)."""
    require_corpus(path)
    (items,) = re.findall(r"^\$INPUT(.*?)(?=^\$)", control, re.M | re.S)
    names = [item.split("=")[0] for item in items.split()]
    with path.open(newline="") as fh:
        rows = [row for row in csv.reader(fh) if row and not row[0].strip()[:1].isalpha()]
    return [dict(zip(names, (v.strip() for v in row), strict=True)) for row in rows]


def printed_unit(text: str) -> float:
    """One unit in the last digit of a number as printed (``24.805`` -> 0.001, ``1.2E+01`` -> 0.1)."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


# --- the independent solution: piecewise integration with bolus and infusion doses ---------------


@dataclass(frozen=True)
class Dose:
    """A dose into compartment ``cmt`` (0-based) at ``time``; over ``duration`` when an infusion."""

    time: float
    cmt: int
    amount: float
    duration: float | None = None


Rhs = Callable[[float, np.ndarray], np.ndarray]


def solve(
    rhs: Rhs,
    y0: Sequence[float] | np.ndarray,
    doses: Sequence[Dose],
    times: np.ndarray,
    breaks: Sequence[float] = (),
    start: float = 0.0,
) -> np.ndarray:
    """States at ``times`` (rows), integrated from ``start`` piecewise between dose times, infusion
    ends and ``breaks`` (discontinuities of ``rhs`` in time). A sample at a dose time is taken before
    the dose, as the twin orders them."""
    n = len(y0)
    edges = {start, float(times[-1]), *breaks}
    for d in doses:
        edges |= {d.time} | ({d.time + d.duration} if d.duration else set())
    cuts = sorted(e for e in edges if start <= e <= times[-1])
    out = np.empty((len(times), n))
    y = np.array(y0, dtype=float)
    out[times == start] = y

    def rates(t: float) -> np.ndarray:
        r = np.zeros(n)
        for d in doses:
            if d.duration and d.time <= t < d.time + d.duration:
                r[d.cmt] += d.amount / d.duration
        return r

    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        for d in doses:
            if d.duration is None and d.time == a:
                y[d.cmt] += d.amount
        mid = rates((a + b) / 2)

        def f(t: float, x: np.ndarray, mid: np.ndarray = mid) -> np.ndarray:
            return np.asarray(rhs(t, x), dtype=float) + mid

        inside = (times > a) & (times <= b)
        sol = solve_ivp(f, (a, b), y, method="LSODA", rtol=1e-11, atol=1e-13, dense_output=True)
        assert sol.success, sol.message
        if inside.any():
            out[inside] = sol.sol(times[inside]).T
        y = sol.y[:, -1].copy()
    return out


def close(pred: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> None:
    floor = 1e-6 * float(np.max(np.abs(expected)))  # the solvers' absolute error near 0
    err = np.abs(pred - expected) / np.maximum(np.abs(expected), floor)
    assert float(np.max(err)) <= rtol, f"max relative error {np.max(err):.3g}\n{pred}\n{expected}"


def twin_prediction(
    path: Path,
    doses: Sequence[ReferenceDose],
    covariates: dict[str, float],
    times: np.ndarray = TIMES,
    etas: dict[str, float] | None = None,
    parameters: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Each observable of the twin built from the converted PharmML at ``path``."""
    require_corpus(path)
    conv = convert(path.read_bytes(), source=str(path))
    twin = bind_regimen(load_model(conv.sbml, conv.card), tuple(doses), covariates)
    return simulate(twin, times, etas, parameters).values


def doses_into(regimen: Sequence[ReferenceDose], cmt: dict[str, int]) -> list[Dose]:
    """A twin's regimen as the solution's doses, into the compartment ``cmt`` gives each route."""
    return [Dose(d.time_h, cmt[d.route], d.amount, d.duration_h) for d in regimen]


def subjects_with_predictions(so: Path, ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The SO's prediction rows of each subject in ``ids``."""
    rows = so_table(so, "Predictions")
    return {i: [r for r in rows if r["ID"] == i] for i in ids}


def mlxtran_initial_values(project: str) -> dict[str, float]:
    """``pop_X = value`` of an MLXTRAN project's ``initialValues`` (typical values by parameter)."""
    return {m[1]: float(m[2]) for m in re.finditer(r"\bpop_(\w+)\s*=\s*([-\d.eE+]+)", project)}


def mrgsolve_params(code: str) -> dict[str, float]:
    """The ``[PARAM] @annotated`` values of an mrgsolve model (``TVCL : 168 : Clearance``)."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^\s*(\w+)\s*:\s*([-\d.eE+]+)\s*:", code, re.M)}
