"""Every NM-TRAN control stream of the DDMoRe Model Repository converts or is refused with a typed error.

Needs the optional DDMoRe corpus (``tests.data.DDMORE_CORPUS``); each file is its own test so a
crash names the model. A refusal must name a construct and the file; a conversion must compile
with libRoadRunner (whether it simulates with the data's covariates is bench/nonmem_coverage.py's
question).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from interop.twin import load_model
from registry.formats.nonmem import NonmemError, convert
from tests.data import DDMORE_CORPUS, require_corpus

_STREAM = re.compile(r"\.(mod|ctl)$", re.I)
# the repository's models at the time of writing; a missing one skips (the corpus is optional)
MODELS = (173, 194, 197, 198, 214, 215, 217, 218, 219, 220, 221, 222, 223, 224, 225, 228, 238, 239, 240,
          243, 244, 245, 247, 248, 249, 250, 256, 259, 261, 262, 267, 269, 271, 273, 274, 280, 281, 284,
          290, 294, 295, 297, 298, 301)  # fmt: skip


def _streams(number: int) -> list[Path]:
    folder = DDMORE_CORPUS / str(number)
    require_corpus(folder)
    return sorted(p for p in folder.iterdir() if _STREAM.search(p.name))


@pytest.mark.slow
@pytest.mark.parametrize("number", MODELS)
def test_converts_or_refuses_with_a_typed_error(number: int) -> None:
    for path in _streams(number):
        try:
            conv = convert(path.read_bytes(), source=str(path))
        except NonmemError as exc:
            assert exc.problems and all(p.construct for p in exc.problems)
            assert str(path) in str(exc)
            continue
        model = load_model(conv.sbml, conv.card)  # the SBML compiles with libRoadRunner
        assert model.card.observables and model.card.dosing, path
