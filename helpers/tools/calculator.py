"""A calculator a model may call: arithmetic parsed with :mod:`ast`, never ``eval``.

Only numbers, ``+ - * / // % **``, parentheses, a few names (``pi``, ``e``, ``tau``) and a few
functions (``sqrt``, ``sin``, ``cos``, ``tan``, ``log``, ``exp``, ``abs``, ``round``, ``floor``,
``ceil``) are allowed; anything else (attributes, subscripts, other names, strings) is an
error that says what it met.

Deliberate choice: **the operands are bounded before anything is computed**, not the time. The
relay runs a tool on its event loop, and a thread cannot stop big-integer arithmetic (it holds
the GIL): ``round(1, -10**7)`` builds ``10**(10**7)`` and froze every connection for 7 s. A
process with a time limit would cost a process start per call and still let each call burn its
limit; bounds make every step cheap instead, so none is needed. The bounds, each refused with
a message the model can read (the tool's result is its next input):

- at most :data:`MAX_LENGTH` characters;
- every number, given or computed, finite and at most :data:`MAX_MAGNITUDE` in size;
- an exponent at most :data:`MAX_EXPONENT`, and an integer power whose result would exceed
  the magnitude bound is refused from the operands' sizes, before it is computed (``(10**299)
  ** 1000`` is a 300,000-digit number);
- ``round``'s digits at most :data:`MAX_ROUND_DIGITS` either way (numbers are at most 1e300
  and a float is no finer than 1e-324: more digits change nothing, and ``round(1, -n)``
  computes ``10**n``).

A fuzz of this grammar (hostile constants, nested calls and powers) found ``round`` (any
digits from ``-10**6`` on: 0.15 s, ``-10**7``: 7 s) and the big power (25 ms); nothing else
took over a millisecond.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

__all__ = ["CALCULATOR_SCHEMA", "CalculatorError", "calculate"]

MAX_LENGTH = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e300
MAX_ROUND_DIGITS = 350
_MAGNITUDE_BITS = int(math.log2(MAX_MAGNITUDE))  # 2**996 < 1e300 < 2**997


class CalculatorError(ValueError):
    """An expression the calculator refuses or cannot compute."""


def _power(base: float, exponent: float) -> float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"the exponent {exponent} is too large (at most {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and (abs(base).bit_length() - 1) * exponent > _MAGNITUDE_BITS:
        # |base| >= 2**(bits - 1), so the result is over 2**997 > 1e300: not computed
        raise CalculatorError(f"the result is too large (at most {MAX_MAGNITUDE:g})")
    return operator.pow(base, exponent)


def _round(number: float, ndigits: int | None = None) -> float:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise CalculatorError(f"round: at most {MAX_ROUND_DIGITS} digits either way "
                              f"(got {ndigits}); numbers here are at most {MAX_MAGNITUDE:g}")
    return round(number, ndigits)


_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_NAMES = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
    "exp": math.exp, "abs": abs, "round": _round, "floor": math.floor, "ceil": math.ceil,
}

#: the JSON schema of :func:`calculate`'s arguments, for a tool definition
CALCULATOR_SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string", "description":
                                  "Arithmetic, e.g. 2*(3+4) or sqrt(2)"}},
    "required": ["expression"],
    "additionalProperties": False,
}


def _check(value: float) -> float:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE or not math.isfinite(value):
        raise CalculatorError("the result is too large (or not a real number)")
    return value


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check(node.value)  # 1e999 is inf
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _FUNCTIONS and not node.keywords:
        try:
            return _check(_FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
        except (ValueError, TypeError, OverflowError, ZeroDivisionError) as exc:
            if isinstance(exc, CalculatorError):
                raise
            raise CalculatorError(f"{node.func.id}: {exc}") from None
    raise CalculatorError(f"not allowed in an expression: {ast.unparse(node)!r}")


def calculate(expression: str) -> float | int:
    """Compute an arithmetic expression safely; raise :class:`CalculatorError` if it is bad."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculatorError("give an expression such as 2*(3+4)")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"the expression is too long (at most {MAX_LENGTH} characters)")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    value = _eval(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return round(value, 12) if isinstance(value, float) else value
