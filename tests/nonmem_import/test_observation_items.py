"""Observation types told apart by a data item (DVID): one observable per value, routed by it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters.nonmem import read_event_table
from interop.errors import SchemaError
from interop.schema import ModelCard, ReferenceDose, parse
from interop.twin import load_model
from interop.twin.binding import bind_regimen
from interop.twin.simulate import simulate
from interop.workflows.twin import event_table_mapping
from registry.formats.nonmem import NonmemError, convert
from registry.submission import _canonical_card, content_hash

FIXTURES = Path(__file__).parent / "fixtures"
STREAM = FIXTURES / "dvid_pkpd.mod"
TIMES = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
# the fixture's $THETA: CL V KE0 E0 EMAX EC50, then the proportional (DVID 1) and additive (DVID 2) SDs
CL, V, KE0, E0, EMAX, EC50 = 5.0, 50.0, 0.7, 10.0, 80.0, 1.5


def _closed_form(dose: float) -> tuple[np.ndarray, np.ndarray]:
    """Bolus into a one-compartment model with an effect compartment, and an Emax on its level."""
    k = CL / V
    conc = dose / V * np.exp(-k * TIMES)
    ce = dose / V * KE0 / (KE0 - k) * (np.exp(-k * TIMES) - np.exp(-KE0 * TIMES))
    return conc, E0 + EMAX * ce / (EC50 + ce)


def test_dvid_values_become_observables_against_the_closed_form() -> None:
    conv = convert(STREAM.read_bytes(), source=STREAM.name)
    card = conv.card
    cmts = card.compartments
    assert cmts is not None and cmts.observation_item == "DVID"
    by_value = {lv.value: lv.observable for lv in cmts.levels}
    assert set(by_value) == {1.0, 2.0} and all(lv.cmt is None for lv in cmts.levels)  # Y uses no F
    errors = {e.observable: e for e in card.residual_error}
    pk, pd = errors[by_value[1.0]], errors[by_value[2.0]]
    assert (pk.model, pk.proportional_sd) == ("proportional", pytest.approx(0.1))
    assert (pd.model, pd.additive_sd) == ("additive", pytest.approx(2.0))
    assert "DVID" not in {c.name for c in card.covariates}  # routes rows, is not a model input
    twin = bind_regimen(
        load_model(conv.sbml, card), (ReferenceDose(route="iv-bolus", amount=100, time_h=0),), {}
    )
    values = simulate(twin, TIMES).values
    conc, effect = _closed_form(100.0)
    np.testing.assert_allclose(values[by_value[1.0]], conc, rtol=1e-5)
    np.testing.assert_allclose(values[by_value[2.0]], effect, rtol=1e-5)


def test_event_table_rows_are_routed_by_dvid_whatever_their_cmt() -> None:
    card = convert(STREAM.read_bytes(), source=STREAM.name).card
    mapping = event_table_mapping(card)
    assert mapping.observation_item == "DVID"
    result = read_event_table(FIXTURES / "dvid_pkpd.csv", mapping)
    record = result.records[0]
    analytes = {o.id: o.analyte for o in card.observables}
    by_value = {lv.value: lv.observable for lv in card.compartments.levels}  # type: ignore[union-attr]
    levels = [(m.value, m.drug_level.analyte) for m in record.drug_levels() if m.drug_level]
    assert levels == [  # CMT 1 and 2 alike: DVID decides
        (1.6, analytes[by_value[1.0]]),
        (45.2, analytes[by_value[2.0]]),
        (0.9, analytes[by_value[1.0]]),
        (52.1, analytes[by_value[2.0]]),
    ]
    rejected = {k: n for k, n in result.report.reason_counts.items() if k[1] == "rejected"}
    assert rejected == {("observation", "rejected", "no analyte mapped to DVID 3 in CMT 1"): 1}


def test_a_prediction_whose_error_model_an_item_switches_is_refused() -> None:
    """Replicates (REPL) with their own EPS on one prediction: not two observables, and the card
    has one error model per observable."""
    text = STREAM.read_text().replace("Y = E + THETA(8)*EPS(2)", "Y = IPRED + THETA(7)*IPRED*EPS(2)")
    with pytest.raises(NonmemError) as exc:
        convert(text.encode(), source="repl.mod")
    problems = exc.value.problems
    assert any(p.construct == "Y" and "one prediction" in p.message and p.line for p in problems)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("ENDIF\nIF (DVID.EQ.2) THEN", "ELSE", "IF/ELSE"),  # pharmpy's Y_1/Y_2
        ("IF (DVID.EQ.2) THEN", "IF (DVID.GT.1) THEN", "DVID"),  # pharmpy's Y and Y_1
        ("IF (TYPE.EQ.2) THEN", "IF (TYPE.GT.1) THEN", "TYPE other than by one item compared with"),
    ],
)
def test_types_not_named_by_value_are_refused(old: str, new: str, words: str) -> None:
    text = STREAM.read_text()
    if "TYPE" in old:  # an item pharmpy does not read as DVID
        text = text.replace("DVID", "TYPE")
    assert old in text
    with pytest.raises(NonmemError, match=words):
        convert(text.replace(old, new).encode(), source="else.mod")


def test_a_default_y_observes_the_rows_of_values_no_branch_names() -> None:
    """``Y = ...`` before ``IF (DVID.EQ.2) Y = ...``: DVID 2 is the effect, any other value the level."""
    text = (
        STREAM.read_text()
        .replace("IF (DVID.EQ.1) THEN\n", "")
        .replace("ENDIF\nIF (DVID.EQ.2)", "IF (DVID.EQ.2)")
    )
    conv = convert(text.encode(), source="default.mod")
    cmts = conv.card.compartments
    assert cmts is not None
    by_value = {lv.value: lv.observable for lv in cmts.levels}
    assert set(by_value) == {None, 2.0}
    mapping = event_table_mapping(conv.card)
    other, effect = (mapping.level_compartment(1, v) for v in (3.0, 2.0))
    assert other is not None and effect is not None and other.value is None and effect.value == 2.0
    errors = {e.observable: e.model for e in conv.card.residual_error}
    assert errors == {by_value[None]: "proportional", by_value[2.0]: "additive"}


def test_cards_without_an_observation_item_hash_as_before() -> None:
    card = convert((FIXTURES / "advan1_iv.mod").read_bytes(), source="advan1_iv.mod").card
    canonical = json.dumps(_canonical_card(card))
    assert card.compartments is not None and card.compartments.levels
    assert "observation_item" not in canonical and '"value"' not in canonical
    stored = json.loads(card.model_dump_json())
    for lv in stored["compartments"]["levels"]:
        del lv["value"]
    del stored["compartments"]["observation_item"]
    assert content_hash(card.id, b"x", parse(ModelCard, stored)) == content_hash(card.id, b"x", card)
    with pytest.raises(SchemaError, match="a CMT and no value"):
        parse(
            ModelCard, {**stored, "compartments": {**stored["compartments"], "levels": [{"observable": "x"}]}}
        )


def test_a_guard_against_an_amount_of_zero_is_its_otherwise_value() -> None:
    """``IF (A(n).EQ.0) DEL = 1`` (two amounts) before ``LOG(A(1)/V + DEL)``: A(1)/V, log scale."""
    guarded = "DEL = 0\nIF (A(1).EQ.0) DEL = 1\nIF (A(2).EQ.0) DEL = 1\nIPRED = A(1)/V + DEL\n"
    text = STREAM.read_text().replace("IPRED = A(1)/V\n", guarded)
    text = text.replace("Y = IPRED + W*EPS(1)", "Y = LOG(IPRED) + THETA(7)*EPS(1)")
    conv = convert(text.encode(), source="guard.mod")
    by_value = {lv.value: lv.observable for lv in conv.card.compartments.levels}  # type: ignore[union-attr]
    errors = {e.observable: e for e in conv.card.residual_error}
    pk = errors[by_value[1.0]]
    assert (pk.model, pk.proportional_sd) == ("exponential", pytest.approx(0.1))
    dose = ReferenceDose(route="iv-bolus", amount=100, time_h=0)
    values = simulate(bind_regimen(load_model(conv.sbml, conv.card), (dose,), {}), TIMES).values
    np.testing.assert_allclose(values[by_value[1.0]], _closed_form(100.0)[0], rtol=1e-5)
