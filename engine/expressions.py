"""Safe evaluation of gateway conditions, timer expressions and script tasks.

A diagram is data uploaded through the browser, so its expressions are never handed
to Python as they are. Each one is parsed and checked against a whitelist of AST
nodes first: literals, names, arithmetic, comparisons, boolean logic, conditional
expressions, subscripts, comprehensions and calls of a few pure builtins. Attribute
access of any kind is refused, which closes the `().__class__.__subclasses__()`
family of escapes; names starting with an underscore are refused as well.
Only after the check is the compiled tree evaluated, with builtins replaced by the
whitelist. Scripts are restricted to `name = expression` lines, so what a script
stores is exactly what it assigns.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from engine.errors import UnsafeExpression

MAX_SOURCE_CHARS = 4000
MAX_POWER_EXPONENT = 64

SAFE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "sum": sum,
    "abs": abs,
    "round": round,
    "sorted": sorted,
    "set": set,
    "list": list,
    "dict": dict,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "any": any,
    "all": all,
    "enumerate": enumerate,
    "zip": zip,
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.Call,
    ast.keyword,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.JoinedStr,
    ast.FormattedValue,
    # operators
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UAdd,
    ast.USub,
    ast.Not,
    ast.And,
    ast.Or,
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
)


def _refuse(node: ast.AST, reason: str) -> UnsafeExpression:
    col = getattr(node, "col_offset", None)
    where = f" (column {col + 1})" if col is not None else ""
    return UnsafeExpression(f"{reason}{where}")


def _check_tree(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            raise _refuse(node, "attribute access is not allowed")
        if not isinstance(node, _ALLOWED_NODES):
            raise _refuse(node, f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise _refuse(node, f"name {node.id!r} is not allowed")
        if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
            raise _refuse(node, "this keyword argument is not allowed")
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCTIONS
        ):
            raise _refuse(node, "only these functions may be called: " + ", ".join(SAFE_FUNCTIONS))
        if isinstance(node, ast.comprehension) and node.is_async:
            raise _refuse(node, "async comprehensions are not allowed")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = node.right
            if not (
                isinstance(exponent, ast.Constant)
                and isinstance(exponent.value, int | float)
                and abs(exponent.value) <= MAX_POWER_EXPONENT
            ):
                raise _refuse(
                    node, f"'**' needs a literal exponent of at most {MAX_POWER_EXPONENT}"
                )


def _parse(source: str, mode: str) -> ast.AST:
    if not isinstance(source, str):
        raise UnsafeExpression("an expression must be text")
    if len(source) > MAX_SOURCE_CHARS:
        raise UnsafeExpression(f"expression longer than {MAX_SOURCE_CHARS} characters")
    try:
        return ast.parse(source.strip(), mode=mode)
    except SyntaxError as exc:
        raise UnsafeExpression(f"syntax error: {exc.msg}") from exc


@lru_cache(maxsize=2048)
def compile_expression(source: str) -> Any:
    """Check and compile one expression; the code object is cached by its text."""
    tree = _parse(source, "eval")
    assert isinstance(tree, ast.Expression)
    _check_tree(tree)
    return compile(tree, "<expression>", "eval")


@lru_cache(maxsize=512)
def compile_script(source: str) -> tuple[tuple[str, Any], ...]:
    """Check and compile a script: each statement must be `name = expression`."""
    module = _parse(source, "exec")
    assert isinstance(module, ast.Module)
    steps: list[tuple[str, Any]] = []
    for statement in module.body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            raise _refuse(statement, "a script may only contain 'name = expression' lines")
        name = statement.targets[0].id
        if name.startswith("_"):
            raise _refuse(statement, f"name {name!r} is not allowed")
        expression = ast.Expression(body=statement.value)
        ast.fix_missing_locations(expression)
        _check_tree(expression)
        steps.append((name, compile(expression, "<script>", "eval")))
    return tuple(steps)


def _globals_for(names: Mapping[str, Any]) -> dict[str, Any]:
    # Data goes into globals, not locals: comprehensions only see globals.
    scope: dict[str, Any] = dict(SAFE_FUNCTIONS)
    scope.update(names)
    scope["__builtins__"] = {}
    return scope


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate a checked expression over `names` (task data)."""
    return eval(compile_expression(source), _globals_for(names))  # noqa: S307 - checked AST


def execute(source: str, data: dict[str, Any]) -> dict[str, Any]:
    """Run a checked script over `data`, store its assignments there and return them."""
    assigned: dict[str, Any] = {}
    for name, code in compile_script(source):
        value = eval(code, _globals_for({**data, **assigned}))  # noqa: S307 - checked AST
        assigned[name] = value
    data.update(assigned)
    return assigned


def check(source: str, *, script: bool = False) -> None:
    """Raise UnsafeExpression when `source` would be refused at run time."""
    if script:
        compile_script(source)
    else:
        compile_expression(source)
