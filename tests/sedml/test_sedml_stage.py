"""The registry runs an archive's SED-ML with Tellurium: data sets and PNG plots as evidence."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from registry.sedml_stage import compare_tables, run_sedml, sedml_stage_result
from tests.data import ROOT
from tests.sedml.archive import sedml_archive


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTEROP_HOME": str(home)}
    env.pop("INTEROP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "interop", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )


def test_tellurium_runs_the_experiment_and_matches_the_closed_form() -> None:
    run = run_sedml(sedml_archive(dose=100.0), timeout_s=300)
    assert run.error is None
    assert list(run.plots) == ["experiment_plot1.png"]
    assert run.plots["experiment_plot1.png"][:8] == b"\x89PNG\r\n\x1a\n"
    rows = [
        [float(x) for x in line.split(",")]
        for line in run.datasets["experiment_report1.csv"].decode().splitlines()[1:]
    ]
    # gentamicin_1cmt at its defaults: CRCL = 90*70/72 mL/min, CL = 5*CRCL/100 L/h, V = 20 L
    k = 5 * (90 * 70 / 72) / 100 / 20
    for t, amount, conc in rows:
        assert math.isclose(amount, 100 * math.exp(-k * t), rel_tol=1e-4)
        assert math.isclose(conc, amount / 20, rel_tol=1e-9)
    # a reported output equal to ours passes, a changed one fails the stage
    same = sedml_stage_result(run, {"experiment_report1.csv": run.datasets["experiment_report1.csv"]}, {})
    assert same.status == "passed"
    changed = run.datasets["experiment_report1.csv"].replace(b"100.0", b"90.0", 1)
    assert compare_tables(run.datasets["experiment_report1.csv"], changed) > 0.1
    assert sedml_stage_result(run, {"experiment_report1.csv": changed}, {}).status == "failed"


def test_a_hanging_run_is_stopped() -> None:
    run = run_sedml(sedml_archive(), timeout_s=0.5)
    assert run.error is not None and "was stopped" in run.error
    assert sedml_stage_result(run, {}, {}).status == "skipped"


def test_registry_validation_stores_plots_and_show_lists_them(tmp_path: Path) -> None:
    omex = tmp_path / "experiment.omex"
    omex.write_bytes(sedml_archive())
    home = tmp_path / "home"
    r = _run(home, "registry", "submit", str(omex), "--id", "sedml-example")
    assert r.returncode == 0, r.stdout + r.stderr
    shown = " ".join(_run(home, "registry", "show", "sedml-example").stdout.split())
    assert "sedml" in shown
    assert "plot experiment_plot1.png sha256" in shown
    assert "data set experiment_report1.csv sha256" in shown


def test_gc_and_backup_keep_the_evidence_blobs(tmp_path: Path) -> None:
    """The SED-ML stage's data sets and plots are named only by the stored report: gc must keep them."""
    from registry import open_registry
    from registry.maintenance import blob_digests
    from registry.sedml_stage import evidence_digests

    reg = open_registry(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "blobs")
    try:
        stored = reg.submit_file(sedml_archive(), filename="experiment.omex", model_id="sedml-example")
        report = reg.validate("sedml-example", stored.version)
        evidence = evidence_digests(report.to_dicts())
        assert len(evidence) >= 2  # a data set and a plot
        reg.collect_garbage(grace_s=0)
        assert all(reg.blobs.get(sha) for sha in evidence)
        with reg.readers() as s:
            assert evidence <= set(blob_digests(s))
    finally:
        reg.close()
