"""The expressions a workflow may contain: gateway conditions, timer values, DMN entries, `${var}` values.

SpiffWorkflow evaluates expressions with Python's eval, with the real builtins in reach: a diagram
uploaded by an analyst must not be able to run code on the server. Expressions here are a small,
checked subset of Python: literals, names of instance data, subscripts, comparisons, and/or/not,
arithmetic, conditional expressions and a few pure functions. Attributes (the way out of any Python
sandbox), lambdas, comprehensions and every other call are refused, at deploy and again at run time.
"""

import ast
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

FUNCTIONS: dict[str, Any] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "any": any,
    "all": all,
    "sum": sum,
}

_ALLOWED = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.FloorDiv,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Subscript,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.Call,
)


class UnsafeExpression(ValueError):
    """An expression outside the allowed subset, or one that is not an expression at all."""


def check(expression: str) -> None:
    """Raise UnsafeExpression unless `expression` is in the allowed subset."""
    _compiled(expression)


@lru_cache(maxsize=4096)
def _compiled(expression: str):
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"is not a valid expression ({exc.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise UnsafeExpression(f"uses {type(node).__name__}, which workflow expressions do not allow")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeExpression(f"uses the name {node.id!r}; names may not start with an underscore")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                allowed = ", ".join(sorted(FUNCTIONS))
                raise UnsafeExpression(f"calls something other than the allowed functions ({allowed})")
    return compile(tree, "<workflow expression>", "eval")


def evaluate(expression: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Any:
    # Data comes from forms: a key may not shadow the functions or smuggle in `__builtins__`.
    scope: dict[str, Any] = {k: v for k, v in data.items() if not k.startswith("_")}
    if extra:
        scope.update(extra)
    scope.update(FUNCTIONS)
    scope["__builtins__"] = {}
    return eval(_compiled(expression), scope)
