"""`interop demo` as a user runs it: a subprocess in a fresh home folder, then again in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.clirun import CliRun, invoke, run_subprocess
from tests.direct import direct_concentrations


def _env(home: Path, env: dict[str, str]) -> dict[str, str | None]:
    return {"INTEROP_HOME": str(home), "INTEROP_DATABASE_URL": None, **env}


def run_cli(*args: str, home: Path, **env: str) -> CliRun:
    """``interop ARGS`` in-process with ``home`` (created) as ``INTEROP_HOME``."""
    home.mkdir(parents=True, exist_ok=True)
    return invoke(args, env=_env(home, env))


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    first = run_subprocess(["demo"], env=_env(home, {}), cwd=home)
    assert first.returncode == 0, first.stderr
    out = home / "output" / "demo"
    for name in ("concentration.png", "predictions.json", "conversion-report.json"):
        assert str(out / name) in first.stdout.replace("\n", "") or name in first.stdout
    png = (out / "concentration.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (home / "registry.sqlite").exists()
    pred = json.loads((out / "predictions.json").read_text())
    rows = pred["rows"]
    assert len(rows) == 4 and all(r["observed"] > 0 for r in rows)

    # The predictions equal a direct libRoadRunner simulation of the same model and doses.
    cov = pred["covariates"]

    covariates = {k: v["value_at_origin"] for k, v in cov.items()}
    changes = [(t, k, x) for k, v in cov.items() for t, x in v["changes"] if t > 0]
    expected = direct_concentrations(pred["doses"], covariates, {}, [r["time_h"] for r in rows], changes)
    np.testing.assert_allclose([r["predicted"] for r in rows], expected, rtol=1e-6)

    # Twice works: the same model version, the same pseudonym, the files rewritten.
    second = run_cli("demo", home=home)
    assert second.returncode == 0, second.stderr
    assert "gentamicin-1cmt@1" in first.stdout and "gentamicin-1cmt@1" in second.stdout
    assert json.loads((out / "predictions.json").read_text())["patient"] == pred["patient"]
    records = list((out / "records").glob("*.json"))
    assert len(records) == 1
    assert "MRN-0042-DEMO" not in records[0].read_text()


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    res = run_cli("demo", home=tmp_path, INTEROP_DATABASE_URL="nosuchdb://nowhere")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:") and "registry" in lines[0]


def test_bad_option_exits_non_zero(tmp_path: Path) -> None:
    res = run_cli("demo", "--no-such-option", home=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
