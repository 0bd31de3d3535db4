"""Doses in PharmML beyond one target per route: several administrations of one route (the card's
``adm``), dose targets named by the dataset's column mappings, and what a failed regimen names."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from converters.nonmem import read_event_table
from interop.errors import ModelError, SchemaError, TwinError
from interop.schema import ReferenceDose, ReferenceOutput
from interop.twin import bind_patient, bind_regimen, load_model, simulate
from interop.workflows.twin import event_table_mapping
from registry.formats.pharmml import PharmMLError, convert
from tests.data import (
    DDMORE_CORPUS,
    PHARMML_CORPUS,
    PHARMML_DOSE_COLUMN,
    PHARMML_IV_TWO_TARGETS,
    PHARMML_IV_TWO_TARGETS_REGIMEN,
    PHARMML_ODE_CMT_PIECEWISE,
    require_corpus,
)

V1, V2, K1, K2 = 10.0, 40.0, 0.3, 0.05  # the fixtures' initial estimates
TIMES = np.array([0.5, 1.0, 2.5, 4.0, 8.0, 24.0])


def _two_places(times: np.ndarray, d1: float, t1: float, d2: float, t2: float) -> np.ndarray:
    """C = A1/V1 + A2/V2 after a bolus d1 into A1 at t1 and d2 into A2 at t2 (closed form)."""
    c1 = np.where(times >= t1, d1 / V1 * np.exp(-K1 * (times - t1)), 0.0)
    c2 = np.where(times >= t2, d2 / V2 * np.exp(-K2 * (times - t2)), 0.0)
    return c1 + c2


def _event_table(tmp_path: Path) -> Path:
    """A bolus of 100 in CMT 1 at 0 h and of 50 in CMT 2 at 2 h, with a level at 3 h."""
    path = tmp_path / "doses.csv"
    path.write_text(
        "ID,TIME,EVID,AMT,CMT,RATE,MDV,DV\n1,0,1,100,1,0,1,.\n1,2,1,50,2,0,1,.\n1,3,0,0,2,0,0,5\n"
    )
    return path


@pytest.mark.parametrize("fixture", [PHARMML_IV_TWO_TARGETS, PHARMML_ODE_CMT_PIECEWISE])
def test_one_route_into_two_places_by_administration(fixture: Path, tmp_path: Path) -> None:
    """PK-macro adm numbers and a CMT Piecewise both give one input per place; an event table's
    CMT column routes each dose to its place; the twin matches the closed form."""
    conv = convert(fixture.read_bytes(), source=fixture.name)
    boluses = conv.card.dosing_for("iv-bolus")
    assert [(d.target, d.adm) for d in conv.card.dosing if d.route == "iv-bolus"] == [("A1", 1), ("A2", 2)]
    assert [d.target for d in boluses] == ["A1"]  # a dose naming no administration: the primary
    assert [d.target for d in conv.card.dosing_for("iv-bolus", 2)] == ["A2"]
    model = load_model(conv.sbml, conv.card)
    mapping = event_table_mapping(conv.card)
    record = read_event_table(_event_table(tmp_path), mapping).records[0]
    assert sorted(d.adm or 0 for d in record.doses) == [1, 2]
    twin = bind_patient(model, record)
    assert [(e.input.target, e.amount) for e in twin.doses] == [("A1", 100.0), ("A2", 50.0)]
    pred = simulate(twin, TIMES).values["C_obs"]
    np.testing.assert_allclose(pred, _two_places(TIMES, 100.0, 0.0, 50.0, 2.0), rtol=1e-6, atol=1e-9)


def test_dataset_values_other_than_the_administration_numbers_become_the_cards_compartments(
    tmp_path: Path,
) -> None:
    """A TargetMapping from CMT 10 and 20 to adm 1 and 2: the card keeps that, so an event table
    from the model's dataset reaches each administration; the same numbers need no mapping."""
    raw = PHARMML_IV_TWO_TARGETS.read_bytes()
    assert convert(raw).card.compartments is None
    raw = raw.replace(b'dataSymbol="1"', b'dataSymbol="10"').replace(b'dataSymbol="2"', b'dataSymbol="20"')
    conv = convert(raw)
    assert conv.card.compartments is not None
    assert [(d.cmt, d.route, d.adm) for d in conv.card.compartments.doses] == [
        (10, "iv-bolus", 1),
        (20, "iv-bolus", 2),
    ]
    table = tmp_path / "doses.csv"
    table.write_text(
        _event_table(tmp_path).read_text().replace(",1,0,1,.", ",10,0,1,.").replace(",2,0,1,.", ",20,0,1,.")
    )
    mapping = event_table_mapping(conv.card, level_cmts=["2=C_obs"])
    twin = bind_patient(load_model(conv.sbml, conv.card), read_event_table(table, mapping).records[0])
    assert [(e.input.target, e.amount) for e in twin.doses] == [("A1", 100.0), ("A2", 50.0)]


