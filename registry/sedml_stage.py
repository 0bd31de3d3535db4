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
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from interop.errors import InteropError
from interop.schema import ModelCard, ReferenceOutput
from registry.safexml import check_xml
from registry.validation import Issue, StageResult

__all__ = [
    "SedmlRun",
    "compare_tables",
    "evidence_digests",
    "reported_outputs",
    "resolve_reference_outputs",
    "run_sedml",
    "sedml_run_stage",
    "sedml_stage",
    "sedml_stage_result",
]

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


_EVIDENCE = re.compile(r"^(?:data set|plot) \S+ sha256 (?P<sha>[0-9a-f]{64})$")


def evidence_digests(stages: list[dict[str, Any]]) -> set[str]:
    """The SHA-256 of every evidence blob a stored report's SED-ML stage lists (kept by gc, backed up)."""
    return {
        m.group("sha")
        for stage in stages
        if stage.get("name") == "sedml"
        for issue in stage.get("issues", ())
        if (m := _EVIDENCE.match(str(issue.get("message", "")))) is not None
    }


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
    done = sedml_run_stage(files, put, timeout_s=timeout_s)
    return None if done is None else done[0]


def archive_of(files: list[tuple[str, bytes]]) -> bytes | None:
    """The submitted COMBINE archive of a version whose files are ``(role, bytes)``, if it has SED-ML."""
    roles = {role for role, _ in files}
    source = next((data for role, data in files if role == "source" and data[:4] == b"PK\x03\x04"), None)
    return source if "sedml" in roles else None


def sedml_run_stage(files: list[tuple[str, bytes]], put: Callable[[bytes], str], *,
                    timeout_s: float = 120.0) -> tuple[StageResult, SedmlRun, bytes] | None:  # fmt: skip
    """:func:`sedml_stage` with the run and the archive, for resolving the card's SED-ML references."""
    source = archive_of(files)
    if source is None:
        return None
    run = run_sedml(source, timeout_s=timeout_s)
    digests = {name: put(data) for name, data in {**run.datasets, **run.plots}.items()}
    return sedml_stage_result(run, reported_outputs(source), digests), run, source


def _data_set_labels(omex: bytes) -> dict[tuple[str, str], dict[str, str]]:
    """(SED-ML file stem, report id) -> {data set id: label} for every SED-ML file of the archive."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    with zipfile.ZipFile(io.BytesIO(omex)) as zf:
        for name in zf.namelist():
            if not name.lower().endswith((".sedml", ".xml")):
                continue
            data = zf.read(name)
            if b"sedML" not in data[:2048]:
                continue
            check_xml(data, source=name)
            root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
            for report in root.iter("{*}report"):
                sets = report.iter("{*}dataSet")
                labels = {d.get("id", ""): d.get("label") or d.get("id", "") for d in sets}
                out[(Path(name).stem, report.get("id", ""))] = labels
    return out


def _resolve_one(ref: ReferenceOutput, run: SedmlRun, labels: dict[tuple[str, str], dict[str, str]]
                 ) -> ReferenceOutput | str:  # fmt: skip
    """``ref`` with times and values from its SED-ML report, or why that cannot be done."""
    sed = ref.sedml
    assert sed is not None
    where = f"reference output '{ref.description or ref.observable}' (SED-ML report {sed.report})"
    stem = Path(sed.document).stem if sed.document else None
    keys = [k for k in labels if k[1] == sed.report and stem in (None, k[0])]
    if len(keys) != 1:
        found = "no SED-ML file of the archive has it" if not keys else "several SED-ML files have it"
        return f"{where}: {found}"
    key = keys[0]
    data = run.datasets.get(f"{key[0]}_{key[1]}.csv")
    if data is None:
        why = run.error or "Tellurium wrote no data for it"
        return f"{where}: the SED-ML run produced no report {key[1]} ({why})"
    table = _table(data)
    columns = {}
    for wanted in (sed.time_data_set, sed.data_set):
        label = labels[key].get(wanted, wanted)
        if label not in table:
            return f"{where}: the report has no data set '{wanted}' (it has {', '.join(table)})"
        columns[wanted] = table[label]
    times, values = columns[sed.time_data_set], columns[sed.data_set]
    rows = [(t, v) for t, v in zip(times, values, strict=False) if math.isfinite(t) and math.isfinite(v)]
    if ref.times_h:
        picked = []
        for want in ref.times_h:
            hit = next((r for r in rows if math.isclose(r[0], want, rel_tol=1e-9, abs_tol=1e-9)), None)
            if hit is None:
                return f"{where}: the report has no row at time {want:g} h"
            picked.append(hit)
        rows = picked
    if not rows:
        return f"{where}: the report's data set '{sed.data_set}' has no finite values"
    return ref.model_copy(update={"times_h": tuple(r[0] for r in rows), "values": tuple(r[1] for r in rows)})


def resolve_reference_outputs(card: ModelCard, run: SedmlRun | None, omex: bytes | None
                              ) -> tuple[ModelCard, list[str]]:  # fmt: skip
    """The card with each reference output that points at a SED-ML report filled from the SED-ML
    run (times and values of the named data sets), and a problem for each that cannot be filled
    (those stay unresolved, so the reproduce stage fails on them rather than skip them)."""
    if not any(r.sedml is not None for r in card.reference_outputs):
        return card, []
    problems: list[str] = []
    try:
        labels = _data_set_labels(omex) if omex is not None else {}
    except (InteropError, etree.XMLSyntaxError, zipfile.BadZipFile) as exc:
        labels = {}
        problems.append(f"the archive's SED-ML cannot be read for its reports: {exc}")
    refs = []
    for ref in card.reference_outputs:
        if ref.sedml is None:
            refs.append(ref)
            continue
        if run is None:
            problems.append(f"reference output '{ref.description or ref.observable}' points at SED-ML report "
                            f"{ref.sedml.report}, but the version is not an archive with SED-ML")  # fmt: skip
            refs.append(ref)
            continue
        done = _resolve_one(ref, run, labels)
        if isinstance(done, str):
            problems.append(done)
            refs.append(ref)
        else:
            refs.append(done)
    return card.model_copy(update={"reference_outputs": tuple(refs)}), problems
