"""The omics importers' report: the one import report of ``converters.report``.

Kept as a module so existing imports (``from converters.omics.report import ImportReport``)
go on working; there is one implementation.
"""

from __future__ import annotations

from converters.report import EXAMPLES_PER_REASON, ImportReport, Tally

__all__ = ["EXAMPLES_PER_REASON", "ImportReport", "Tally"]
