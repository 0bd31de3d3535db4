"""PharmML symbols: who declares what, their SBML ids, and resolving ``SymbRef`` to them.

PharmML scopes symbols by block (``blkId``); SBML has one flat namespace. Each declared
``(block, symbId)`` gets the symbId as SBML id, made a valid SBML identifier, suffixed with the
block id only when two blocks declare the same name, and kept clear of names the libsbml infix
parser gives a meaning to (the twin runtime re-parses rate rules as infix text).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from registry.formats.pharmml.document import Problems, child, children, local
from registry.formats.pharmml.maths import Expr, Sym, Time, Unsupported, parse_expr, substitute

__all__ = ["Declaration", "SymbolTable", "sbml_id"]

_RESERVED = {
    "e", "pi", "time", "t", "avogadro", "inf", "infinity", "nan", "notanumber", "true", "false",
    "exponentiale", "exp", "ln", "log", "log10", "sqrt", "abs", "floor", "ceil", "ceiling",
    "power", "pow", "sin", "cos", "tan", "min", "max", "rem", "piecewise", "delay", "factorial",
    "and", "or", "not", "xor", "lt", "gt", "leq", "geq", "eq", "neq", "plus", "minus", "times",
    "divide", "root", "rateOf", "quotient", "implies",
}  # fmt: skip


def sbml_id(name: str) -> str:
    """``name`` as a valid SBML SId that the L3 infix parser reads as a plain name."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
    if not re.match(r"[A-Za-z_]", out):
        out = "_" + out
    if out.lower() in _RESERVED:
        out += "_"
    return out


@dataclass
class Declaration:
    block: str  # blkId, "" for global symbols (function definitions, independent variable)
    name: str  # symbId
    kind: str  # population | eta | epsilon | individual | covariate | variable | derivative | ...
    element: etree._Element
    sbml: str = ""


@dataclass
class SymbolTable:
    problems: Problems
    time_symbol: str | None = None
    declarations: dict[tuple[str, str], Declaration] = field(default_factory=dict)
    functions: dict[str, etree._Element] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings for the conversion
    vectors: dict[str, int] = field(default_factory=dict)  # multivariate random variable -> size
    vector_uses: list[tuple[etree._Element, str, int]] = field(default_factory=list)
    _used_ids: set[str] = field(default_factory=set)

    def declare(self, block: str, name: str, kind: str, element: etree._Element) -> None:
        key = (block, name)
        if not name:
            self.problems.add(element, "declaration without a symbId")
            return
        if key in self.declarations:
            first = self.declarations[key].element.sourceline
            self.problems.add(
                element,
                f"symbol {name!r} declared twice in block {block!r} (first at line {first}): PharmML "
                "scopes a symbId to its block, so one of them is a slip of the file",
            )
            return
        self.declarations[key] = Declaration(block, name, kind, element)

    def assign_ids(self) -> None:
        """Give every declaration its SBML id (call once, after every declaration)."""
        counts: dict[str, int] = {}
        for _block, name in self.declarations:
            counts[name] = counts.get(name, 0) + 1
        for (block, name), decl in self.declarations.items():
            base = sbml_id(name if counts[name] == 1 else f"{name}_{block}")
            decl.sbml = self.fresh(base)

    def fresh(self, base: str) -> str:
        """An SBML id not used yet, starting from ``base``."""
        candidate, n = base, 1
        while candidate in self._used_ids:
            n += 1
            candidate = f"{base}_{n}"
        self._used_ids.add(candidate)
        return candidate

    def by_kind(self, *kinds: str) -> list[Declaration]:
        return [d for d in self.declarations.values() if d.kind in kinds]

    def lookup(self, element: etree._Element, block: str | None) -> Declaration:
        """The declaration a ``SymbRef`` element names (raises Unsupported when dangling)."""
        name = element.get("symbIdRef", "")
        ref_block = element.get("blkIdRef")
        if ref_block is not None:
            decl = self.declarations.get((ref_block, name))
            if decl is None:
                # a wrong blkIdRef (a writer's slip seen in published files): the one declaration
                # of that name elsewhere is meant, said in a warning; none or several stay dangling
                others = [d for (b, n), d in self.declarations.items() if n == name]
                if len(others) != 1:
                    raise Unsupported(
                        element, f"dangling reference: no symbol {name!r} in block {ref_block!r}"
                    )
                decl = others[0]
                note = (
                    f"{name!r} referred to in block {ref_block!r} is the one declared in block {decl.block!r}"
                )
                if note not in self.notes:
                    self.notes.append(note)
            return decl
        if block is not None and (block, name) in self.declarations:
            return self.declarations[(block, name)]
        found = [d for (b, n), d in self.declarations.items() if n == name]
        if len(found) == 1:
            return found[0]
        if not found:
            raise Unsupported(element, f"dangling reference: no symbol {name!r} is declared")
        blocks = ", ".join(sorted(d.block for d in found))
        raise Unsupported(element, f"ambiguous reference {name!r} (declared in blocks {blocks})")

    def scope(self, block: str | None) -> BlockScope:
        return BlockScope(self, block, {})


