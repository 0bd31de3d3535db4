"""The derived-covariate language (safe by construction) and the formula library against worked
examples. Where no published worked example was at hand, the expected value is worked out by
hand from the cited equation, step by step in the comment, and must agree to 4 significant
digits."""

from __future__ import annotations

import pytest

from interop.schema.formulas import FORMULAS, FormulaError, parse_expression


def value(name: str, **inputs: float) -> float:
    formula = FORMULAS[name]
    assert set(inputs) == set(formula.inputs)
    return parse_expression(formula.expression).evaluate(inputs)


# -- the language -----------------------------------------------------------------------------


def test_arithmetic_conditionals_and_functions() -> None:
    e = parse_expression(
        "-a + b * 2 ** 3 / 4 - min(a, b, 7) + max(1, 2) + abs(-3) + sqrt(16) + exp(0) + log(1)"
    )
    assert e.names == {"a", "b"}
    assert e.evaluate({"a": 1, "b": 2}) == pytest.approx(-1 + 4 - 1 + 2 + 3 + 4 + 1 + 0)
    assert parse_expression("x * (2 if female else 1)").evaluate({"x": 3, "female": 1}) == 6
    assert parse_expression("if_else(x > 2 and x <= 5, 10, 20)").evaluate({"x": 5}) == 10
    assert parse_expression("if_else(not (x == 1) or x != x, 10, 20)").evaluate({"x": 1}) == 20


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "a.b",
        "a[0]",
        "lambda: 1",
        "'text'",
        "True",
        "pow(2, 3)",
        "[1, 2]",
        "{1: 2}",
        "a if b else c if",
        "x := 3",
        "f'{a}'",
        "(lambda: 1)()",
        "min",
    ],
)
def test_only_the_safe_language_parses(text: str) -> None:
    with pytest.raises(FormulaError):
        parse_expression(text)


def test_evaluation_errors_are_typed() -> None:
    with pytest.raises(FormulaError, match="no value for 'b'"):
        parse_expression("a + b").evaluate({"a": 1})
    with pytest.raises(FormulaError, match="cannot evaluate"):
        parse_expression("1 / a").evaluate({"a": 0})
    with pytest.raises(FormulaError, match="cannot evaluate"):
        parse_expression("log(a)").evaluate({"a": -1})
    with pytest.raises(FormulaError, match="nested too deeply"):
        parse_expression("(" * 80 + "1" + ")" * 80 + " + " + " + ".join(["1"] * 5) + "-" * 70 + "1")


def test_every_library_formula_parses_and_names_exactly_its_inputs() -> None:
    for name, formula in FORMULAS.items():
        assert parse_expression(formula.expression).names == set(formula.inputs), name


# -- the library --------------------------------------------------------------------------------


def test_cockcroft_gault_total_body_weight() -> None:
    # Worked examples published with the equation on superglobalcalculator.com
    # (formulas/pharmacology/creatinine-clearance): male, 65 y, 70 kg, SCr 1.4 mg/dL -> 52.1 mL/min;
    # female, 45 y, 60 kg, SCr 0.9 mg/dL -> 74.8 mL/min. Equation: Cockcroft & Gault, Nephron 1976.
    assert value("cockcroft_gault", age=65, weight=70, scr=1.4, female=0) == pytest.approx(52.1, abs=0.05)
    assert value("cockcroft_gault", age=45, weight=60, scr=0.9, female=1) == pytest.approx(74.8, abs=0.05)


def test_cockcroft_gault_ideal_and_adjusted_body_weight() -> None:
    # Male, 180 cm (70.866 in): IBW = 50 + 2.3 * 10.866 = 74.99 kg (Devine 1974).
    # 50 y, SCr 1.0, TBW 120 kg. IBW variant: (140-50) * 74.99 / 72 = 93.74 mL/min.
    # Adjusted: 74.99 + 0.4 * (120 - 74.99) = 92.99 kg -> 90 * 92.99 / 72 = 116.24 mL/min.
    ibw = 50 + 2.3 * (180 / 2.54 - 60)
    assert value("ideal_body_weight", height=180, female=0) == pytest.approx(74.99, abs=0.01)
    assert value("cockcroft_gault_ibw", age=50, weight=120, height=180, scr=1.0, female=0) == pytest.approx(
        90 * ibw / 72
    )
    assert value("cockcroft_gault_ibw", age=50, weight=120, height=180, scr=1.0, female=0) == pytest.approx(
        93.74, abs=0.01
    )
    adj = value("adjusted_body_weight", weight=120, height=180, female=0)
    assert adj == pytest.approx(92.99, abs=0.01)
    assert value("cockcroft_gault_adjbw", age=50, weight=120, height=180, scr=1.0, female=0) == pytest.approx(
        116.24, abs=0.01
    )
    # Below IBW both variants use the actual weight: 55 kg -> 90 * 55 / 72 = 68.75 mL/min.
    for name in ("cockcroft_gault_ibw", "cockcroft_gault_adjbw"):
        assert value(name, age=50, weight=55, height=180, scr=1.0, female=0) == pytest.approx(68.75)
    # Female, 165 cm: IBW = 45.5 + 2.3 * (64.96 - 60) = 56.91 kg.
    assert value("ideal_body_weight", height=165, female=1) == pytest.approx(56.91, abs=0.01)


