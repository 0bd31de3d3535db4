# Root conftest: makes the source tree importable for tests run from a checkout, and applies the
# external-data rule of tests/data.py (skip when absent, fail under CI=true) before every test.
from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Starlette's deprecations are UserWarnings of its own class: errors too, when it has that class."""
    try:
        from starlette.exceptions import StarletteDeprecationWarning  # noqa: F401
    except ImportError:
        return
    config.addinivalue_line("filterwarnings", "error::starlette.exceptions.StarletteDeprecationWarning")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests.data import check_external_paths

    check_external_paths(item)
