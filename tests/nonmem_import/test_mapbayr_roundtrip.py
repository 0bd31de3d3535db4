"""The four mapbayr control streams, converted, reproduce NONMEM's POSTHOC ETAs and OBJ.

The same acceptance as the hand-written models (tests/twin/test_nonmem_agreement.py); the CMT
numbers come from the converted card, with no --dose-cmt/--level-cmt.
"""

from __future__ import annotations

import pytest

from interop.workflows.twin import compare_with_nonmem
from registry.formats.nonmem import convert
from tests.data import MAPBAYR, MAPBAYR_MODELS, mapbayr_data, mapbayr_phi


@pytest.mark.parametrize("model", MAPBAYR_MODELS)
def test_converted_control_stream_reproduces_nonmem(model: str) -> None:
    conv = convert((MAPBAYR / f"run{model}.mod").read_bytes(), source=f"run{model}.mod")
    assert conv.card.compartments is not None
    agreement = compare_with_nonmem(conv.sbml, conv.card, mapbayr_data(model), mapbayr_phi(model), starts=1)
    assert agreement.n_subjects == 100
    assert agreement.worse_mode == 0
    # better modes (006: the event-time search over ETA_D2) are reported, the rest agree with NONMEM
    same = agreement.same_mode()
    assert same.share_excellent >= 0.95
    assert same.share_within_acceptable >= 0.995
    assert same.ofv_within == same.n_subjects
    assert agreement.passes(0.95, 0.995, 1.0)
