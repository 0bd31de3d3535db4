"""The validation pipeline: each stage in the report; broken models fail the right stage with
libsbml's (or the runtime's) message; publish only with no failed stage."""

from __future__ import annotations

import libsbml
import pytest

from interop.errors import RegistryError
from interop.schema import ModelCard
from interop.workflows.registry_validation import twin_simulate_check
from registry import STAGES_ORDER, Principal, Registry, validate_model
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX

CAROL = Principal("carol", "hub", "curator")


def _stages(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.name: s.status for s in report.stages}


def test_gentamicin_passes_every_stage_and_reproduces_reference_outputs(
    gentamicin: tuple[str, ModelCard],
) -> None:
    report = validate_model(*gentamicin, simulate_check=twin_simulate_check)
    assert [s.name for s in report.stages] == list(STAGES_ORDER)
    assert report.is_valid
    assert _stages(report)["reproduce"] == "passed" and _stages(report)["simulate"] == "passed"
    repro = report.stage("reproduce").issues
    assert len(repro) == 2 and all("max relative error" in i.message for i in repro)
    # Unit and modelling-practice warnings are listed, not failures.
    cats = {i.category for i in report.stage("consistency").issues if i.severity == "warning"}
    assert {"units", "modelling-practice"} <= cats


@pytest.mark.parametrize("path", [ABSORPTION_SBML, BIOMD321_OMEX], ids=lambda p: p.name)
def test_shared_models_register_and_validate(validating_store: Registry, path) -> None:  # type: ignore[no-untyped-def]
    s = validating_store.submit_file(path.read_bytes(), filename=path.name)
    report = validating_store.validate(s.model_id, s.version)
    assert report.is_valid, report.failed_stage
    assert _stages(report)["simulate"] == "passed" and _stages(report)["card"] == "skipped"
    assert validating_store.get(s.model_id, s.version).status == "validated"
    stored = validating_store.report(s.model_id, s.version)
    assert stored is not None and stored.to_dicts() == report.to_dicts()


def test_not_well_formed_fails_the_xml_stage(gentamicin: tuple[str, ModelCard]) -> None:
    report = validate_model(gentamicin[0][:-100], gentamicin[1], simulate_check=twin_simulate_check)
    assert _stages(report)["xml"] == "failed"
    assert all(s.status == "skipped" for s in report.stages[1:])
    assert "not well-formed" in report.failed_stage.issues[0].message  # type: ignore[union-attr]


def test_unreadable_sbml_fails_the_sbml_stage_with_libsbmls_message(
    gentamicin: tuple[str, ModelCard],
) -> None:
    broken = gentamicin[0].replace('level="3" version="2"', 'level="9" version="2"', 1)
    report = validate_model(broken, None)
    assert report.failed_stage is not None and report.failed_stage.name == "sbml"
    assert "level and version specified for the document" in report.failed_stage.issues[0].message


def test_inconsistent_sbml_fails_the_consistency_stage_with_libsbmls_message(
    gentamicin: tuple[str, ModelCard],
) -> None:
    sbml, card = gentamicin
    broken = sbml.replace('compartment="body" initialAmount', 'compartment="nowhere" initialAmount', 1)
    report = validate_model(broken, card, simulate_check=twin_simulate_check)
    failed = report.failed_stage
    assert failed is not None and failed.name == "consistency"
    err = next(i for i in failed.issues if i.severity == "error")
    # libsbml's own text for rule 20601, with the line of the species.
    doc = libsbml.readSBMLFromString(broken)
    doc.checkConsistency()
    expected = next(
        doc.getError(i) for i in range(doc.getNumErrors()) if doc.getError(i).getErrorId() == 20601
    )
    assert err.message.startswith("[20601]") and expected.getMessage().strip() in err.message
    assert err.line == expected.getLine()
    assert _stages(report)["simulate"] == "skipped"


def test_card_naming_a_missing_id_fails_the_card_stage(gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    bad = card.replace(random_effects={"etas": ["ETA_CL", "ETA_Q"], "omega": [[0.09, 0], [0, 0.04]]})
    report = validate_model(sbml, bad, simulate_check=twin_simulate_check)
    assert report.failed_stage is not None and report.failed_stage.name == "card"
    assert any("'ETA_Q'" in i.message for i in report.failed_stage.issues)


def test_card_with_non_ucum_unit_fails_the_card_stage(gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    obs = card.observables[0].model_dump()
    obs["unit"] = "milligrams per litre"
    report = validate_model(sbml, card.replace(observables=[obs]))
    assert report.failed_stage is not None and report.failed_stage.name == "card"
    assert "not UCUM" in report.failed_stage.issues[0].message


def test_wrong_reference_outputs_fail_the_reproduce_stage(gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    ref = card.reference_outputs[0].model_dump()
    ref["values"] = [v * 1.01 for v in ref["values"]]
    report = validate_model(sbml, card.replace(reference_outputs=[ref]), simulate_check=twin_simulate_check)
    assert report.failed_stage is not None and report.failed_stage.name == "reproduce"
    assert "max relative error" in report.failed_stage.issues[0].message


def test_model_that_cannot_simulate_fails_the_simulate_stage(gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    # Division by zero volume: roadrunner integrates to NaN/inf or refuses.
    broken = sbml.replace('<parameter id="TVV" value="20"', '<parameter id="TVV" value="0"', 1)
    report = validate_model(broken, card, simulate_check=twin_simulate_check)
    assert report.failed_stage is not None and report.failed_stage.name in ("simulate", "reproduce")
    assert report.failed_stage.name == "simulate", report.failed_stage


def test_publish_refused_after_a_failed_stage(
    validating_store: Registry, gentamicin: tuple[str, ModelCard]
) -> None:
    sbml, card = gentamicin
    ref = card.reference_outputs[0].model_dump()
    ref["values"] = [v * 2 for v in ref["values"]]
    s = validating_store.submit(sbml, card.replace(reference_outputs=[ref]))
    report = validating_store.validate(s.model_id, s.version)
    assert not report.is_valid and validating_store.get(s.model_id, s.version).status == "submitted"
    with pytest.raises(RegistryError, match="failed stage"):
        validating_store.publish(s.model_id, s.version, principal=CAROL)
