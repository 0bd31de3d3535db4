"""The ML card contract and the hybrid link on the mechanistic card: what each refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from interop.errors import SchemaError
from interop.schema import MLCard, ModelCard, parse, parse_json
from tests.data import GENTAMICIN_CARD
from tests.ml.conftest import TEMPLATE


def _card(**changes: Any) -> dict[str, Any]:
    return {**json.loads(TEMPLATE.read_text()), **changes}


def test_the_template_card_parses_and_names_its_features() -> None:
    card = parse(MLCard, _card())
    assert card.feature_names == ("CRCL", "CYP")
    assert card.features[1].impute == 0 and card.features[0].aggregation == "last"
    assert card.features[0].as_covariate().source.unit == "mL/min"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": []}, "at least 1"),
        ({"reference_cases": [{"inputs": {"CRCL": 60}, "expected": 1.0}]}, "must name every feature"),
        ({"artefact": "../model.onnx"}, "relative path"),
        ({"id": "Bad Id"}, "model id rule"),
        ({"predicts": {"kind": "dose", "name": "x", "unit": "1"}}, "kind"),
    ],
)
def test_bad_cards_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse(MLCard, _card(**change))


def test_a_feature_to_impute_needs_its_value_and_derived_features_known_inputs() -> None:
    feats = _card()["features"]
    with pytest.raises(SchemaError, match="impute value"):
        parse(MLCard, _card(features=[feats[0], {**feats[1], "impute": None}]))
    derived = {"name": "R", "source": {"derived": {"expression": "CRCL / WT"}}}
    with pytest.raises(SchemaError, match="unknown covariate"):
        parse(MLCard, _card(features=[*feats, derived]))


def _hybrid(**link: Any) -> dict[str, Any]:
    card = json.loads(GENTAMICIN_CARD.read_text())
    return {
        **card,
        "ml_models": [{"model": "toy-cl@1", "role": "typical_value", "parameter": "TVCL", **link}],
    }


def test_a_hybrid_card_pins_the_ml_version_and_checks_its_parameter_use() -> None:
    base = json.loads(GENTAMICIN_CARD.read_text())
    card = parse(ModelCard, _hybrid())
    assert card.ml_models[0].model_version == 1 and "TVCL" in card.sbml_ids()
    with pytest.raises(SchemaError, match="ID@VERSION"):
        parse(ModelCard, _hybrid(model="toy-cl"))
    with pytest.raises(SchemaError, match="not a covariate with a reference"):
        parse(ModelCard, _hybrid(replaces_covariates=["NOPE"]))
    with pytest.raises(SchemaError, match="appears in no observable"):
        parse(ModelCard, _hybrid(role="correction"))
    assert parse_json(ModelCard, json.dumps(base)).ml_models == ()


def test_cards_without_ml_models_keep_their_content_hash() -> None:
    """Card 1.2 added ``ml_models``; a registry recognises an identical resubmission of an older
    card (same hash as before the field existed), while a hybrid card hashes its links."""
    import hashlib

    from registry.submission import content_hash
    from tests.data import GENTAMICIN_SBML

    card = parse(ModelCard, json.loads(GENTAMICIN_CARD.read_text()))
    sbml = GENTAMICIN_SBML.read_bytes()
    before = json.loads(card.model_dump_json())
    del before["ml_models"]
    doses = [d for ref in before["reference_outputs"] for d in ref["doses"]]
    for item in before["dosing"] + doses:  # card 1.3's administration ids did not exist either
        del item["adm"]
    text = json.dumps(before, sort_keys=True, separators=(",", ":")).encode()
    assert (
        content_hash(card.id, sbml, card)
        == hashlib.sha256(card.id.encode() + b"\0" + sbml + b"\0" + text).hexdigest()
    )
    assert content_hash(card.id, sbml, parse(ModelCard, _hybrid())) != content_hash(card.id, sbml, card)
