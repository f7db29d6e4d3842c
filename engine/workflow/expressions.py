"""Safe evaluation of gateway conditions, timer expressions and script tasks.

A diagram is data uploaded through the browser, so its expressions are never handed
to Python as they are. Each one is parsed and checked against a whitelist of AST
nodes first: literals, names, arithmetic, comparisons, boolean logic, conditional
expressions, subscripts, comprehensions and calls of a few pure builtins. Attribute
access of any kind is refused, which closes the `().__class__.__subclasses__()`
family of escapes; names starting with an underscore are refused as well.
Only after the check is the compiled tree evaluated, with builtins replaced by the
whitelist, and with the operations that can grow without bound routed through
guards (repetition, formatting, text of nested lists, comprehension items). Those
bound what one evaluation can claim; they are not a time limit: comparing two huge
structures built by repetition still takes long, which is one more reason deploying
needs the modeler role. Scripts are restricted to `name = expression` lines, so what
a script stores is exactly what it assigns.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from engine.errors import UnsafeExpression

MAX_SOURCE_CHARS = 4000
MAX_POWER_EXPONENT = 64
# Repeating a string or list (`"a" * n`) may build at most this many items, a format
# spec (`f"{x:>20}"`) may ask for at most this width, and the comprehensions of one
# evaluation may take at most this many items in all: each would otherwise let one
# expression claim gigabytes or minutes. (`%` formatting of strings is refused: its
# widths come from data.)
MAX_REPEATED_ITEMS = 100_000
MAX_FORMAT_WIDTH = 1000
MAX_ITERATIONS = 100_000


def _get(container: Any, key: Any, default: Any = None) -> Any:
    """`container[key]`, or `default` when the container lacks it or is no mapping or
    list: what `dict.get` does, for diagrams and forms, which may not call methods."""
    if isinstance(container, Mapping):
        return container.get(key, default)
    if (
        isinstance(container, list | tuple)
        and isinstance(key, int)
        and -len(container) <= key < len(container)
    ):
        return container[key]
    return default


SAFE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "get": _get,
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


def is_reserved(name: str) -> bool:
    """Whether data may not use `name` as a variable: it is one of the functions above,
    a Python keyword, or starts with '_' (the evaluator's own guards do)."""
    return name in SAFE_FUNCTIONS or keyword.iskeyword(name) or name.startswith("_")


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


def _check_format_spec(node: ast.FormattedValue) -> None:
    if node.format_spec is None:
        return
    spec = "".join(
        str(part.value) for part in ast.walk(node.format_spec) if isinstance(part, ast.Constant)
    )
    if any(isinstance(part, ast.FormattedValue) for part in ast.walk(node.format_spec)):
        raise _refuse(node, "a format spec must be literal")
    if any(int(w) > MAX_FORMAT_WIDTH for w in re.findall(r"\d+", spec)):
        raise _refuse(node, f"a format width may be at most {MAX_FORMAT_WIDTH}")


def _check_power(node: ast.BinOp) -> None:
    exponent = node.right
    if not (
        isinstance(exponent, ast.Constant)
        and isinstance(exponent.value, int | float)
        and abs(exponent.value) <= MAX_POWER_EXPONENT
    ):
        raise _refuse(node, f"'**' needs a literal exponent of at most {MAX_POWER_EXPONENT}")


def _check_node(node: ast.AST) -> None:
    """Refuse one node the whitelist does not allow, with the reason."""
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
    if isinstance(node, ast.FormattedValue):
        _check_format_spec(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        _check_power(node)


def _check_tree(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        _check_node(node)


def _parse(source: str, mode: str) -> ast.AST:
    if not isinstance(source, str):
        raise UnsafeExpression("an expression must be text")
    if len(source) > MAX_SOURCE_CHARS:
        raise UnsafeExpression(f"expression longer than {MAX_SOURCE_CHARS} characters")
    try:
        return ast.parse(source.strip(), mode=mode)
    except SyntaxError as exc:
        raise UnsafeExpression(f"syntax error: {exc.msg}") from exc


_REPEAT = "__csi_repeat"
_MODULO = "__csi_modulo"
_ITERATE = "__csi_iterate"


def _modulo(left: Any, right: Any) -> Any:
    """`left % right` for numbers only: printf-style formatting (`'%50000000d' % n`)
    takes its widths from data, past every check."""
    if isinstance(left, str | bytes):
        raise UnsafeExpression("'%' formatting of text is not allowed; use an f-string")
    return left % right


class _Budget:
    """The items the comprehensions of one evaluation may still take."""

    def __init__(self) -> None:
        self.left = MAX_ITERATIONS

    def __call__(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self.left -= 1
            if self.left < 0:
                raise UnsafeExpression(
                    f"an expression may go through at most {MAX_ITERATIONS} items"
                )
            yield item


def _leaves_over(value: Any, limit: int) -> bool:
    """Whether `value` holds more than `limit` items, nested ones counted each time they
    appear ([[0] * 1000] * 1000 holds a million), without going much past the limit."""
    seen = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        seen += 1
        if seen > limit:
            return True
    return False


_SIZED = "__csi_sized"


def _sized(value: Any) -> Any:
    """`value`, unless turning it into text would write out more than MAX_REPEATED_ITEMS
    items (str() and f-strings of a list repeated into itself)."""
    if isinstance(value, dict | list | tuple | set | frozenset) and _leaves_over(
        value, MAX_REPEATED_ITEMS
    ):
        raise UnsafeExpression(f"text of at most {MAX_REPEATED_ITEMS} items may be made")
    return value


def _str(value: Any = "") -> str:
    return str(_sized(value))


def _repeat(left: Any, right: Any) -> Any:
    """`left * right`, refusing to repeat a sequence into more than MAX_REPEATED_ITEMS."""
    for sequence, times in ((left, right), (right, left)):
        if (
            isinstance(sequence, str | list | tuple | bytes)
            and isinstance(times, int)
            and len(sequence) * max(times, 0) > MAX_REPEATED_ITEMS
        ):
            raise UnsafeExpression(
                f"repeating a sequence may make at most {MAX_REPEATED_ITEMS} items"
            )
    return left * right


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class _Guards(ast.NodeTransformer):
    """Route the operations that can grow without bound through guards, in a tree that
    passed the check: `a * b` → `_repeat(a, b)`, `a % b` → `_modulo(a, b)`, and each
    comprehension's iterable through the evaluation's budget. Their names cannot be
    written in a diagram (names with a leading underscore are refused)."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        guard = {ast.Mult: _REPEAT, ast.Mod: _MODULO}.get(type(node.op))
        if guard is None:
            return node
        return ast.copy_location(_call(guard, node.left, node.right), node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        self.generic_visit(node)
        node.value = ast.copy_location(_call(_SIZED, node.value), node.value)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.iter = ast.copy_location(_call(_ITERATE, node.iter), node.iter)
        return node


def _guarded(tree: ast.Expression) -> ast.Expression:
    guarded = _Guards().visit(tree)
    if not isinstance(guarded, ast.Expression):  # the guards replace nodes below the root only
        raise UnsafeExpression("the expression could not be guarded")
    return ast.fix_missing_locations(guarded)


@lru_cache(maxsize=2048)
def compile_expression(source: str) -> Any:
    """Check and compile one expression; the code object is cached by its text."""
    tree = _parse(source, "eval")
    if not isinstance(tree, ast.Expression):
        raise UnsafeExpression("not an expression")
    _check_tree(tree)
    return compile(_guarded(tree), "<expression>", "eval")


@lru_cache(maxsize=512)
def compile_script(source: str) -> tuple[tuple[str, Any], ...]:
    """Check and compile a script: each statement must be `name = expression`."""
    module = _parse(source, "exec")
    if not isinstance(module, ast.Module):
        raise UnsafeExpression("not a script")
    steps: list[tuple[str, Any]] = []
    for statement in module.body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            raise _refuse(statement, "a script may only contain 'name = expression' lines")
        name = statement.targets[0].id
        if is_reserved(name):
            raise _refuse(statement, f"name {name!r} is reserved")
        expression = ast.Expression(body=statement.value)
        ast.fix_missing_locations(expression)
        _check_tree(expression)
        steps.append((name, compile(_guarded(expression), "<script>", "eval")))
    return tuple(steps)


def _globals_for(names: Mapping[str, Any]) -> dict[str, Any]:
    # Data goes into globals, not locals: comprehensions only see globals. The functions
    # and guards go in after the data, so that a variable named like one of them (data
    # stored before names were checked at the door) can never replace it.
    scope: dict[str, Any] = dict(names)
    scope.update(SAFE_FUNCTIONS)
    scope[_REPEAT] = _repeat
    scope[_MODULO] = _modulo
    scope[_SIZED] = _sized
    scope["str"] = _str
    scope[_ITERATE] = _Budget()
    scope["__builtins__"] = {}
    return scope


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate a checked expression over `names` (task data)."""
    return eval(compile_expression(source), _globals_for(names))  # noqa: S307 - checked AST


def evaluate_over(source: str, data: Mapping[str, Any]) -> Any:
    """Evaluate over instance data in which a variable not set yet reads as None (forms
    prefill and check over data that a later step may not have yet)."""
    names = dict(data)
    for variable in names_in(source):
        names.setdefault(variable, None)
    return evaluate(source, names)


def execute(source: str, data: dict[str, Any]) -> dict[str, Any]:
    """Run a checked script over `data`, store its assignments there and return them."""
    assigned: dict[str, Any] = {}
    for name, code in compile_script(source):
        value = eval(code, _globals_for({**data, **assigned}))  # noqa: S307 - checked AST
        assigned[name] = value
    data.update(assigned)
    return assigned


def names_in(source: str) -> frozenset[str]:
    """The variables an expression reads: names it loads that it neither binds (in a
    comprehension) nor calls as a function."""
    tree = _parse(source, "eval")
    _check_tree(tree)
    loaded: set[str] = set()
    _free_names(tree, frozenset(), loaded)
    return frozenset(loaded - set(SAFE_FUNCTIONS))


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _free_names(node: ast.AST, bound: frozenset[str], found: set[str]) -> None:
    """Add to `found` the names `node` loads that no enclosing comprehension binds. A
    comprehension's names are bound only inside it (`x + [x for x in xs]` reads x), and
    its first iterable is evaluated outside it (`[m for m in m]` reads m)."""
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id not in bound:
            found.add(node.id)
        return
    if isinstance(node, _COMPREHENSIONS):
        inner = bound
        for generator in node.generators:
            _free_names(generator.iter, inner, found)
            inner = inner | {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            for condition in generator.ifs:
                _free_names(condition, inner, found)
        results = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for result in results:
            _free_names(result, inner, found)
        return
    for child in ast.iter_child_nodes(node):
        _free_names(child, bound, found)


def check(source: str, *, script: bool = False) -> None:
    """Raise UnsafeExpression when `source` would be refused at run time."""
    if script:
        compile_script(source)
    else:
        compile_expression(source)
