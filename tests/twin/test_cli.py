"""``interop twin ...`` and ``interop import nonmem`` through the real CLI: in-process (typer's
CliRunner) and, for the event-table import that builds the module's home, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.pseudonym import pseudonymise
from interop.schema import ModelCard, parse_json
from registry import open_registry
from tests.clirun import CliRun, invoke, run_subprocess
from tests.data import mapbayr_card, mapbayr_data, mapbayr_phi, mapbayr_sbml

pytestmark = pytest.mark.slow  # the module's home imports 100 subjects in a subprocess


KEY = "twin-cli-test-key-0123456789"


def _env(home: Path) -> dict[str, str | None]:
    return {
        "INTEROP_HOME": str(home),
        "INTEROP_DATABASE_URL": None,
        "COLUMNS": "160",
        "INTEROP_PSEUDONYM_KEY": KEY,
    }


def _subject(home: Path, nonmem_id: str) -> Path:
    """The record of the table's subject ``nonmem_id``: named by its keyed pseudonym."""
    pid = pseudonymise(KEY.encode(), f"nonmem:{mapbayr_data('006').name}", nonmem_id)
    return home / "imported" / "records" / f"{pid}.json"


def run(args: list[str], home: Path) -> CliRun:
    """``interop ARGS`` in-process with ``home`` as ``INTEROP_HOME`` (its SQLite registry)."""
    return invoke(args, env=_env(home))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub home whose registry holds mapbayr-006 and a patient imported from the event table.

    The import runs as a user runs it (a subprocess): the twin group's end-to-end check."""
    home = tmp_path_factory.mktemp("home")
    reg = open_registry(f"sqlite:///{home.resolve() / 'registry.sqlite'}", home / "blobs")
    try:
        card = parse_json(ModelCard, mapbayr_card("006").read_text())
        reg.submit(mapbayr_sbml("006").read_text(), card, submitted_by="test")
    finally:
        reg.close()
    res = run_subprocess(
        [
            "import",
            "nonmem",
            str(mapbayr_data("006")),
            "--model",
            "mapbayr-006",
            "--out",
            str(home / "imported"),
        ],
        env=_env(home),
    )
    assert res.returncode == 0, res.stderr
    return home


def test_import_nonmem_writes_records_and_report(home: Path) -> None:
    records = sorted((home / "imported" / "records").glob("*.json"))
    assert len(records) == 100
    report = json.loads((home / "imported" / "report.json").read_text())
    assert report["balanced"] is True
    # private by default: no subject id or table name in what the import wrote
    assert not [p.name for p in records if p.name.startswith("nonmem-")]
    written = "".join(p.read_text() for p in (home / "imported").rglob("*.json"))
    assert "data_to_fit006" not in written and '"nonmem-1"' not in written
    assert _subject(home, "1").exists()


def test_import_nonmem_needs_the_key(home: Path, tmp_path: Path) -> None:
    env = {**_env(home), "INTEROP_PSEUDONYM_KEY": None}
    res = invoke(
        [
            "import",
            "nonmem",
            str(mapbayr_data("006")),
            "--model",
            "mapbayr-006",
            "--out",
            str(tmp_path / "o"),
        ],
        env=env,
    )
    assert res.returncode == 1 and "key" in res.stderr
    assert not (tmp_path / "o" / "records").exists()


def test_fit_forecast_recommend(home: Path) -> None:
    patient = _subject(home, "1")
    res = run(
        ["twin", "fit", "--model", "mapbayr-006@1", "--patient", str(patient), "--out", str(home / "fit")],
        home,
    )
    assert res.returncode == 0, res.stderr
    assert "ETA_D2" in res.stdout and "OFV" in res.stdout
    fit = json.loads((home / "fit" / "fit.json").read_text())
    phi_first = mapbayr_phi("006").read_text().splitlines()[2].split()
    assert fit["fit"]["ofv"] == pytest.approx(float(phi_first[-1]), abs=0.01)
    assert (home / "fit" / "fit.png").stat().st_size > 10_000

    res = run(
        [
            "twin",
            "forecast",
            "--model",
            "mapbayr-006",
            "--patient",
            str(patient),
            "--out",
            str(home / "fc"),
            "--draws",
            "100",
            "--until",
            "300",
            "--target-low",
            "20",
            "--target-high",
            "40",
        ],
        home,
    )
    assert res.returncode == 0, res.stderr
    fc = json.loads((home / "fc" / "forecast.json").read_text())["forecast"]
    assert fc["times_h"][-1] == pytest.approx(300)
    bundle = json.loads((home / "fc" / "forecast.fhir.json").read_text())
    assert (
        bundle["resourceType"] == "Bundle" and bundle["entry"][0]["resource"]["resourceType"] == "Observation"
    )

    res = run(
        [
            "twin",
            "recommend",
            "--model",
            "mapbayr-006",
            "--patient",
            str(patient),
            "--out",
            str(home / "rec"),
            "--target",
            "trough",
            "--low",
            "20",
            "--high",
            "40",
            "--amounts",
            "5000,10000,15000",
            "--intervals",
            "12,24",
            "--draws",
            "50",
        ],
        home,
    )
    assert res.returncode == 0, res.stderr
    assert "Recommended:" in res.stdout
    rec = json.loads((home / "rec" / "recommendation.json").read_text())["recommendation"]
    assert 20 <= rec["best"]["exposure"] <= 40
    bundle = json.loads((home / "rec" / "recommendation.fhir.json").read_text())
    request = bundle["entry"][0]["resource"]
    assert request["resourceType"] == "MedicationRequest" and request["intent"] == "proposal"


