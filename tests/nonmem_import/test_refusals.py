"""What SBML + card cannot represent is refused with the line and the construct, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.cli import app
from registry.formats.nonmem import NonmemError, convert
from tests.nonmem_import import streams


@pytest.mark.parametrize(
    ("text", "construct", "line"),
    [
        (streams.PRED_MODEL, "$PRED", 4),
        (streams.MIX_MODEL, "$MIX", 10),
        (streams.USER_ROUTINE, "$SUBROUTINES", 4),
        (streams.MODELLED_RATE, "R1", 10),
        (streams.ADVAN1_IV.replace("ADVAN1 TRANS2", "ADVAN9"), "ADVAN9", 4),
        (streams.Y_ON_DATA, "Y", 12),
    ],
)
def test_refused_with_line_and_construct(text: str, construct: str, line: int) -> None:
    with pytest.raises(NonmemError) as exc:
        convert(text.encode(), source="run.mod")
    problem = next(p for p in exc.value.problems if p.construct == construct)
    assert problem.line == line
    assert f"line {line}: {construct}" in str(exc.value)


def test_cli_refusal_writes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    mod = tmp_path / "run.mod"
    mod.write_text(streams.MIX_MODEL)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["nonmem", "convert", str(mod), "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()
