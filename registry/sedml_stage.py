"""The ``sedml`` validation stage: run an archive's SED-ML experiments with Tellurium (issue 14).

Tellurium is the field's SED-ML runner; it executes each task and writes every report as CSV
and every plot as PNG. It runs in a child process that is

- time-bound (``timeout_s``; a hung run is killed and reported, the validation goes on),
- cut off from the network (a new network namespace with ``unshare -n`` where the kernel allows
  it, and in any case Python's sockets refused before Tellurium is imported), and
- confined to a temporary directory (its working and output directory; the archive is copied
  there, the environment is emptied, ``HOME`` points there, and file opens outside it are refused
  by an audit hook).

The data sets and plots become the stage's evidence (stored as blobs, listed with their SHA-256 in
the stage's issues, which ``registry show`` prints). When the archive carries its own outputs
(a CSV named like a report), the stage compares them and fails on a difference above ``rtol``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from registry.validation import Issue, StageResult

__all__ = ["SedmlRun", "compare_tables", "reported_outputs", "run_sedml", "sedml_stage", "sedml_stage_result"]

_CHILD = r"""
import os, socket, sys
root = os.path.realpath(sys.argv[3])
def _no_net(*a, **k):
    raise OSError("network access is disabled in the SED-ML sandbox")
socket.socket = _no_net
socket.create_connection = _no_net
_allowed = (root, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), "/usr", "/lib",
            "/etc", "/proc", "/dev", "/sys", "/tmp")
def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        path = os.path.realpath(os.fsdecode(args[0]))
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        writing = any(c in mode for c in "wax+")
        if writing and not path.startswith(root):
            raise PermissionError(f"the SED-ML sandbox may not write {path}")
        if not path.startswith(_allowed):
            raise PermissionError(f"the SED-ML sandbox may not read {path}")
sys.addaudithook(_hook)
import matplotlib
matplotlib.use("Agg")
import tellurium as te
from tellurium.sedml import tesedml
_init = tesedml.SEDMLCodeFactory.__init__
def _png(self, *a, **k):  # Tellurium saves plots as PDF; the registry keeps PNG
    _init(self, *a, **k)
    self.plotFormat = "png"
tesedml.SEDMLCodeFactory.__init__ = _png
te.executeCombineArchive(sys.argv[1], workingDir=os.path.join(root, "work"), createOutputs=True,
                         saveOutputs=True, outputDir=sys.argv[2], plottingEngine="matplotlib")
"""


@dataclass(frozen=True)
class SedmlRun:
    """What a run produced: report CSVs and plot PNGs by file name, and what went wrong."""

    datasets: dict[str, bytes] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def run_sedml(omex: bytes, *, timeout_s: float = 120.0) -> SedmlRun:
    """Execute every SED-ML file of the archive ``omex`` in the sandbox described above."""
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="sedml-"))
    try:
        archive = tmp / "archive.omex"
        archive.write_bytes(omex)
        out = tmp / "out"
        out.mkdir()
        (tmp / "work").mkdir()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "TMPDIR": str(tmp), "MPLCONFIGDIR": str(tmp),
               "MPLBACKEND": "Agg"}  # fmt: skip
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        cmd = [sys.executable, "-I", "-c", _CHILD, str(archive), str(out), str(tmp)]
        if shutil.which("unshare") and _can_unshare():
            cmd = ["unshare", "-n", *cmd]
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return SedmlRun(error=f"the SED-ML run took longer than {timeout_s:g} s and was stopped",
                            seconds=time.perf_counter() - t0)  # fmt: skip
        datasets = {p.name: p.read_bytes() for p in sorted(out.rglob("*.csv"))}
        plots = {p.name: p.read_bytes() for p in sorted(out.rglob("*.png"))}
        error = None
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            error = f"Tellurium failed: {lines[-1] if lines else f'exit code {proc.returncode}'}"
        return SedmlRun(datasets, plots, error, time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_UNSHARE: list[bool] = []


def _can_unshare() -> bool:
    if not _UNSHARE:
        try:
            ok = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        _UNSHARE.append(ok)
    return _UNSHARE[0]


def _table(data: bytes) -> dict[str, list[float]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", "replace"))))
    if not rows:
        return {}
    head = [h.strip() for h in rows[0]]
    out: dict[str, list[float]] = {h: [] for h in head}
    for row in rows[1:]:
        for h, v in zip(head, row, strict=False):
            try:
                out[h].append(float(v))
            except ValueError:
                out[h].append(math.nan)
    return out


def compare_tables(ours: bytes, theirs: bytes) -> float:
    """The largest relative difference over the columns both tables have (inf: nothing comparable)."""
    a, b = _table(ours), _table(theirs)
    worst, seen = 0.0, False
    for col in set(a) & set(b):
        for x, y in zip(a[col], b[col], strict=False):
            if math.isnan(x) and math.isnan(y):
                continue
            seen = True
            worst = max(worst, abs(x - y) / max(abs(y), 1e-12))
    return worst if seen else math.inf


def reported_outputs(omex: bytes) -> dict[str, bytes]:
    """CSV files the archive carries itself (the authors' reported outputs), by file name."""
    with zipfile.ZipFile(io.BytesIO(omex)) as zf:
        return {Path(n).name: zf.read(n) for n in zf.namelist() if n.lower().endswith(".csv")}


def sedml_stage_result(run: SedmlRun, reported: dict[str, bytes], digests: dict[str, str],
                       rtol: float = 1e-3) -> StageResult:  # fmt: skip
    """The stage's result: evidence listed (name, SHA-256), reported outputs compared."""
    issues: list[Issue] = []
    if run.error is not None:
        issues.append(Issue("warning", run.error, "sedml"))
    for name in run.datasets:
        issues.append(Issue("info", f"data set {name} sha256 {digests.get(name, '?')}", "sedml"))
    for name in run.plots:
        issues.append(Issue("info", f"plot {name} sha256 {digests.get(name, '?')}", "sedml"))
    failed = False
    for name, theirs in reported.items():
        ours = run.datasets.get(name)
        if ours is None:
            continue
        diff = compare_tables(ours, theirs)
        ok = diff <= rtol
        failed |= not ok
        message = f"{name}: max relative difference to the archive's output {diff:.3g} (tolerance {rtol:g})"
        issues.append(Issue("info" if ok else "error", message, "sedml"))
    if failed:
        status = "failed"
    elif run.error is not None:
        status = "warning" if run.datasets or run.plots else "skipped"
    else:
        status = "passed"
    return StageResult("sedml", status, tuple(issues), run.seconds)  # type: ignore[arg-type]


def sedml_stage(files: list[tuple[str, bytes]], put: Callable[[bytes], str], *,
                timeout_s: float = 120.0) -> StageResult | None:  # fmt: skip
    """The stage for a version whose files are ``(role, bytes)``: None unless it came as an archive
    with SED-ML; ``put`` stores an evidence blob and returns its SHA-256."""
    roles = {role for role, _ in files}
    source = next((data for role, data in files if role == "source" and data[:4] == b"PK\x03\x04"), None)
    if "sedml" not in roles or source is None:
        return None
    run = run_sedml(source, timeout_s=timeout_s)
    digests = {name: put(data) for name, data in {**run.datasets, **run.plots}.items()}
    return sedml_stage_result(run, reported_outputs(source), digests)
