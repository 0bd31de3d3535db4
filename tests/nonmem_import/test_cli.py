"""`interop nonmem convert`, `interop registry submit RUN.mod` and compare-nonmem without CMT options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import MAPBAYR, ROOT, mapbayr_phi
from tests.nonmem_import import streams


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTEROP_HOME": str(home)}
    env.pop("INTEROP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "interop", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_registry_submit_takes_a_control_stream(tmp_path: Path) -> None:
    mod = tmp_path / "advan2.mod"
    mod.write_text(streams.ADVAN2_ORAL)
    r = _run(tmp_path / "home", "registry", "submit", str(mod), "--no-validate")
    assert r.returncode == 0, r.stderr
    assert "advan2@1" in r.stdout and "(nonmem" in r.stdout
    assert "without a model card" not in r.stdout


@pytest.mark.skipif(not (MAPBAYR / "run401.mod").is_file(), reason="shared mapbayr data absent")
def test_convert_then_compare_nonmem_needs_no_cmt_options(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _run(tmp_path, "nonmem", "convert", str(MAPBAYR / "run401.mod"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "CMT 3: observable centralmet" in r.stdout
    card = json.loads((out / "run401.card.json").read_text())
    assert card["compartments"]["levels"] == [
        {"cmt": 2, "observable": "central", "value": None},
        {"cmt": 3, "observable": "centralmet", "value": None},
    ]
    # the first 10 subjects of the run
    data = MAPBAYR / "data_to_fit401.csv"
    lines = data.read_text().splitlines()
    head = [lines[0]] + [ln for ln in lines[1:] if int(ln.split(",")[0]) <= 10]
    small = tmp_path / "data.csv"
    small.write_text("\n".join(head) + "\n")
    phi_lines = mapbayr_phi("401").read_text().splitlines()
    phi = tmp_path / "run.phi"
    phi.write_text("\n".join(phi_lines[:12]) + "\n")
    r = _run(tmp_path, "twin", "compare-nonmem", "--model", str(out / "run401.xml"),
             "--card", str(out / "run401.card.json"), "--data", str(small), "--phi", str(phi))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_validation_names_covariates_without_reference(tmp_path: Path) -> None:
    """WT has a reference from (WT/70); BSA has none, and the simulate stage says so."""
    ok = tmp_path / "advan1.mod"
    ok.write_text(streams.ADVAN1_IV)
    r = _run(tmp_path / "home", "registry", "submit", str(ok))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CVODE" not in r.stdout
    bad = tmp_path / "bsa.mod"
    bad.write_text(
        streams.ADVAN1_IV.replace(" WT\n", " WT BSA\n").replace("V = THETA(2) *", "V = THETA(2) * BSA *")
    )
    r = _run(tmp_path / "home", "registry", "submit", str(bad))
    text = " ".join((r.stdout + r.stderr).split())
    assert "covariate(s) BSA have no reference value" in text  # named first, the solver's words after
