"""``interop import ...``: every converter's command lives in this group, with what they share.

Every importer takes its pseudonymisation key the same way (:data:`KEY_FILE_OPTION` or
``$INTEROP_PSEUDONYM_KEY``; it refuses to run without one), prints its report with
:func:`print_report`, exits 1 when every input was rejected (:func:`fail_if_all_rejected`)
and runs under :func:`terminate_cleanly`, so SIGTERM unwinds like an error and no temporary
file is left in the output folder.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from converters.pseudonym import KEY_ENV, load_key, source_token
from converters.report import Hide, ImportReport
from interop.errors import ConversionError

__all__ = [
    "KEY_FILE_OPTION",
    "SHOW_PATHS_OPTION",
    "TOP_REJECTIONS",
    "fail_if_all_rejected",
    "hider",
    "import_app",
    "print_report",
    "require_key",
    "shown",
    "terminate_cleanly",
]

import_app = typer.Typer(help="Import data into the shared patient schema.", no_args_is_help=True)

TOP_REJECTIONS = 10
KEY_FILE_OPTION: Any = typer.Option(
    None,
    "--pseudonymise-key-file",
    help=f"Secret key file (else ${KEY_ENV}); at least 16 bytes, never written to any output",
)


def register(app: typer.Typer) -> None:
    # Each converter's CLI module adds its commands to `import_app` (one line each).
    app.add_typer(import_app, name="import")


def require_key(key_file: Path | None) -> bytes:
    """The pseudonymisation key from the file or the environment; a typed error without one."""
    return load_key(key_file)


SHOW_PATHS_OPTION: Any = typer.Option(
    False, "--show-paths", help="Name input files by path on the console (never in written files)"
)


def hider(key: bytes) -> Hide:
    """How outputs show a source file: its keyed token, never its (identifying) name."""
    return lambda source: source_token(key, source)


def shown(source: str) -> str:
    """The console's view with ``--show-paths``: the path as given."""
    return source


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` so ``finally`` blocks remove temporary files."""

    def _raise(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (e.g. an in-process test runner): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def print_report(
    console: Console, report: ImportReport, title: str, hide: Hide, top: int = TOP_REJECTIONS
) -> None:
    """The one rendering of an import report: counts per unit, then the first rejections by file:line.

    Files are named as ``hide`` shows them: by keyed token (a console is often kept in a job
    log, and exporters name files after the patient), or by path when the operator asks
    (``--show-paths``).
    """
    table = Table(title=title)
    for col in ("unit", "read", "converted", "rejected", "skipped"):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for t, r, c, j, s in report.summary_rows():
        table.add_row(t, str(r), str(c), str(j), str(s))
    tot = report.totals()
    table.add_row("[bold]total", *(f"[bold]{tot[k]}" for k in ("read", "converted", "rejected", "skipped")))
    console.print(table)
    shown, rest = report.top_rejections(top)
    for issue in shown:
        console.print(
            f"  [red]rejected[/] {escape(issue.where(hide, report.source))}: {escape(issue.reason)}",
            highlight=False,
            soft_wrap=True,  # a path is never broken across lines
        )
    if rest > 0:
        console.print(f"  ... and {rest} more rejection(s): see the report's reasons")
    for (unit, outcome, why), n in report.reason_counts.most_common(top):
        console.print(f"  {unit}: {n} x {outcome}: {escape(why)}", highlight=False, soft_wrap=True)
    for name, n in report.counts.items():
        console.print(f"  {name}: {n}")
    for w in report.warnings:
        console.print(f"  [yellow]warning:[/] {escape(w)}")
    console.print(
        f"counts add up: {'yes' if report.balanced() else '[red]NO'}; "
        f"{len(report.unmapped_codes)} unmapped code(s); "
        f"{sum(report.unit_conversions.values())} unit conversion(s)"
    )


def fail_if_all_rejected(report: ImportReport, where: Path) -> None:
    """An import of which every input was rejected is an input error (exit 1), after its report."""
    if report.all_rejected():
        tot = report.totals()
        raise ConversionError(
            f"every input was rejected ({tot['rejected']} rejected, {tot['skipped']} skipped, "
            f"nothing converted); the report says why",
            source=str(where),
        )
