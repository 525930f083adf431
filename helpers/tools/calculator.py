"""A calculator a model may call: arithmetic parsed with :mod:`ast`, never ``eval``.

Only numbers, ``+ - * / // % **``, parentheses, a few names (``pi``, ``e``, ``tau``) and a few
functions (``sqrt``, ``sin``, ``cos``, ``tan``, ``log``, ``exp``, ``abs``, ``round``, ``floor``,
``ceil``) are allowed; anything else (attributes, subscripts, other names, strings) is an
error that says what it met. Limits keep a hostile expression cheap: at most 200 characters,
exponents up to 1000 and results up to 1e300 in size.
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

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_NAMES = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
    "exp": math.exp, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
}

#: the JSON schema of :func:`calculate`'s arguments, for a tool definition
CALCULATOR_SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string", "description":
                                  "Arithmetic, e.g. 2*(3+4) or sqrt(2)"}},
    "required": ["expression"],
    "additionalProperties": False,
}


class CalculatorError(ValueError):
    """An expression the calculator refuses or cannot compute."""


def _check(value: float) -> float:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("the result is too large (or not a real number)")
    return value


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"the exponent {right} is too large (at most {MAX_EXPONENT})")
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
        except (ValueError, TypeError, OverflowError) as exc:
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
