"""Conversion options a format plug-in's ``load`` accepts: what a file often lacks.

PharmML files often omit parameter values, units and the drug's code; NONMEM control streams
never carry units or the drug. ``registry submit`` and ``POST /models`` take them as
``--set NAME=VALUE``, ``--unit OBSERVABLE=UNIT`` (or ``dose=UNIT``) and ``--drug RXNORM[=NAME]``,
as ``pharmml convert`` does, and pass them to the plug-in's ``load``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interop.errors import RegistryError
from interop.schema import RXNORM, Coding

__all__ = ["ACCEPTS", "conversion_options"]

# Which options each plug-in's load takes (others reject them rather than ignore them).
ACCEPTS: dict[str, frozenset[str]] = {
    "pharmml": frozenset({"values", "units", "drug"}),
    "nonmem": frozenset({"units", "drug"}),
}


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RegistryError(f"{item!r} is not NAME=VALUE", field=what)
        out[key.strip()] = value.strip()
    return out


def conversion_options(
    sets: Sequence[str] = (), units: Sequence[str] = (), drug: str | None = None
) -> dict[str, Any]:
    """``load`` keyword arguments from the command-line / form spellings (empty: none given)."""
    out: dict[str, Any] = {}
    if sets:
        try:
            out["values"] = {k: float(v) for k, v in _pairs(sets, "set").items()}
        except ValueError as exc:
            raise RegistryError(f"--set needs numbers: {exc}", field="set") from exc
    if units:
        out["units"] = _pairs(units, "unit")
    if drug:
        code, _, name = drug.partition("=")
        if not code.strip():
            raise RegistryError(f"{drug!r} is not RXNORM[=NAME]", field="drug")
        out["drug"] = Coding(system=RXNORM, code=code.strip(), display=name.strip() or None)
    return out


def check_options(fmt: str, options: dict[str, Any]) -> None:
    """Refuse options the format's plug-in does not take (a silently ignored --set is a trap)."""
    extra = set(options) - ACCEPTS.get(fmt, frozenset())
    if extra:
        names = ", ".join(sorted({"values": "--set", "units": "--unit", "drug": "--drug"}[k] for k in extra))
        raise RegistryError(f"{names} apply to PharmML/NONMEM uploads, not to {fmt}", field=sorted(extra)[0])
