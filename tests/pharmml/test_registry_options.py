"""`interop registry submit` takes --set/--unit/--drug for PharmML, as `pharmml convert` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import GENTAMICIN_SBML, PHARMML_ADVAN1, ROOT


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


@pytest.mark.skipif(not PHARMML_ADVAN1.is_file(), reason="shared PharmML data absent")
def test_submit_pharmml_with_set_unit_and_drug(tmp_path: Path) -> None:
    home = tmp_path / "home"
    refused = _run(home, "registry", "submit", str(PHARMML_ADVAN1), "--no-validate")
    assert refused.returncode != 0  # CL has no value in the file
    assert "CL" in refused.stdout + refused.stderr
    r = _run(home, "registry", "submit", str(PHARMML_ADVAN1), "--no-validate", "--set", "CL=1.5",
             "--unit", "dose=mg", "--drug", "1596450=gentamicin")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(pharmml" in r.stdout
    found = _run(home, "registry", "search", "--rxnorm", "1596450")  # the card names the drug given
    assert "pkmacros_advan1_0.8.1@1" in found.stdout, found.stdout + found.stderr


def test_options_on_a_format_that_takes_none_are_refused(tmp_path: Path) -> None:
    r = _run(tmp_path / "home", "registry", "submit", str(GENTAMICIN_SBML), "--no-validate", "--set", "CL=1")
    assert r.returncode != 0
    assert "--set apply to PharmML/NONMEM uploads, not to sbml" in " ".join((r.stdout + r.stderr).split())
