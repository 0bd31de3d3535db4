"""SBML + card -> control stream, parsed back with pharmpy and converted again."""

from __future__ import annotations

import numpy as np
import pytest

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import load_model
from interop.twin.binding import bind_regimen
from interop.twin.simulate import simulate
from registry.formats.nonmem import convert
from registry.formats.nonmem.export import export_control_stream
from tests.data import mapbayr_card, mapbayr_sbml
from tests.nonmem_import import streams


def _predict(sbml: str, card: ModelCard, observable: str) -> np.ndarray:
    twin = bind_regimen(load_model(sbml, card), (ReferenceDose(route="oral", amount=100, time_h=0),), {})
    return simulate(twin, [0.5, 1, 2, 6, 12, 24]).values[observable]


@pytest.mark.parametrize("model", ["001", "401"])
def test_hand_written_model_exports_and_parses_back(model: str) -> None:
    from pharmpy.modeling import read_model_from_string

    card = parse_json(ModelCard, mapbayr_card(model).read_text())
    sbml = mapbayr_sbml(model).read_text()
    text = export_control_stream(sbml, card)
    parsed = read_model_from_string(text)
    assert len(parsed.random_variables.etas.names) == len(card.random_effects.etas)
    back = convert(text.encode(), source=f"export{model}.mod")
    assert len(back.card.observables) == len(card.observables)
    for orig, new in zip(card.observables, back.card.observables, strict=True):
        np.testing.assert_allclose(
            _predict(back.sbml, back.card, new.id), _predict(sbml, card, orig.id), rtol=1e-6
        )
        err, err_back = card.error_for(orig.id), back.card.error_for(new.id)
        assert err is not None and err_back is not None
        assert err_back.model == err.model
        assert err_back.proportional_sd == pytest.approx(err.proportional_sd)
    np.testing.assert_allclose(back.card.random_effects.omega, card.random_effects.omega)


def test_converted_stream_exports_back() -> None:
    conv = convert(streams.ADVAN2_ORAL.encode(), source="oral.mod")
    again = convert(export_control_stream(conv.sbml, conv.card).encode(), source="oral2.mod")
    np.testing.assert_allclose(
        _predict(again.sbml, again.card, again.card.observables[0].id),
        _predict(conv.sbml, conv.card, conv.card.observables[0].id),
        rtol=1e-6,
    )
