"""The real CLI: synth (in a subprocess, as a user runs it) -> import (Bulk NDJSON + Synthea) ->
export -> import again (in-process, typer's CliRunner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from interop.schema import PatientRecord, parse_json
from interop.schema.cohort import read_cohort
from tests import data
from tests.clirun import CliRun, invoke, run_subprocess

KEY = "cli-test-key-0123456789abcdef"


def _env(env_extra: dict | None) -> dict[str, str | None]:
    return {"INTEROP_PSEUDONYM_KEY": None, **(env_extra or {})}


def _run(*args: str, env_extra: dict | None = None) -> CliRun:
    """``interop ARGS`` in-process; ``INTEROP_PSEUDONYM_KEY`` unset unless ``env_extra`` sets it."""
    return invoke(args, env=_env(env_extra))


@pytest.mark.slow
def test_synth_import_export_end_to_end(tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY)
    home = {"INTEROP_HOME": str(tmp_path / "home")}
    r = run_subprocess(
        [
            "synth",
            "fhir",
            "--n",
            "4",
            "--format",
            "ndjson",
            "--gzip",
            "--out",
            str(tmp_path / "feed"),
        ],
        env=_env(home),
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "feed" / "manifest.json").exists()
    out = tmp_path / "out"
    r = _run(
        "import",
        "fhir",
        str(tmp_path / "feed"),
        str(data.FHIR_SYNTHEA_BUNDLES[0]),
        "--out",
        str(out),
        "--pseudonymise-key-file",
        str(keyfile),
        "--date-shift",
        env_extra=home,
    )
    assert r.returncode == 0, r.stderr
    assert "counts add up: yes" in r.stderr
    records = sorted((out / "records").glob("*.json"))
    assert len(records) == 5
    report = json.loads((out / "report.json").read_text())
    assert report["balanced"] and report["totals"]["read"] > 100
    assert "counts add up (read = converted + rejected + skipped): yes" in (out / "report.txt").read_text()
    cohort = read_cohort(out / "cohort")
    assert {r.patient.id for r in cohort} == {p.stem for p in records}
    assert all(any(t.kind == "date-shift" for t in r.patient.provenance.transformations) for r in cohort)
    for p in (out / "records").glob("*.json"):
        assert KEY not in p.read_text()
    r = _run("export", "fhir", str(out), "--out", str(tmp_path / "exported"), env_extra=home)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "exported").glob("*.json"))) == 5
    # importing the export into the same folder merges by id: nothing duplicated, nothing lost
    before = {p.name: parse_json(PatientRecord, p.read_text()) for p in records}
    r = _run(
        "import",
        "fhir",
        str(tmp_path / "exported"),
        "--out",
        str(out),
        "--pseudonymise-key-file",
        str(keyfile),
        env_extra=home,
    )
    assert r.returncode == 0, r.stderr
    after = {
        p.name: parse_json(PatientRecord, p.read_text()) for p in sorted((out / "records").glob("*.json"))
    }
    assert after.keys() == before.keys()
    for name, rec in before.items():
        assert {m.id for m in after[name].measurements} == {m.id for m in rec.measurements}
        assert {m.time for m in after[name].measurements} == {m.time for m in rec.measurements}  # not twice


def test_user_errors_print_one_line_and_exit_1(tmp_path):
    r = _run(
        "import",
        "fhir",
        str(tmp_path / "missing.json"),
        "--out",
        str(tmp_path / "o"),
        env_extra={"INTEROP_PSEUDONYM_KEY": KEY},
    )
    assert r.returncode == 1
    r = _run("import", "fhir", str(data.FHIR_DEMO_BUNDLE), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "pseudonymisation key" in r.stderr and "Traceback" not in r.stderr


def test_an_import_of_which_everything_is_rejected_exits_1_naming_file_and_line(tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "Observation.ndjson").write_text('{"resourceType": "Observation"}\nnot json\n[1]\n')
    (feed / "Patient_Jane_Doe.xml").write_text('<Patient xmlns="http://hl7.org/fhir"/>')
    out, keyfile = tmp_path / "out", tmp_path / "key"
    keyfile.write_text(KEY)
    key = ("--pseudonymise-key-file", str(keyfile))
    r = _run("import", "fhir", str(feed), "--out", str(out), *key)
    assert r.returncode == 1 and "every input was rejected" in r.stderr and "Traceback" not in r.stderr
    assert "FHIR XML is not supported, convert to JSON" in r.stderr
    text = (out / "report.txt").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("src-")]
    assert len(lines) == 4 and any(":2: " in ln and "invalid JSON" in ln for ln in lines)  # file:line
    assert "Jane_Doe" not in text and "Jane_Doe" not in r.stderr  # files named by keyed token
    shown = _run("import", "fhir", str(feed), "--out", str(out), "--show-paths", *key).stderr
    assert "Observation.ndjson:2" in shown  # the operator may ask for paths on the console


def test_sigterm_during_an_import_leaves_no_temporary_file(tmp_path):
    import signal
    import time

    from interop.settings import Settings
    from interop.workflows.synth import load_synth_model, write_synthetic_feed

    sbml, card, label = load_synth_model(Settings(home=tmp_path, database_url="sqlite://"), None)
    write_synthetic_feed(tmp_path / "feed", 60, sbml=sbml, card=card, label=label, fmt="ndjson", days=7)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(data.ROOT), INTEROP_PSEUDONYM_KEY=KEY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop", "import", "fhir", str(tmp_path / "feed"), "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("*.sqlite")) and time.monotonic() < deadline:  # the spool: import under way
        time.sleep(0.1)
    time.sleep(0.3)  # mid-import: the 2,760 resources take about 1-2 s after the spool appears
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, proc.stderr.read() if proc.stderr else ""
    left = [p.name for p in out.rglob("*") if p.is_file()]
    assert not [n for n in left if n.endswith(".sqlite") or n.startswith(".tmp-")], left
