"""$PK (and $DES helper) statements as single-assignment SBML rules.

NM-TRAN code reassigns variables (``V = THETA(3)`` then ``IF (WT.GT.80) V = V*1.2``); SBML
assignment rules define each id once. Every definition but the last gets a versioned id
(``V__1``), the last keeps the name, and each right-hand side refers to the versions current at
that point, so the rules compute what the code computes. Only statements the model needs
(ODEs, dose parameters, observables) are kept: a ``$PK`` variable nobody reads is no reason to
refuse a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import sympy

__all__ = ["Rule", "StatementGraph", "mtime_id", "symbol_name"]

_RESERVED = {
    "time", "pi", "e", "true", "false", "exponentiale", "avogadro", "inf", "infinity", "nan",
    "notanumber", "exp", "ln", "log", "sqrt", "pow", "abs", "rate", "delay", "piecewise", "min",
    "max", "rem", "quotient", "and", "or", "not", "xor", "floor", "ceil", "ceiling", "sin", "cos",
    "tan", "root", "factorial", "implies", "eq", "neq", "gt", "lt", "geq", "leq",
}  # fmt: skip


def mtime_id(n: int) -> str:
    return f"MTIME_{n}"


def symbol_name(sym: sympy.Basic) -> str:
    """The NM-TRAN name of a statement's target (``MTIME(1)`` -> ``MTIME_1``)."""
    if isinstance(sym, sympy.Symbol):
        return sym.name
    if isinstance(sym, sympy.core.function.AppliedUndef):
        args = "_".join(str(a) for a in sym.args)
        return f"{type(sym).__name__}_{args}"
    return str(sym)


def safe_id(name: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not re.match(r"[A-Za-z_]", out):
        out = "v_" + out
    return out + "_" if out.lower() in _RESERVED else out


@dataclass
class Rule:
    sid: str  # SBML id
    name: str  # NM-TRAN name
    expr: sympy.Expr  # refers to SBML ids (as sympy symbols)
    line: int | None = None


@dataclass
class StatementGraph:
    """Versioned rules of the $PK block and the final SBML id of each name."""

    rules: dict[str, Rule] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, statements: Iterable[tuple[sympy.Basic, sympy.Expr, int | None]]) -> StatementGraph:
        items = list(statements)
        counts: dict[str, int] = {}
        for sym, _e, _l in items:
            counts[symbol_name(sym)] = counts.get(symbol_name(sym), 0) + 1
        graph = cls()
        seen: dict[str, int] = {}
        for sym, expr, line in items:
            name = symbol_name(sym)
            seen[name] = seen.get(name, 0) + 1
            sid = safe_id(name) if seen[name] == counts[name] else f"{safe_id(name)}__{seen[name]}"
            renamed = graph.rename(expr)
            graph.rules[sid] = Rule(sid, name, renamed, line)
            graph.final[name] = sid
        return graph

    def rename(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with every defined name replaced by its current SBML id."""
        mapping: dict[sympy.Basic, sympy.Basic] = {}
        for s in expr.free_symbols:
            if isinstance(s, sympy.Symbol) and s.name in self.final:
                mapping[s] = sympy.Symbol(self.final[s.name])
        for f in expr.atoms(sympy.core.function.AppliedUndef):
            name = symbol_name(f)
            if name in self.final:
                mapping[f] = sympy.Symbol(self.final[name])
        return expr.xreplace(mapping) if mapping else expr

    def needed(self, roots: Iterable[str]) -> list[Rule]:
        """The rules ``roots`` (SBML ids) depend on, in definition order."""
        keep: set[str] = set()
        stack = [r for r in roots if r in self.rules]
        while stack:
            sid = stack.pop()
            if sid in keep:
                continue
            keep.add(sid)
            stack += [s.name for s in self.rules[sid].expr.free_symbols if s.name in self.rules]
        return [r for sid, r in self.rules.items() if sid in keep]
