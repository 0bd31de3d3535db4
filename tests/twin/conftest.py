from __future__ import annotations

from collections.abc import Callable

import pytest

from interop.schema import ModelCard, parse_json
from interop.twin import CompiledModel, load_model
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML, mapbayr_card, mapbayr_sbml


def mapbayr_model(model: str) -> CompiledModel:
    card = parse_json(ModelCard, mapbayr_card(model).read_text())
    return load_model(mapbayr_sbml(model).read_text(), card)


@pytest.fixture(scope="session")
def mapbayr() -> Callable[[str], CompiledModel]:
    return mapbayr_model


@pytest.fixture(scope="session")
def gentamicin() -> CompiledModel:
    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    return load_model(GENTAMICIN_SBML.read_text(), card)
