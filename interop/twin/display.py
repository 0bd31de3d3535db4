"""Numbers for clinicians: three significant figures, never scientific notation, always a unit.

Written by hand because the rule is small and specific: Python's ``g`` format switches to
exponents (``1.09e+03``) and ``f`` loses the small values; a clinician reads ``1090 mg`` and
``0.0456 mg/L``.
"""

from __future__ import annotations

import math

__all__ = ["auc_unit", "auc_unit_ucum", "format_number", "format_quantity"]


def format_number(value: float, figures: int = 3) -> str:
    """``value`` to ``figures`` significant figures (integers of more digits kept whole), plain notation."""
    if value is None or not math.isfinite(value):
        return "not available" if value is None or math.isnan(value) else ("∞" if value > 0 else "-∞")
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, figures - 1 - magnitude)
    text = f"{round(value, decimals):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_quantity(value: float, unit: str, figures: int = 3) -> str:
    """``value`` with its unit (``%`` written without a space)."""
    number = format_number(value, figures)
    if not unit or unit == "1":
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def auc_unit(concentration_unit: str) -> str:
    """Display unit of an AUC for a concentration unit: ``mg/L`` -> ``mg·h/L``."""
    num, sep, den = concentration_unit.partition("/")
    return f"{num}·h/{den}" if sep else f"{concentration_unit}·h"


def auc_unit_ucum(concentration_unit: str) -> str:
    """UCUM code of the same AUC unit: ``mg/L`` -> ``mg.h/L``."""
    num, sep, den = concentration_unit.partition("/")
    return f"{num}.h/{den}" if sep else f"{concentration_unit}.h"