def test_user_errors_are_one_line(home: Path) -> None:
    res = run(["twin", "fit", "--model", "no-such-model", "--patient", str(home / "x.json")], home)
    assert res.returncode == 1 and "error" in res.stderr and "Traceback" not in res.stderr
    patient = _subject(home, "1")
    res = run(["twin", "fit", "--model", "no-such-model@3", "--patient", str(patient)], home)
    assert res.returncode == 1 and "no model version" in res.stderr
    res = run(
        [
            "twin",
            "recommend",
            "--model",
            "mapbayr-006",
            "--patient",
            str(patient),
            "--target",
            "median",
            "--low",
            "1",
            "--high",
            "2",
            "--amounts",
            "1",
            "--intervals",
            "12",
        ],
        home,
    )
    assert res.returncode == 1 and "unknown target" in res.stderr


def test_compare_nonmem_prints_the_table_and_exits_on_thresholds(home: Path) -> None:
    lines = mapbayr_data("001").read_text().splitlines()  # the first 12 subjects keep the run short
    subset = home / "first12.csv"
    subset.write_text("\n".join([lines[0], *(x for x in lines[1:] if int(x.split(",")[0]) <= 12)]) + "\n")
    args = [
        "twin",
        "compare-nonmem",
        "--model",
        str(mapbayr_sbml("001")),
        "--data",
        str(subset),
        "--phi",
        str(mapbayr_phi("001")),
        "--out",
        str(home / "cmp.json"),
    ]
    res = run(args, home)
    assert res.returncode == 0, res.stderr
    assert "excellent" in res.stdout and "36 (100.0%)" in res.stdout
    assert json.loads((home / "cmp.json").read_text())["n_subjects"] == 12
    card = parse_json(ModelCard, mapbayr_card("001").read_text())
    assert card.id in res.stdout
    strict = run([*args, "--ofv-tolerance", "1e-9", "--min-ofv", "1.0"], home)
    assert strict.returncode == 2 and "below thresholds" in strict.stdout


def test_recommend_several_targets_hold_and_plan(home: Path) -> None:
    """Two targets at once, a hold, a loading dose, units on every number, and a typed-in plan."""
    patient = _subject(home, "1")
    common = ["--model", "mapbayr-006", "--patient", str(patient), "--draws", "30"]
    res = run(
        [
            "twin",
            "recommend",
            *common,
            "--out",
            str(home / "rec2"),
            "--target",
            "auc:400-900",
            "--target",
            "trough:<=20",
            "--amounts",
            "1000,2000,4000",
            "--intervals",
            "12,24",
            "--loading",
            "5000",
            "--hold",
        ],
        home,
    )
    assert res.returncode == 0, res.stderr
    assert "AUC24" in res.stdout and "mg·h/L" in res.stdout and "mg/L" in res.stdout
    assert "e+" not in res.stdout and "e-0" not in res.stdout
    rec = json.loads((home / "rec2" / "recommendation.json").read_text())["recommendation"]
    assert [t["kind"] for t in rec["targets"]] == ["auc", "trough"]
    assert rec["targets"][0]["measured_as"].startswith("AUC24 at steady state")
    assert rec["best"]["loading_amount"] == 5000
    assert rec["best"]["probability"] <= min(e["probability"] for e in rec["best"]["exposures"])
    res = run(
        [
            "twin",
            "plan",
            *common,
            "--out",
            str(home / "plan"),
            "--amount",
            "2000",
            "--interval",
            "12",
            "--n-doses",
            "4",
            "--start-at",
            "2030-01-01T00:00+00:00",
        ],
        home,
    )
    assert res.returncode == 0, res.stderr
    plan = json.loads((home / "plan" / "recommendation.json").read_text())["recommendation"]
    assert plan["best"]["amount"] == 2000 and plan["n_doses"] == 4 and plan["start_h"] > 0
    res = run(
        ["twin", "recommend", *common, "--target", "auc:600", "--amounts", "1", "--intervals", "12"], home
    )
    assert res.returncode == 1 and "not a range" in res.stderr
