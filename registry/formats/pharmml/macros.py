"""PharmML PK macros as ODEs on amounts, and the dosing inputs they define.

Supported: ``Compartment`` (cmt, amount, volume, concentration), ``Peripheral`` (k_ij, k_ji,
amount, volume), ``Effect`` (cmt, ke0, concentration), ``IV`` (adm, cmt, p, Tlag), ``Oral`` /
``Absorption`` / ``Depot`` (adm, cmt or target, ka or Tk0, p, Tlag), ``Elimination`` (cmt and k,
CL, or Vm with Km), ``Transfer`` (from, to, kt). Transit absorption (Ktr, Mtt) is refused.

A ``Value`` without an ``argument`` attribute takes the name of the symbol it references (the
Monolix convention the DDMoRe examples follow: ``peripheral(k12, k21)``); rate constants of
peripheral compartments are ``k<i><j>`` or ``k_<i>_<j>``.

Monolix's defaults hold where an argument is left out: a compartment without ``volume`` has volume
1 (its concentration is its amount, warned where a macro needs it), and ``type`` (PharmML 0.6's
name of the administration number) is read as ``adm``.

Amounts are the states: first-order absorption adds a depot state per administration that
empties at ``ka`` into its compartment; a zero-order input (``Tk0``) goes straight into the
compartment, as an infusion whose duration is the parameter ``Tk0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from registry.formats.pharmml.document import Problems, children, local, xml_path
from registry.formats.pharmml.flatmodel import Parameter, ReadModel
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Unsupported

__all__ = ["DosingSpec", "expand_macros"]

_K = re.compile(r"^k_?(\d+)_?(\d+)$")
_KNOWN_ARGS = {
    "cmt",
    "adm",
    "amount",
    "volume",
    "concentration",
    "k",
    "CL",
    "V",
    "Vm",
    "Km",
    "ka",
    "Tk0",
    "Tlag",
    "p",
    "Ktr",
    "Mtt",
    "kt",
    "ke0",
    "from",
    "to",
    "target",
}
_ADMINISTRATIONS = ("IV", "Oral", "Absorption", "Depot")
# The argument an unnamed value stands for when its symbol is not named like an argument.
_DEFAULT_ARG = {"Elimination": "k", "Oral": "ka", "Absorption": "ka", "Depot": "ka",
                "Transfer": "kt", "Effect": "ke0"}  # fmt: skip


@dataclass
class DosingSpec:
    route: str
    target: str
    bioavailability: float | str = 1.0
    lag: float | str | None = None
    duration_parameter: str | None = None
    adm: int | None = None
    source: str = ""


@dataclass
class _Cmt:
    number: int
    amount: str
    volume: Expr | None


def _args(macro: etree._Element, model: ReadModel, block: str) -> dict[str, tuple[Expr, etree._Element]]:
    scope = model.table.scope(block)
    out: dict[str, tuple[Expr, etree._Element]] = {}
    for value in children(macro):
        if local(value) != "Value":
            raise Unsupported(value, f"<{local(value)}> inside a PK macro")
        inner = children(value)
        if len(inner) != 1:
            raise Unsupported(value, "a macro Value holds one expression")
        name = value.get("argument")
        if name is None:
            if local(inner[0]) != "SymbRef":
                raise Unsupported(value, "an unnamed macro value must reference a symbol")
            name = inner[0].get("symbIdRef", "")
            default = _DEFAULT_ARG.get(local(macro))
            if name not in _KNOWN_ARGS and not _K.match(name) and default:
                name = default  # e.g. oral(adm=1, cmt=1, ka1): the macro's main rate constant
        if name == "type" and local(macro) in _ADMINISTRATIONS:
            name = "adm"  # PharmML 0.6's name of the administration number
        if name in out:
            raise Unsupported(value, f"macro argument {name!r} given twice")
        out[name] = (scope.parse(inner[0]), value)
    return out


def _int(args: dict[str, tuple[Expr, etree._Element]], name: str, macro: etree._Element) -> int:
    if name not in args:
        raise Unsupported(macro, f"<{local(macro)}> needs argument {name!r}")
    expr, el = args[name]
    if not isinstance(expr, Num) or expr.value != int(expr.value):
        raise Unsupported(el, f"argument {name!r} must be an integer")
    return int(expr.value)


class _Builder:
    def __init__(self, model: ReadModel, problems: Problems, warnings: list[str]) -> None:
        self.model = model
        self.problems = problems
        self.warnings = warnings
        self.cmts: dict[int, _Cmt] = {}
        self.terms: dict[str, list[Expr]] = {}
        self.dosing: list[DosingSpec] = []

    def state(self, sym: Expr | None, default: str, el: etree._Element) -> str:
        """The SBML id of a macro amount: a declared variable without a value, or a new one."""
        if sym is None:
            pid = self.model.table.fresh(default)
            self.model.add(Parameter(pid, "state", el, value=0.0))
            return pid
        if not isinstance(sym, Sym):
            raise Unsupported(el, "a macro amount must be a symbol")
        param = self.model.params.get(sym.name)
        if param is None or param.kind not in ("variable", "state"):
            raise Unsupported(el, f"macro amount {sym.name!r} is not a structural variable")
        if param.rule is not None:
            raise Unsupported(el, f"macro amount {sym.name!r} already has an equation")
        if param.kind == "variable":
            param.kind, param.value = "state", 0.0
        return sym.name

    def flow(self, source: str | None, target: str | None, rate: Expr) -> None:
        if source is not None:
            self.terms.setdefault(source, []).append(Op("neg", (rate,)))
        if target is not None:
            self.terms.setdefault(target, []).append(rate)

    def ref(self, expr: Expr, hint: str, el: etree._Element) -> float | str:
        """A card reference: a number, an SBML id, or a new parameter assigned ``expr``."""
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, Sym):
            return expr.name
        pid = self.model.table.fresh(hint)
        self.model.add(Parameter(pid, "derived", el, rule=expr))
        return pid

    def cmt(self, number: int, el: etree._Element) -> _Cmt:
        found = self.cmts.get(number)
        if found is None:
            raise Unsupported(el, f"compartment {number} is not defined by a Compartment macro")
        return found

    def concentration(self, c: _Cmt, el: etree._Element) -> Expr:
        if c.volume is None:  # Monolix's default volume: the concentration is the amount
            note = (
                f"compartment {c.number} has no volume: Monolix's default 1 (its concentration is its amount)"
            )
            if note not in self.warnings:
                self.warnings.append(note)
            return Sym(c.amount)
        return Op("divide", (Sym(c.amount), c.volume))

    def define(self, macro: etree._Element, block: str) -> None:
        name = local(macro)
        args = _args(macro, self.model, block)
        if name == "Compartment":
            number = _int(args, "cmt", macro)
            amount = self.state(args.get("amount", (None, macro))[0], f"A{number}", macro)
            volume = args["volume"][0] if "volume" in args else None
            self.cmts[number] = _Cmt(number, amount, volume)
            self._concentration_rule(args, self.cmts[number], macro)
        elif name == "Peripheral":
            ks = [(k, _K.match(k)) for k in args if _K.match(k)]
            if len(ks) != 2:
                raise Unsupported(macro, "a Peripheral needs two rate constants k<i><j>, k<j><i>")
            (k1, m1), (k2, m2) = ks
            assert m1 is not None and m2 is not None
            i, j = int(m1.group(1)), int(m1.group(2))
            if (int(m2.group(1)), int(m2.group(2))) != (j, i):
                raise Unsupported(macro, f"rate constants {k1} and {k2} do not pair up")
            amount = self.state(args.get("amount", (None, macro))[0], f"A{j}", macro)
            volume = args["volume"][0] if "volume" in args else None
            self.cmts[j] = _Cmt(j, amount, volume)
            self._pending.append((macro, i, j, args[k1][0], args[k2][0]))
            self._concentration_rule(args, self.cmts[j], macro)

    def _concentration_rule(self, args: dict, c: _Cmt, macro: etree._Element) -> None:  # type: ignore[type-arg]
        if "concentration" not in args:
            return
        sym, el = args["concentration"]
        if not isinstance(sym, Sym) or sym.name not in self.model.params:
            raise Unsupported(el, "concentration must name a structural variable")
        param = self.model.params[sym.name]
        if param.rule is None and param.kind == "variable":
            param.rule = self.concentration(c, el)

    _pending: list[tuple[etree._Element, int, int, Expr, Expr]]

    def connect(self, macro: etree._Element, block: str) -> None:
        name = local(macro)
        args = _args(macro, self.model, block)
        if name in ("Compartment", "Peripheral"):
            return
        if name == "Elimination":
            c = self.cmt(_int(args, "cmt", macro), macro)
            if c.volume is None and "V" in args:  # the volume may come with the elimination
                c.volume = args["V"][0]
            if "k" in args:
                rate: Expr = Op("times", (args["k"][0], Sym(c.amount)))
            elif "CL" in args:
                rate = Op("times", (args["CL"][0], self.concentration(c, macro)))
            elif "Vm" in args and "Km" in args:
                conc = self.concentration(c, macro)
                rate = Op("divide", (Op("times", (args["Vm"][0], conc)),
                                     Op("plus", (args["Km"][0], conc))))  # fmt: skip
            else:
                raise Unsupported(macro, "Elimination needs k, CL, or Vm and Km")
            self.flow(c.amount, None, rate)
        elif name == "Transfer":
            a = self.cmt(_int(args, "from", macro), macro)
            b = self.cmt(_int(args, "to", macro), macro)
            if "kt" not in args:
                raise Unsupported(macro, "Transfer needs kt")
            self.flow(a.amount, b.amount, Op("times", (args["kt"][0], Sym(a.amount))))
        elif name == "Effect":
            c = self.cmt(_int(args, "cmt", macro), macro)
            if "ke0" not in args or "concentration" not in args:
                raise Unsupported(macro, "Effect needs ke0 and concentration")
            ce = self.state(args["concentration"][0], "Ce", macro)
            rate = Op("times", (args["ke0"][0], Op("minus", (self.concentration(c, macro), Sym(ce)))))
            self.flow(None, ce, rate)
        elif name == "IV":
            c = self.cmt(_int(args, "cmt", macro), macro)
            adm = _int(args, "adm", macro) if "adm" in args else None
            f, lag = self._f_lag(args, adm, macro)
            for route in ("iv-bolus", "iv-infusion"):
                self.dosing.append(DosingSpec(route, c.amount, f, lag, None, adm, xml_path(macro)))
        elif name in ("Oral", "Absorption", "Depot"):
            self._absorption(name, args, macro)
        else:
            raise Unsupported(macro, f"PK macro <{name}> is not supported")

    def _f_lag(
        self, args: dict, adm: int | None, macro: etree._Element
    ) -> tuple[float | str, float | str | None]:  # type: ignore[type-arg]
        suffix = f"adm{adm}" if adm is not None else "adm"
        f: float | str = self.ref(args["p"][0], f"F_{suffix}", macro) if "p" in args else 1.0
        lag = self.ref(args["Tlag"][0], f"Tlag_{suffix}", macro) if "Tlag" in args else None
        if isinstance(f, float) and not 0 < f <= 1:
            raise Unsupported(args["p"][1], f"bioavailability {f} is not in (0, 1]")
        return f, lag

    def _absorption(self, name: str, args: dict, macro: etree._Element) -> None:  # type: ignore[type-arg]
        for transit in ("Ktr", "Mtt"):
            if transit in args:
                raise Unsupported(args[transit][1], "transit-compartment absorption is not supported")
        adm = _int(args, "adm", macro) if "adm" in args else None
        if name == "Depot":
            if "target" not in args:
                raise Unsupported(macro, "Depot needs a target")
            target_expr, el = args["target"]
            if not isinstance(target_expr, Sym) or target_expr.name not in self.model.params:
                raise Unsupported(el, "the Depot target must be a structural variable")
            target = target_expr.name
            if self.model.params[target].kind == "variable":
                target = self.state(target_expr, target, el)
        else:
            target = self.cmt(_int(args, "cmt", macro), macro).amount
        f, lag = self._f_lag(args, adm, macro)
        if "ka" in args:
            depot = self.state(None, f"Ad{adm if adm is not None else ''}", macro)
            self.flow(depot, target, Op("times", (args["ka"][0], Sym(depot))))
            self.dosing.append(DosingSpec("oral", depot, f, lag, None, adm, xml_path(macro)))
        elif "Tk0" in args:
            tk0 = self.ref(args["Tk0"][0], f"Tk0_adm{adm}", macro)
            if not isinstance(tk0, str):
                tk0 = self.ref(Op("plus", (Num(float(tk0)),)), f"Tk0_adm{adm}", macro)
            self.dosing.append(DosingSpec("oral", target, f, lag, str(tk0), adm, xml_path(macro)))
        elif name == "Depot":  # Monolix depot(adm, target) without ka or Tk0: a bolus into the target
            for route in ("iv-bolus", "iv-infusion"):
                self.dosing.append(DosingSpec(route, target, f, lag, None, adm, xml_path(macro)))
        else:
            raise Unsupported(macro, f"{name} needs ka or Tk0")


def expand_macros(model: ReadModel, problems: Problems, warnings: list[str]) -> list[DosingSpec]:
    """Add the macros' states and flows to ``model``; the dosing inputs they define."""
    builder = _Builder(model, problems, warnings)
    builder._pending = []
    macros = [(block, m) for block, holder in model.pkmacros for m in children(holder)]
    for block, macro in macros:
        try:
            builder.define(macro, block)
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    for macro, i, j, kij, kji in builder._pending:
        try:
            ci, cj = builder.cmt(i, macro), builder.cmt(j, macro)
            builder.flow(ci.amount, cj.amount, Op("times", (kij, Sym(ci.amount))))
            builder.flow(cj.amount, ci.amount, Op("times", (kji, Sym(cj.amount))))
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    for block, macro in macros:
        try:
            builder.connect(macro, block)
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    for state, terms in builder.terms.items():
        param = model.params[state]
        existing = [param.rate] if param.rate is not None else []
        param.rate = (
            Op("plus", tuple(existing + terms)) if len(existing + terms) > 1 else (existing + terms)[0]
        )
    for param in model.params.values():
        if param.kind == "state" and param.rate is None:
            param.rate = Num(0.0)
    return builder.dosing
