"""The ``interop`` command: the composition root that wires converters, registry and twin.

Each command group lives in its own module and registers itself (``register(app)``). The modules
load lazily: ``_COMMANDS`` names every top-level command, the modules that define it and its one-line
help, so ``interop --help`` lists them without importing pandas, SQLAlchemy or libRoadRunner, and
``interop twin ...`` imports only what the twin commands need. A test checks that the table matches
what the modules really register. User errors (``InteropError``, bad options) print one line and
exit non-zero; never a traceback.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from interop.errors import InteropError

if TYPE_CHECKING:  # typer runs its own copy of click (typer._click), not the installed one
    from typer._click import Command, Context, HelpFormatter

__all__ = ["app", "load_command", "main"]

# name -> (modules under interop.cli whose register() builds it, one-line help shown by --help).
# Order is the order of `interop --help`. Add a line here when a module registers a new command.
_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "demo": (
        ("demo",),
        "Run the end-to-end demo on the embedded default (SQLite and local files, no network).",
    ),
    "validate": (
        ("validate",),
        "Validate a registered model on a cohort: metrics, NPDE, VPC, HTML report, validation record.",
    ),
    "schemas": (("schemas",), "Contracts as JSON Schema / JSON-LD."),
    "import": (
        ("imports", "import_fhir", "import_omics", "twin"),
        "Import data into the shared patient schema.",
    ),
    "omics": (("import_omics",), "Omics records: export genotypes."),
    "export": (("export_fhir",), "Export patient records to other formats."),
    "synth": (("synth",), "Generate synthetic data."),
    "nonmem": (("nonmem",), "NONMEM control streams: convert to SBML + model card (pharmpy)."),
    "pharmml": (("pharmml",), "PharmML models (DDMoRe): convert to SBML + model card."),
    "registry": (("registry",), "The model registry: versioned, validated, searchable models."),
    "ml": (("ml",), "ML models (ONNX): export from scikit-learn, pack for the registry."),
    "twin": (("twin",), "Individualise a registered model from drug levels, forecast, recommend a dose."),
    "simulate": (("simulate",), "Simulate virtual subjects and cohorts."),
    "serve": (("serve",), "Serve the web application (pages at /, the API under /api)."),
}

_modules = typer.Typer()  # every loaded module registers here, once per process
_registered: set[str] = set()
_loaded: dict[str, Command] = {}


def load_command(name: str) -> Command:
    """The real click command ``name``, importing (once) the modules that register it."""
    if name not in _loaded:
        for module in _COMMANDS[name][0]:
            if module not in _registered:
                importlib.import_module(f"interop.cli.{module}").register(_modules)
                _registered.add(module)
        _loaded[name] = typer.main.get_group(_modules).commands[name]
    return _loaded[name]


class LazyGroup(TyperGroup):
    """Lists commands from ``_COMMANDS``; imports a command's module only when it runs."""

    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in _COMMANDS:
            return None
        if self._listing:  # --help: a placeholder carrying the help line is enough
            return TyperCommand(cmd_name, help=_COMMANDS[cmd_name][1])
        return load_command(cmd_name)

    def invoke(self, ctx: Context) -> Any:
        """Run the command; a user error (``InteropError``, unreadable or unwritable file) is one line."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `interop ... | head`: click closes quietly
            raise
        except (InteropError, OSError) as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="interop",
    cls=LazyGroup,
    help="Interoperability hub for digital pharmacological twins.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details")) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: click reports usage errors itself (exit 2); ours exit 1."""
    typer.main.get_command(app).main(args=argv, prog_name="interop", standalone_mode=True)