def test_ckd_epi_2021() -> None:
    # Inker LA et al., NEJM 2021;385:1737: 142 * min(SCr/k,1)^a * max(SCr/k,1)^-1.200 * 0.9938^age
    # * 1.012 [female]; k 0.7/0.9, a -0.241/-0.302 (female/male).
    # Female, 50 y, SCr 0.7: 142 * 1 * 1 * 0.9938^50 (= 0.73274) * 1.012 = 105.30.
    assert value("ckd_epi_2021", age=50, scr=0.7, female=1) == pytest.approx(105.30, abs=0.01)
    # Male, 60 y, SCr 1.2: (1.2/0.9)^-1.2 = 0.70807; 0.9938^60 = 0.68856; 142 * both = 69.23.
    assert value("ckd_epi_2021", age=60, scr=1.2, female=0) == pytest.approx(69.23, abs=0.01)
    # Male, 40 y, SCr 0.6: (0.6/0.9)^-0.302 = 1.13026; 0.9938^40 = 0.77976; 142 * both = 125.15.
    assert value("ckd_epi_2021", age=40, scr=0.6, female=0) == pytest.approx(125.15, abs=0.01)


def test_mdrd_idms() -> None:
    # Levey AS et al., Clin Chem 2007 (IDMS-traceable 4-variable MDRD):
    # 175 * SCr^-1.154 * age^-0.203 * 0.742 [female] * 1.212 [black].
    # Male, 50 y, SCr 1.0: 175 * 50^-0.203 (= 0.45197) = 79.10.
    assert value("mdrd", age=50, scr=1.0, female=0, black=0) == pytest.approx(79.10, abs=0.01)
    # Female, black, 60 y, SCr 2.0: 175 * 2^-1.154 (0.44938) * 60^-0.203 (0.43555) * 0.742 * 1.212.
    assert value("mdrd", age=60, scr=2.0, female=1, black=1) == pytest.approx(30.80, abs=0.01)


def test_body_surface_area() -> None:
    # Du Bois 1916: 0.007184 * 70^0.425 * 170^0.725 = 1.810 m2; Mosteller 1987: sqrt(170*70/3600) = 1.818.
    assert value("bsa_dubois", weight=70, height=170) == pytest.approx(1.810, abs=0.001)
    assert value("bsa_mosteller", weight=70, height=170) == pytest.approx(1.818, abs=0.001)
    # Mosteller, child 20 kg, 110 cm: sqrt(2200/3600) = 0.7817.
    assert value("bsa_mosteller", weight=20, height=110) == pytest.approx(0.7817, abs=0.0001)


def test_lean_body_weight_janmahasatian() -> None:
    # Janmahasatian S et al., Clin Pharmacokinet 2005: male 9270 WT / (6680 + 216 BMI),
    # female 9270 WT / (8780 + 244 BMI). Male 70 kg, 170 cm (BMI 24.22): 54.48 kg.
    # Female 80 kg, 160 cm (BMI 31.25): 741600 / (8780 + 7625) = 45.21 kg.
    assert value("lean_body_weight", weight=70, height=170, female=0) == pytest.approx(54.48, abs=0.01)
    assert value("lean_body_weight", weight=80, height=160, female=1) == pytest.approx(45.21, abs=0.01)


def test_paediatric_ages() -> None:
    # AAP (Engle 2004): post-menstrual age = gestational age + chronological (postnatal) age;
    # a baby born at 28 weeks, 4 weeks old, is 32 weeks PMA.
    assert value("postmenstrual_age", gestational_age=28, postnatal_age=4) == 32
    assert value("age_months", age=2.5) == 30