def test_a_dose_without_administration_goes_to_the_primary_input(tmp_path: Path) -> None:
    conv = convert(PHARMML_IV_TWO_TARGETS.read_bytes())
    model = load_model(conv.sbml, conv.card)
    record = read_event_table(_event_table(tmp_path), event_table_mapping(conv.card)).records[0]
    plain = record.model_copy(
        update={"doses": tuple(d.model_copy(update={"adm": None}) for d in record.doses)}
    )
    twin = bind_patient(model, plain)
    assert [e.input.target for e in twin.doses] == ["A1", "A1"]
    pred = simulate(twin, TIMES).values["C_obs"]
    np.testing.assert_allclose(
        pred, _two_places(TIMES, 100.0, 0.0, 0.0, 0.0) + _two_places(TIMES, 50.0, 2.0, 0, 0)
    )
    wrong = record.model_copy(update={"doses": (record.doses[0].model_copy(update={"adm": 7}),)})
    with pytest.raises(TwinError, match="no iv-bolus administration 7"):
        bind_patient(model, wrong)


def test_a_regimen_dose_reaches_the_administration_it_names() -> None:
    """The TrialDesign's bolus by adm 2 is a reference dose naming adm 2 (not left out), and a bare
    regimen's dose naming an administration goes there, not to the route's primary input (it did:
    DDMoRe's glucose tracer by adm 5 and 6, or osteoprotegerin's IV dose, went to adm 1)."""
    conv = convert(PHARMML_IV_TWO_TARGETS_REGIMEN.read_bytes())
    assert [(d.amount, d.time_h, d.adm) for d in conv.trial_doses] == [(100.0, 0.0, None), (50.0, 2.0, 2)]
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, conv.trial_doses, {})
    assert [(e.input.target, e.amount) for e in twin.doses] == [("A1", 100.0), ("A2", 50.0)]
    np.testing.assert_allclose(
        simulate(twin, TIMES).values["C_obs"], _two_places(TIMES, 100.0, 0.0, 50.0, 2.0), rtol=1e-6, atol=1e-9
    )
    unknown = (ReferenceDose(route="iv-bolus", amount=1.0, time_h=0, adm=7),)
    with pytest.raises(TwinError, match="no iv-bolus administration 7"):
        bind_regimen(model, unknown, {})
    output = ReferenceOutput(observable="C_obs", doses=unknown, times_h=(1.0,), values=(1.0,))
    with pytest.raises(SchemaError, match="iv-bolus. adm 7 without input"):
        conv.card.replace(reference_outputs=(output,))


