"""Shared fixtures of the cohort tests: the bundled gentamicin model, a short design."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.cohort import Population, load_distributions
from interop.schema import ModelCard, parse_json
from tests.data import COHORT_COVARIATES, COHORT_DESIGN, GENTAMICIN_CARD, GENTAMICIN_SBML


@pytest.fixture(scope="session")
def card() -> ModelCard:
    return parse_json(ModelCard, GENTAMICIN_CARD.read_text())


@pytest.fixture(scope="session")
def sbml() -> str:
    return GENTAMICIN_SBML.read_text()


@pytest.fixture(scope="session")
def population(card: ModelCard) -> Population:
    return Population(load_distributions(COHORT_COVARIATES, card))


@pytest.fixture(scope="session")
def design_path() -> Path:
    return COHORT_DESIGN
