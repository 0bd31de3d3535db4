"""The ``interop`` command: the composition root that wires converters, registry and twin.

Each command group lives in its own module and registers itself here. User errors
(``InteropError``, bad options) print one line and exit non-zero; never a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from interop.errors import InteropError

__all__ = ["app", "main"]

app = typer.Typer(
    name="interop",
    help="Interoperability hub for digital pharmacological twins.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


def _register() -> None:
    # One line per command group; each module defines `register(app)`.
    from interop.cli import (
        demo,
        export_fhir,
        import_fhir,
        import_omics,
        imports,
        nonmem,
        pharmml,
        registry,
        schemas,
        simulate,
        synth,
        twin,
        validate,
    )

    for module in (
        schemas,
        imports,
        import_fhir,
        import_omics,
        export_fhir,
        synth,
        demo,
        nonmem,
        pharmml,
        registry,
        twin,
        validate,
        simulate,
    ):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: click reports usage errors itself (exit 2); ours exit 1."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="interop", standalone_mode=True)
    except InteropError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:  # unreadable input, unwritable output folder: the user's to fix
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