def test_monolix_defaults_an_administration_named_type_and_a_compartment_without_volume() -> None:
    """PharmML 0.6 named the administration number ``type`` (PKmacros_exampleC4 still does), and a
    compartment without ``volume`` has Monolix's default volume 1: an elimination by clearance from
    it removes ``CL * amount``, so CL = k2 gives the fixture's kinetics again."""
    raw = PHARMML_IV_TWO_TARGETS.read_bytes()
    edits = [
        (
            b'<Value argument="adm"><ct:Int>2</ct:Int></Value>',
            b'<Value argument="type"><ct:Int>2</ct:Int></Value>',
        ),
        (b'<Value argument="volume"><ct:SymbRef blkIdRef="pm1" symbIdRef="V2"/></Value>', b""),
        (
            b'<Value argument="k"><ct:SymbRef blkIdRef="pm1" symbIdRef="k2"/></Value>',
            b'<Value argument="CL"><ct:SymbRef blkIdRef="pm1" symbIdRef="k2"/></Value>',
        ),
    ]
    for old, new in edits:
        assert raw.count(old) == 1
        raw = raw.replace(old, new)
    conv = convert(raw, source="defaults.xml")
    assert [(d.target, d.adm) for d in conv.card.dosing if d.route == "iv-bolus"] == [("A1", 1), ("A2", 2)]
    assert any("compartment 2 has no volume" in w for w in conv.warnings)
    twin = bind_regimen(
        load_model(conv.sbml, conv.card),
        (ReferenceDose(route="iv-bolus", amount=100.0, time_h=0, adm=2),),
        {},
    )
    np.testing.assert_allclose(
        simulate(twin, TIMES).values["C_obs"], _two_places(TIMES, 0.0, 0.0, 100.0, 0.0), rtol=1e-6, atol=1e-9
    )


def test_dose_column_typed_a_regressor_and_an_undeclared_dose_time() -> None:
    """DOSE (columnType reg) fills D; tD, only ever subtracted from time, is the dose time."""
    conv = convert(PHARMML_DOSE_COLUMN.read_bytes())
    assert [d.route for d in conv.card.dosing] == ["iv-bolus"]
    assert not conv.card.covariates  # neither D nor tD is a regressor
    twin = bind_regimen(
        load_model(conv.sbml, conv.card), (ReferenceDose(route="iv-bolus", amount=80, time_h=0),), {}
    )
    pred = simulate(twin, TIMES).values["C_obs"]
    np.testing.assert_allclose(pred, 80 / V1 * np.exp(-K1 * TIMES), rtol=1e-9)


def test_a_control_arm_dose_of_zero_is_no_reference_dose() -> None:
    raw = PHARMML_DOSE_COLUMN.read_bytes().replace(
        b"    </TrialDesign>",
        b"""        <Interventions><Administration oid="ctl"><Bolus><DoseAmount>
            <ct:SymbRef blkIdRef="sm1" symbIdRef="D"/><ct:Assign><ct:Real>0</ct:Real></ct:Assign>
            </DoseAmount><DosingTimes><ct:Assign><ct:Real>0</ct:Real></ct:Assign></DosingTimes>
            </Bolus></Administration></Interventions>
    </TrialDesign>""",
    )
    conv = convert(raw)
    assert conv.trial_doses == () and any("a dose of 0" in w for w in conv.warnings)
    with pytest.raises(PharmMLError, match="must not be negative"):
        convert(
            raw.replace(
                b"<ct:Real>0</ct:Real></ct:Assign>\n            </DoseAmount>",
                b"<ct:Real>-1</ct:Real></ct:Assign></DoseAmount>",
            )
        )


def test_two_unnumbered_places_of_one_route_are_refused() -> None:
    """Without an administration id nothing tells two places apart: refused, naming both."""
    raw = PHARMML_IV_TWO_TARGETS.read_bytes()
    raw = raw.replace(b'<Value argument="adm"><ct:Int>1</ct:Int></Value>', b"")
    raw = raw.replace(b'<Value argument="adm"><ct:Int>2</ct:Int></Value>', b"")
    raw = re.sub(
        rb"<ColumnMapping>\s*<ds:ColumnRef columnIdRef=\"AMT\"/>.*?</ColumnMapping>", b"", raw, flags=re.S
    )
    with pytest.raises(PharmMLError, match="into A2: no administration id .* from the one into A1"):
        convert(raw)


# --- the real files (optional corpora) ----------------------------------------------------------
def test_ddmore_glucose_and_il21_dose_each_place_by_its_administration() -> None:
    require_corpus(DDMORE_CORPUS)
    glucose = convert((DDMORE_CORPUS / "227" / "glucoseKinetics.xml").read_bytes())
    adms = {(d.route, d.adm): d.target for d in glucose.card.dosing}
    assert adms[("iv-bolus", 1)] == "X1" and adms[("iv-infusion", 5)] == "xHL1" and len(adms) == 12
    il21 = convert((DDMORE_CORPUS / "230" / "IL_21_PK_mode.xml").read_bytes())
    assert [(d.target, d.adm) for d in il21.card.dosing_for("iv-bolus", 2)] == [("A2", 2)]


