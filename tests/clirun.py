"""Run the ``interop`` command in tests: in-process (fast) or as a user runs it (a subprocess).

Both return the same small result (``returncode``, ``stdout``, ``stderr``), so a test module's helper
can switch between them. In-process runs use typer's ``CliRunner`` on the root app, which handles
user errors exactly as the console script does (one line on stderr, exit 1). ``env`` values of
``None`` unset a variable for the run; settings are read per call (``get_settings`` caches per
environment value), so nothing leaks between runs. Keep one subprocess test per command group: it
proves the entry point, the lazy command loading and a clean interpreter still work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from interop.cli import app
from tests.data import ROOT

__all__ = ["CliRun", "invoke", "run_subprocess"]


@dataclass(frozen=True)
class CliRun:
    """What a test reads from one run, as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def invoke(args: Sequence[str], env: Mapping[str, str | None] | None = None) -> CliRun:
    """``interop ARGS`` in this process; an unexpected exception becomes a traceback on stderr."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})}, prog_name="interop")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliRun(result.exit_code, result.stdout, stderr)


def run_subprocess(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> CliRun:
    """``python -m interop ARGS`` in a fresh interpreter, with this checkout on ``PYTHONPATH``."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    proc = subprocess.run(
        [sys.executable, "-m", "interop", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=timeout,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)
