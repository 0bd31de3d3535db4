"""A model card's reference output may point at a SED-ML report: the registry fills it from its
Tellurium run of the archive and the reproduce stage compares the twin against it (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.schema import ModelCard, ReferenceDose, ReferenceOutput, SedmlOutputRef, parse_json
from interop.workflows.registry_validation import twin_simulate_check
from registry import StageResult, open_registry
from registry.sedml_stage import resolve_reference_outputs, run_sedml
from tests.data import GENTAMICIN_CARD
from tests.sedml.archive import sedml_archive

# the SED-ML experiment starts A_central at the dose: the card's regimen is the same bolus; the
# covariates are the SBML's own values, which Tellurium simulates
_COVARIATES = {"WT": 70.0, "SCR": 1.0, "AGE": 50.0, "SEX": 0.0}
_TIMES = (1.0, 2.0, 4.0, 8.0, 12.0, 24.0)


def _card(dose: float, data_set: str = "d_conc", times: tuple[float, ...] = _TIMES) -> ModelCard:
    base = parse_json(ModelCard, GENTAMICIN_CARD.read_bytes())
    ref = ReferenceOutput(
        description="100 mg bolus, the archive's SED-ML report",
        observable="gentamicin",
        doses=(ReferenceDose(route="iv-bolus", amount=dose, time_h=0),),
        covariates=_COVARIATES,
        times_h=times,
        sedml=SedmlOutputRef(report="report1", data_set=data_set),
        rtol=1e-4,  # Tellurium's CVODE tolerances, not the twin's
    )
    return base.model_copy(update={"id": "gentamicin-sedml", "reference_outputs": (ref,)})


def test_a_sedml_reference_needs_no_inline_values_and_refuses_them() -> None:
    ref = _card(100.0).reference_outputs[0]
    assert not ref.resolved
    with pytest.raises(ValueError, match="takes no inline values"):
        ReferenceOutput.model_validate({**ref.model_dump(), "values": [1.0] * len(_TIMES)})
    with pytest.raises(ValueError, match="needs times_h and values"):
        ReferenceOutput.model_validate({**ref.model_dump(), "sedml": None})


def test_references_are_filled_from_the_report_by_data_set_id_or_label() -> None:
    omex = sedml_archive(dose=100.0)
    run = run_sedml(omex, timeout_s=300)
    assert run.error is None
    for name in ("d_conc", "concentration"):
        card, problems = resolve_reference_outputs(_card(100.0, name), run, omex)
        assert problems == []
        ref = card.reference_outputs[0]
        assert ref.times_h == _TIMES and len(ref.values) == len(_TIMES)
        assert ref.values[0] > ref.values[-1] > 0  # concentrations after the bolus, falling
    card, problems = resolve_reference_outputs(_card(100.0, "d_missing"), run, omex)
    assert "no data set 'd_missing'" in problems[0] and not card.reference_outputs[0].resolved
    _, problems = resolve_reference_outputs(_card(100.0, times=(1.5,)), run, omex)
    assert "no row at time 1.5 h" in problems[0]
    _, problems = resolve_reference_outputs(_card(100.0), None, None)
    assert "not an archive with SED-ML" in problems[0]


def _validate(tmp_path: Path, archive_dose: float, card_dose: float) -> dict[str, StageResult]:
    reg = open_registry(
        f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "blobs", simulate_check=twin_simulate_check
    )
    omex = sedml_archive(dose=archive_dose, card=_card(card_dose))
    stored = reg.submit_file(omex, filename="gentamicin.omex", model_id="gentamicin-sedml")
    report = reg.validate("gentamicin-sedml", stored.version)
    return {s.name: s for s in report.stages}


def test_reproduce_compares_the_twin_with_the_sedml_report(tmp_path: Path) -> None:
    stages = _validate(tmp_path, archive_dose=100.0, card_dose=100.0)
    reproduce = stages["reproduce"]
    assert reproduce.status == "passed", reproduce.issues
    assert stages["sedml"].status == "passed"


def test_reproduce_fails_when_the_twin_disagrees_with_the_sedml_report(tmp_path: Path) -> None:
    stages = _validate(tmp_path, archive_dose=80.0, card_dose=100.0)  # the experiment gave 80 mg
    reproduce = stages["reproduce"]
    assert reproduce.status == "failed"
    assert any("max relative error 0.25" in i.message for i in reproduce.issues)