@dataclass
class BlockScope:
    """Resolves names inside one block; ``arguments`` are a function's formal parameters."""

    table: SymbolTable
    block: str | None
    arguments: dict[str, Expr]

    def ref(self, element: etree._Element) -> Expr:
        name = element.get("symbIdRef", "")
        if element.get("blkIdRef") is None and name in self.arguments:
            return self.arguments[name]
        if element.get("blkIdRef") is None and name and name == self.table.time_symbol:
            return Time()
        decl = self.table.lookup(element, self.block)
        if decl.kind in ("level", "function", "observation"):
            raise Unsupported(element, f"{decl.kind} {name!r} cannot be used in an expression")
        if decl.sbml in self.table.vectors:
            raise Unsupported(element, f"the vector {name!r} is used whole (select its cells)")
        return Sym(decl.sbml)

    def select(self, element: etree._Element, vector: etree._Element, index: int) -> Expr:
        """Cell ``index`` (from 1) of a vector-valued random variable or population parameter: its
        own SBML parameter; checked against the vector's size once every block is read."""
        decl = self.table.lookup(vector, self.block)
        if decl.kind not in ("random", "population", "individual"):
            raise Unsupported(element, f"<VectorSelector> of {decl.name!r}: only vector-valued parameters")
        self.table.vector_uses.append((element, decl.sbml, index))
        return Sym(f"{decl.sbml}_{index}")

    def call(self, element: etree._Element, name: str, args: dict[str, Expr]) -> Expr:
        fn = self.table.functions.get(name)
        if fn is None:
            raise Unsupported(element, f"dangling reference: no function {name!r} is defined")
        formal = [a.get("symbId", "") for a in children(fn, "FunctionArgument")]
        missing = [a for a in formal if a not in args]
        extra = [a for a in args if a not in formal]
        if missing or extra:
            raise Unsupported(
                element,
                f"call of {name!r}: missing arguments {missing}, unknown arguments {extra}",
            )
        definition = child(fn, "Definition")
        if definition is None:
            raise Unsupported(fn, f"function {name!r} has no Definition")
        body_scope = BlockScope(self.table, None, {a: args[a] for a in formal})
        return parse_expr(definition, body_scope)

    def parse(self, element: etree._Element) -> Expr:
        return parse_expr(element, self)


def first_expression(element: etree._Element) -> etree._Element | None:
    """The expression element inside ``element`` (through ``Assign``/``Equation`` wrappers)."""
    for c in children(element):
        if local(c) in ("Description", "VariabilityReference", "Name"):
            continue
        return c
    return None


def rename(expr: Expr, mapping: dict[str, str]) -> Expr:
    return substitute(expr, {k: Sym(v) for k, v in mapping.items()})


ParseFn = Callable[[etree._Element], Expr]