def test_ddmore_glucose_dataset_doses_reach_their_administrations(tmp_path: Path) -> None:
    """Subject 1 of the model's own dataset: each dose row goes where its CMT says (CMT n is
    administration n), a row with a RATE as an infusion; counted against the dataset's rows."""
    require_corpus(DDMORE_CORPUS)
    folder = DDMORE_CORPUS / "227"
    conv = convert((folder / "glucoseKinetics.xml").read_bytes())
    with (folder / "Simulated_glucoseKinetics.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["ID"] == "1"]
    table = tmp_path / "subject1.csv"  # the PharmML's column names (by position), and NONMEM's EVID
    names = ["TIME", "DV", "MDV", "AMT", "RATE", "ID", "INS", "GLU", "CMT", "TOBS", "T1", "GLU1", "INS1"]
    with table.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([*names, "EVID"])
        for r in rows:
            out.writerow([*r.values(), r["MDV"]])
    record = read_event_table(table, event_table_mapping(conv.card, level_cmts=["0=Y"])).records[0]
    twin = bind_patient(load_model(conv.sbml, conv.card), record)
    got = Counter((e.input.route, e.input.target) for e in twin.doses)
    targets = {d.adm: d.target for d in conv.card.dosing}
    want = Counter(
        ("iv-infusion" if float(r["rate"]) > 0 else "iv-bolus", targets[int(r["cmt"])])
        for r in rows
        if r["MDV"] == "1" and r["cmt"] != "."
    )
    assert got == want and len(want) == 8


def test_ddmore_myelosuppression_failure_names_its_covariates_without_values() -> None:
    """The file gives CLI, V1I and V2I no value (the dataset does, per subject): at the SBML's
    placeholder the solver fails at t = 0, and the error says which covariates were assumed."""
    require_corpus(DDMORE_CORPUS)
    conv = convert((DDMORE_CORPUS / "186" / "Executable_Myelosuppression.xml").read_bytes())
    model = load_model(conv.sbml, conv.card)
    dose = (ReferenceDose(route="iv-infusion", amount=100, time_h=0, duration_h=3),)
    with pytest.raises(ModelError, match="CLI=0, V1I=0, V2I=0"):
        simulate(bind_regimen(model, dose, {}), TIMES)
    values = simulate(bind_regimen(model, dose, {"CLI": 20, "V1I": 10, "V2I": 100}), TIMES).values
    assert np.all(np.isfinite(values["Y"]))


@pytest.mark.parametrize("name", ["warfarin1", "warfarin2", "warfarin4"])
def test_validating_warfarin_doses_from_dataset_columns(name: str) -> None:
    require_corpus(PHARMML_CORPUS)
    conv = convert((PHARMML_CORPUS / "validatingPharmML0.8.1" / f"{name}.xml").read_bytes())
    assert [d.route for d in conv.card.dosing] == ["oral"]
    if name == "warfarin1":  # its pop_Imax = 10 under a logit makes Imax NaN: the file's own value
        return
    dose = (ReferenceDose(route="oral", amount=100, time_h=0),)
    twin = bind_regimen(load_model(conv.sbml, conv.card), dose, {})  # covariates: reference or SBML value
    assert all(np.all(np.isfinite(v)) for v in simulate(twin, TIMES).values.values())


def test_binding_origin_is_unchanged_by_administration_ids(tmp_path: Path) -> None:
    conv = convert(PHARMML_IV_TWO_TARGETS.read_bytes())
    record = read_event_table(_event_table(tmp_path), event_table_mapping(conv.card)).records[0]
    twin = bind_patient(load_model(conv.sbml, conv.card), record)
    assert twin.origin == min(d.start for d in record.doses) and isinstance(twin.origin, dt.datetime)
