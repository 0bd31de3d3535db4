"""``interop pharmml convert``: files written on success, none on refusal (in-process with typer's
CliRunner; the refusal also in a subprocess, as a user runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import bind_regimen, check_reference_outputs, load_model, simulate
from tests.clirun import CliRun, invoke, run_subprocess
from tests.data import PHARMML_ADVAN1, PHARMML_FIXTURES, PHARMML_IV_TWO_TARGETS_REGIMEN, PHARMML_USECASE3


def _run(*args: str) -> CliRun:
    """``interop pharmml convert ARGS`` in-process."""
    return invoke(["pharmml", "convert", *args])


@pytest.mark.slow
def test_convert_writes_sbml_and_card_that_make_a_twin(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run(
        str(PHARMML_USECASE3),
        "--out",
        str(out),
        "--rxnorm",
        "11289",
        "--drug-name",
        "warfarin",
        "--unit",
        "CP_obs=mg/L",
        "--unit",
        "PCA_obs=%",
    )
    assert proc.returncode == 0, proc.stderr
    sbml = out / "usecase3_0.8.1.xml"
    card_path = out / "usecase3_0.8.1.card.json"
    assert sorted(p.name for p in out.iterdir()) == [card_path.name, sbml.name]
    card = parse_json(ModelCard, card_path.read_text())
    assert card.drugs[0].code == "11289" and card.observables[0].unit == "mg/L"
    assert json.loads(card_path.read_text())["observables"][1]["unit"] == "%"
    twin = bind_regimen(
        load_model(sbml.read_text(), card),
        (ReferenceDose(route="oral", amount=10, time_h=0),),
        {"WT": 70},
    )
    pred = simulate(twin, [24.0])
    assert 0 < pred.values["CP_obs"][0] and 0 < pred.values["PCA_obs"][0] < 96.7


@pytest.mark.slow
def test_refusal_prints_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_subprocess(  # the group's end-to-end check: nothing else on stderr in a fresh interpreter
        ["pharmml", "convert", str(PHARMML_FIXTURES / "bad_categorical_obs_0.8.xml"), "--out", str(out)]
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "ObservationModel[@blkId='om2']/Discrete/CategoricalData" in lines[0]
    assert not out.exists()


def test_set_fills_a_missing_value(tmp_path: Path) -> None:
    refused = _run(str(PHARMML_ADVAN1), "--out", str(tmp_path))
    assert refused.returncode == 1 and "'CL' has no value" in refused.stderr
    ok = _run(str(PHARMML_ADVAN1), "--out", str(tmp_path), "--set", "CL=1.5")
    assert ok.returncode == 0, ok.stderr
    assert 'id="CL" value="1.5"' in (tmp_path / "pkmacros_advan1_0.8.1.xml").read_text()
    bad = _run(str(PHARMML_ADVAN1), "--out", str(tmp_path), "--set", "CL")
    assert bad.returncode != 0 and "NAME=VALUE" in bad.stderr


def test_reference_outputs_go_on_the_card(tmp_path: Path) -> None:
    refs = tmp_path / "refs.json"
    e = 2.718281828459045
    refs.write_text(
        json.dumps(
            [
                {
                    "description": "100 mg IV bolus, closed form D/V*exp(-CL/V*t)",
                    "observable": "Cc_obs",
                    "doses": [{"route": "iv-bolus", "amount": 100, "time_h": 0}],
                    "times_h": [1.0, 4.0],
                    "values": [10 * e**-0.1, 10 * e**-0.4],
                }
            ]
        )
    )
    proc = _run(str(PHARMML_ADVAN1), "--out", str(tmp_path), "--set", "CL=1", "--reference", str(refs))
    assert proc.returncode == 0, proc.stderr
    card = parse_json(ModelCard, (tmp_path / "pkmacros_advan1_0.8.1.card.json").read_text())
    sbml = (tmp_path / "pkmacros_advan1_0.8.1.xml").read_text()
    (check,) = check_reference_outputs(load_model(sbml, card))
    assert check.passed, check


def test_convert_prints_the_administration_a_trial_dose_names(tmp_path: Path) -> None:
    proc = _run(str(PHARMML_IV_TWO_TARGETS_REGIMEN), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "trial-design dose: 100 iv-bolus at 0 h\n" in proc.stdout
    assert "trial-design dose: 50 iv-bolus at 2 h (administration 2)" in proc.stdout
