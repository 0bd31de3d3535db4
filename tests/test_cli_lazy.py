"""``interop`` loads command modules lazily: its table names exactly what the modules register, and
``interop --help`` lists every command without importing the heavy stacks."""

from __future__ import annotations

import subprocess
import sys

import typer

from interop import cli
from tests.clirun import invoke
from tests.data import ROOT


def test_the_table_lists_exactly_what_the_modules_register() -> None:
    for name, (_, help_line) in cli._COMMANDS.items():
        command = cli.load_command(name)
        assert command.name == name
        assert (command.help or "").split("\n\n")[0].strip() == help_line, name
    # every module is loaded now: nothing it registered is missing from the table, and each group
    # loaded on its own already had every subcommand that any module hangs on it
    full = typer.main.get_group(cli._modules).commands
    assert set(full) == set(cli._COMMANDS)
    for name, command in full.items():
        assert sorted(getattr(command, "commands", {})) == sorted(
            getattr(cli.load_command(name), "commands", {})
        )


def test_every_command_module_is_in_the_table() -> None:
    listed = {module for modules, _ in cli._COMMANDS.values() for module in modules}
    defining = {
        path.stem
        for path in (ROOT / "interop" / "cli").glob("*.py")
        if "\ndef register(" in path.read_text(encoding="utf-8")
    }
    assert defining == listed


def test_help_lists_every_command_and_subcommands_still_resolve() -> None:
    res = invoke(["--help"])
    assert res.returncode == 0, res.stderr
    for name in cli._COMMANDS:
        assert f" {name} " in res.stdout, name
    twin = invoke(["twin", "--help"])
    assert twin.returncode == 0 and "compare-nonmem" in twin.stdout
    unknown = invoke(["no-such-command"])
    assert unknown.returncode == 2 and "No such command" in unknown.stderr


def test_help_imports_no_command_module_or_heavy_stack() -> None:
    code = (
        "import sys\nfrom interop.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('pandas', 'sqlalchemy', 'roadrunner', 'pydantic', 'numpy', 'interop.schema', 'registry',"
        " 'converters', 'interop.cli.twin', 'interop.cli.registry')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    assert "LOADED []" in proc.stdout, proc.stdout[-500:]
