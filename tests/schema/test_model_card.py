"""The model card: the bundled card validates; broken cards are refused with a precise message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interop.errors import SchemaError
from interop.schema import ModelCard, ResidualError, parse, parse_json
from tests.data import GENTAMICIN_CARD


def card_json() -> dict:
    return json.loads(GENTAMICIN_CARD.read_text())


def test_bundled_card_validates_and_round_trips() -> None:
    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    assert card.random_effects.omega_matrix().shape == (2, 2)
    assert parse_json(ModelCard, card.model_dump_json()) == card
    assert {"A_central", "Cc", "WT", "SCR", "AGE", "SEX", "ETA_CL", "ETA_V"} <= card.sbml_ids()
    assert [i.target for i in card.dosing_for("iv-infusion")] == ["A_central"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("random_effects", "omega"), [[0.09, 0.5], [0.5, 0.04]], "positive definite"),
        (("random_effects", "omega"), [[0.09, 0.01], [0.02, 0.04]], "symmetric"),
        (("random_effects", "omega"), [[0.09]], "2x2"),
        (("id",), "Bad Id!", "id"),
        (("observables",), [], "observables"),
        (("residual_error",), [{"observable": "nope", "model": "additive", "additive_sd": 1}], "nope"),
        (
            ("dosing",),
            [
                {"route": "oral", "target": "A", "fraction": 0.7},
                {"route": "oral", "target": "B", "fraction": 0.7},
            ],
            "add up to 1.4",
        ),
        (("dosing",), [{"route": "oral", "target": "A", "bioavailability": 1.5}], "bioavailability"),
    ],
)
def test_broken_cards_are_refused(path: tuple, value: object, message: str) -> None:
    data = card_json()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SchemaError, match=message):
        parse(ModelCard, data)


def test_residual_variance_models() -> None:
    prop = ResidualError(observable="c", model="proportional", proportional_sd=np.sqrt(0.05))
    assert prop.variance(10.0) == pytest.approx(5.0)
    assert prop.variance(0.0) == pytest.approx(0.05)  # NONMEM uses F=1 where F is exactly 0
    comb = ResidualError(observable="c", model="combined", additive_sd=0.2, proportional_sd=0.1)
    assert comb.variance(4.0) == pytest.approx(0.04 + 0.16)
    with pytest.raises(SchemaError, match="additive_sd"):
        parse(ResidualError, {"observable": "c", "model": "combined", "proportional_sd": 0.1})


def _two_places(**extra: object) -> dict:
    """The bundled card with its infusion given in two places told apart by administration id."""
    data = card_json()
    data["dosing"] = [
        {"route": "iv-infusion", "target": "A_central", "adm": 1, **extra},
        {"route": "iv-infusion", "target": "A_periph", "adm": 2},
    ]
    return data


def test_administration_ids_choose_among_a_routes_inputs() -> None:
    card = parse(ModelCard, _two_places())
    assert [i.target for i in card.dosing_for("iv-infusion")] == ["A_central"]  # primary: first id
    assert [i.target for i in card.dosing_for("iv-infusion", 2)] == ["A_periph"]
    assert card.dosing_for("iv-infusion", 3) == () and card.administrations("iv-infusion") == (1, 2)
    data = _two_places()
    data["dosing"].append({"route": "iv-infusion", "target": "A_central"})  # an input without id
    assert [i.adm for i in parse(ModelCard, data).dosing_for("iv-infusion")] == [None]
    plain = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    assert plain.dosing_for("iv-infusion", 5) == plain.dosing_for("iv-infusion")  # no ids: any dose


def test_fractions_add_up_per_administration_and_compartments_name_one() -> None:
    parse(ModelCard, _two_places(fraction=1.0))  # 1 + 1 over two administrations: fine
    data = _two_places(fraction=0.6)
    data["dosing"].append({"route": "iv-infusion", "target": "A_periph", "adm": 1, "fraction": 0.6})
    with pytest.raises(SchemaError, match="route 'iv-infusion' adm 1 add up to 1.2"):
        parse(ModelCard, data)
    data = _two_places()
    data["compartments"] = {"doses": [{"cmt": 3, "route": "iv-infusion", "adm": 9}]}
    with pytest.raises(SchemaError, match="adm 9 without input"):
        parse(ModelCard, data)


def test_cards_without_administration_ids_hash_as_before() -> None:
    """Card 1.3's ``adm`` is left out of the content hash when unused (as 1.2's ``ml_models``)."""
    from registry.submission import _canonical_card, content_hash

    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    with_ids = parse(ModelCard, _two_places())
    without = parse(ModelCard, {**_two_places(), "dosing": [{"route": "iv-infusion", "target": "A_central"}]})
    assert "adm" in json.loads(card.model_dump_json())["dosing"][0]
    stored = json.loads(GENTAMICIN_CARD.read_text())
    assert "adm" not in json.dumps(stored)
    assert content_hash(card.id, b"x", card) == content_hash(card.id, b"x", parse(ModelCard, stored))
    assert content_hash(card.id, b"x", with_ids) != content_hash(card.id, b"x", without)
    assert card.reference_outputs and "adm" not in json.dumps(_canonical_card(card))  # reference doses too


def test_power_and_sbml_error_forms() -> None:
    power = ResidualError(observable="c", model="power", additive_sd=0.2, proportional_sd=0.1, exponent=0.5)
    assert power.variance(9.0) == pytest.approx(0.04 + (0.1 * 3.0) ** 2)
    unit = ResidualError(observable="c", model="power", additive_sd=0.2, proportional_sd=0.1, exponent=1.0)
    comb = ResidualError(observable="c", model="combined", additive_sd=0.2, proportional_sd=0.1)
    f = np.array([0.0, 0.5, 3.0])
    np.testing.assert_allclose(unit.variance(f), comb.variance(f))  # c = 1 is the combined form
    sd = ResidualError(observable="c", model="sbml", sd_parameter="W_c")
    np.testing.assert_allclose(sd.variance(f, np.array([1.0, 2.0, 3.0])), [1.0, 4.0, 9.0])
    with pytest.raises(ValueError, match="needs the simulated SD"):
        sd.variance(f)
    cases: list[tuple[dict[str, object], str]] = [
        ({"model": "power", "proportional_sd": 0.1}, "exponent is given exactly for a power"),
        ({"model": "proportional", "proportional_sd": 0.1, "exponent": 2.0}, "exponent is given exactly"),
        ({"model": "sbml"}, "an sbml error model needs sd_parameter"),
        (
            {"model": "power", "proportional_sd": 0.1, "exponent": 1.0, "sd_parameter": "W"},
            "sbml or exponential",
        ),
        ({"model": "sbml", "sd_parameter": "1x"}, "not an SBML identifier"),
        ({"model": "sbml", "sd_parameter": "W", "additive_sd": 0.1}, "takes its SD from it alone"),
    ]
    for bad, message in cases:
        with pytest.raises(SchemaError, match=message):
            parse(ResidualError, {"observable": "c", **bad})


def test_cards_without_the_new_error_fields_dump_and_hash_as_before() -> None:
    """Card 1.3 added ``exponent`` and ``sd_parameter``; left unset they are not dumped, so an older
    card's JSON (and its registry content hash) is unchanged."""
    raw = json.loads(GENTAMICIN_CARD.read_text())
    card = parse(ModelCard, raw)
    assert card.residual_error
    dumped = json.loads(card.model_dump_json())["residual_error"]
    assert [set(e) for e in dumped] == [{"observable", "model", "additive_sd", "proportional_sd"}] * len(
        dumped
    )
    sbml_card = card.replace(
        residual_error=[{"observable": card.observables[0].id, "model": "sbml", "sd_parameter": "V"}]
    )
    assert "V" in sbml_card.sbml_ids()
    assert json.loads(sbml_card.model_dump_json())["residual_error"][0]["sd_parameter"] == "V"
