"""Safe evaluation of gateway conditions, timer expressions and script tasks.

A diagram is data uploaded through the browser, so its expressions are never handed
to Python as they are. Each one is parsed and checked against a whitelist of AST
nodes first: literals, names, arithmetic, comparisons, boolean logic, conditional
expressions, subscripts, comprehensions and calls of a few pure builtins. Attribute
access of any kind is refused, which closes the `().__class__.__subclasses__()`
family of escapes; names starting with an underscore are refused as well. Scripts
are restricted to `name = expression` lines, so what a script stores is exactly what
it assigns.

Only after the check is the compiled tree evaluated, with builtins replaced by
guarded ones and every operation that can make, copy or walk a value routed through
a guard that bounds the work itself, whatever the spelling:

- an operation may make no text, list, tuple, set or dict of more than MAX_ITEMS
  items (`*`, `+`, `sum`, `str`, f-strings, slices, `sorted`, `list`, `set`, `dict`)
  and no integer of more than MAX_INT_BITS bits (`**` is refused before it computes);
- one evaluation (an expression, or a whole script) has MAX_STEPS steps of work: an
  item made or copied costs one, and so does each item of a value that is compared,
  hashed, sorted or written out as text, nested items counted each time they appear
  (`[[0] * 100000] * 100000` is cheap to make but costs 10¹⁰ to compare), as does
  each item a comprehension, `sum`, `min`, `max`, `any` or `all` goes through; what
  an evaluation gives back is weighed the same way;
- its comprehensions go through at most MAX_ITERATIONS items in all;
- the evaluations of one command (its engine steps are bounded too, see
  engine.workflow.bounds) draw their steps from one Allowance of MAX_COMMAND_STEPS.

A count, not a clock: the same evaluation is refused on a busy machine and an idle
one, so a replay decides as the live command did. Past a bound the evaluation raises
UnsafeExpression, which fails the command with a 422 that names the element.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from engine.errors import UnsafeExpression

MAX_SOURCE_CHARS = 4000
MAX_POWER_EXPONENT = 64
# A format spec (`f"{x:>20}"`) may ask for at most this width. (`%` formatting of
# text is refused: its widths come from data.)
MAX_FORMAT_WIDTH = 1000
MAX_ITEMS = 100_000
MAX_INT_BITS = 4096
MAX_STEPS = 2_000_000
MAX_COMMAND_STEPS = 5 * MAX_STEPS
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


# The functions a diagram may call, by name (evaluation gets the guarded ones, _Work).
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


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_SYMBOLS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (list, tuple, set, frozenset)
_SIZED = (str, bytes, dict, *_CONTAINERS)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
# Values of these types are gone through item by item; a number costs only its place.
_WALKED_TYPES = frozenset(_SIZED)


def _walked(items: Iterable[Any]) -> Iterator[Any]:
    """The items that have items of their own or a length (filtered at C speed: a list
    of a million numbers costs no Python step per number)."""
    items = list(items) if not isinstance(items, list | tuple) else items
    return itertools.compress(items, map(_WALKED_TYPES.__contains__, map(type, items)))


def _too_many(what: str) -> UnsafeExpression:
    return UnsafeExpression(f"{what} may hold at most {MAX_ITEMS} items")


def _check_repeat(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        if (
            isinstance(sequence, _SEQUENCES)
            and isinstance(times, int)
            and len(sequence) * max(times, 0) > MAX_ITEMS
        ):
            raise _too_many("repeating a sequence")


def _check_join(left: Any, right: Any) -> None:
    if (
        isinstance(left, _SEQUENCES)
        and isinstance(right, _SEQUENCES)
        and len(left) + len(right) > MAX_ITEMS
    ):
        raise _too_many("joining two sequences")


def _check_int_power(base: Any, exponent: Any) -> None:
    """Refuse an integer power past MAX_INT_BITS before computing it: its bits are at
    least (bits of the base - 1) times the exponent."""
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (abs(base).bit_length() - 1) * exponent >= MAX_INT_BITS
    ):
        raise UnsafeExpression(f"an integer may have at most {MAX_INT_BITS} bits")


def _check_text_format(left: Any) -> None:
    # printf-style formatting (`'%50000000d' % n`) takes its widths from data
    if isinstance(left, str | bytes):
        raise UnsafeExpression("'%' formatting of text is not allowed; use an f-string")


_OPERAND_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _check_repeat,
    "+": _check_join,
    "**": _check_int_power,
    "%": lambda left, _: _check_text_format(left),
}


class Allowance:
    """The steps of work all the evaluations of one command draw from."""

    def __init__(self, steps: int = MAX_COMMAND_STEPS) -> None:
        self.left = steps


class _Work:
    """What one evaluation may still do, and the guards that count it down."""

    def __init__(self, allowance: Allowance | None = None) -> None:
        self.allowance = allowance
        self.granted = min(MAX_STEPS, allowance.left) if allowance is not None else MAX_STEPS
        self.steps = self.granted
        self.iterations = MAX_ITERATIONS

    def settle(self) -> None:
        """Take the steps this evaluation used from the command's allowance."""
        if self.allowance is not None:
            self.allowance.left -= self.granted - max(self.steps, 0)

    def _exhausted(self) -> UnsafeExpression:
        if self.granted < MAX_STEPS:
            return UnsafeExpression(
                f"the expressions of one command may take at most {MAX_COMMAND_STEPS} "
                "steps of work in all"
            )
        return UnsafeExpression(
            f"an expression may take at most {MAX_STEPS} steps of work "
            "(items made, copied, compared or written out)"
        )

    def charge(self, steps: int) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise self._exhausted()

    def weighed(self, value: Any) -> Any:
        """`value`, once the steps of going through all of it (nested items each time
        they appear, text by its length) are charged; refused as soon as they run out,
        without going much past."""
        left = self.steps - 1
        stack = [value]
        while stack:
            item = stack.pop()
            kind = type(item)
            if kind is str or kind is bytes:
                left -= len(item)
            elif kind is dict:
                left -= 2 * len(item)
                if left >= 0:
                    stack.extend(_walked(item.keys()))
                    stack.extend(_walked(item.values()))
            elif kind in _CONTAINER_TYPES:
                left -= len(item)
                if left >= 0:
                    stack.extend(_walked(item))
            if left < 0:
                raise self._exhausted()
        self.steps = left
        return value

    def member_of(self, container: Any) -> Any:
        """The right side of `in`: a set or dict looks the item up, anything else is
        gone through."""
        if isinstance(container, dict | set | frozenset):
            self.charge(1)
            return container
        return self.weighed(container)

    def made(self, value: Any) -> Any:
        """A value an operation made: within the bounds on size, its items charged."""
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise UnsafeExpression(f"an integer may have at most {MAX_INT_BITS} bits")
        if isinstance(value, _SIZED):
            if len(value) > MAX_ITEMS:
                raise _too_many("a value")
            self.charge(len(value) + 1)
        else:
            self.charge(1)
        return value

    def operation(self, left: Any, right: Any, symbol: str) -> Any:
        check = _OPERAND_CHECKS.get(symbol)
        if check is not None:
            check(left, right)
        return self.made(_OPERATORS[symbol](left, right))

    def item(self, container: Any, key: Any) -> Any:
        """`container[key]`: the key is hashed or compared; a slice is a copy."""
        value = container[self.weighed(key)]
        return self.made(value) if isinstance(key, slice) else value

    def text(self, value: str) -> str:
        return self.made(value)

    def iterate(self, iterable: Any) -> Iterator[Any]:
        """The items of a comprehension's iterable, each charged."""
        for item in iterable:
            self.iterations -= 1
            if self.iterations < 0:
                raise UnsafeExpression(
                    f"an expression may go through at most {MAX_ITERATIONS} items"
                )
            self.charge(1)
            yield item

    def _counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.charge(1)
            yield item

    def _listed(self, value: Any) -> Any:
        """An iterator (generator, zip, enumerate) as a list of at most MAX_ITEMS items,
        each charged; anything else as it is."""
        if not isinstance(value, Iterator):
            return value
        items = list(itertools.islice(value, MAX_ITEMS + 1))
        if len(items) > MAX_ITEMS:
            raise _too_many("a value")
        self.charge(len(items))
        return items

    # -- the builtins a diagram may call, guarded -------------------------------------

    def get(self, container: Any, key: Any, default: Any = None) -> Any:
        return _get(container, self.weighed(key), default)

    def sum(self, iterable: Any, /, start: Any = 0) -> Any:
        if isinstance(start, str | bytes):
            raise TypeError("sum() can't sum strings")
        total = start
        for item in self._counted(iterable):
            total = self.operation(total, item, "+")
        return total

    def compared(self, function: Callable[..., Any], *, sorts: bool = False) -> Callable[..., Any]:
        """min, max and sorted: every item is compared, by sorting about log2(n) times."""

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 1:
                args = (self._listed(args[0]),)
            before = self.steps
            self.weighed(args)
            if sorts and args and isinstance(args[0], _SIZED):
                self.charge((before - self.steps) * (len(args[0]).bit_length() - 1))
            return self.made(function(*args, **kwargs))

        return guarded

    def built(self, function: Callable[..., Any], *, walks: bool) -> Callable[..., Any]:
        """A builtin that makes a value from its arguments (`walks`: hashing, parsing or
        writing out all of them, not just copying references)."""

        def guarded(*args: Any, **kwargs: Any) -> Any:
            args = tuple(self._listed(a) for a in args)
            if walks:
                self.weighed((args, kwargs))
            return self.made(function(*args, **kwargs))

        return guarded

    def round(self, number: Any, ndigits: Any = None) -> Any:
        # round(1, -10**7) computes 10**(10**7)
        if isinstance(ndigits, int) and abs(ndigits) > MAX_INT_BITS:
            raise UnsafeExpression(f"round() takes at most {MAX_INT_BITS} digits")
        return self.made(round(number, ndigits))

    def any(self, iterable: Any) -> bool:
        return any(self._counted(iterable))

    def all(self, iterable: Any) -> bool:
        return all(self._counted(iterable))

    def functions(self) -> dict[str, Callable[..., Any]]:
        """The guarded builtins, by the names a diagram calls them."""
        made = self.made
        return {
            "get": self.get,
            "len": len,
            "min": self.compared(min),
            "max": self.compared(max),
            "sum": self.sum,
            "abs": lambda x: made(abs(x)),
            "round": self.round,
            "sorted": self.compared(sorted, sorts=True),
            "set": self.built(set, walks=True),
            "list": self.built(list, walks=False),
            "dict": self.built(dict, walks=True),
            "str": self.built(str, walks=True),
            "int": self.built(int, walks=True),
            "float": self.built(float, walks=True),
            "bool": bool,
            "any": self.any,
            "all": self.all,
            "enumerate": enumerate,
            "zip": zip,
        }

    def guards(self) -> dict[str, Callable[..., Any]]:
        """The guards the compiled code calls, by the names _Guards gave them."""
        return {
            _OPERATION: self.operation,
            _WEIGHED: self.weighed,
            _MEMBER_OF: self.member_of,
            _ITEM: self.item,
            _SLICE: slice,
            _TEXT: self.text,
            _ITERATE: self.iterate,
        }


# Names the guards go by in compiled code: a diagram cannot write them (names with a
# leading underscore are refused).
_OPERATION = "__csi_operation"
_WEIGHED = "__csi_weighed"
_MEMBER_OF = "__csi_member_of"
_ITEM = "__csi_item"
_SLICE = "__csi_slice"
_TEXT = "__csi_text"
_ITERATE = "__csi_iterate"


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _wrapped(name: str, node: ast.expr) -> ast.expr:
    return ast.copy_location(_call(name, node), node)


_IDENTITY = (ast.Is, ast.IsNot)
_MEMBERSHIP = (ast.In, ast.NotIn)


def _operand_guard(ops: list[ast.cmpop], index: int) -> str | None:
    """The guard of a comparison's operand `index` (0: the left), from the operators
    it takes part in: none for `is`, the container's for the right of `in`."""
    touching = ops[max(index - 1, 0) : index + 1]
    if all(isinstance(op, _IDENTITY) for op in touching):
        return None
    if index == len(ops) and isinstance(ops[-1], _MEMBERSHIP):
        return _MEMBER_OF
    return _WEIGHED


class _Guards(ast.NodeTransformer):
    """Route, in a tree that passed the check, every operation that makes, copies or
    walks a value through the evaluation's _Work."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        symbol = ast.Constant(_SYMBOLS[type(node.op)])
        return ast.copy_location(_call(_OPERATION, node.left, node.right, symbol), node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        for index, operand in enumerate(operands):
            guard = _operand_guard(node.ops, index)
            if guard is not None:
                operands[index] = _wrapped(guard, operand)
        node.left, node.comparators = operands[0], operands[1:]
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        return ast.copy_location(_call(_ITEM, node.value, node.slice), node)

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        self.generic_visit(node)
        parts = [part or ast.Constant(None) for part in (node.lower, node.upper, node.step)]
        return ast.copy_location(_call(_SLICE, *parts), node)

    def visit_Set(self, node: ast.Set) -> ast.AST:
        self.generic_visit(node)
        node.elts = [_wrapped(_WEIGHED, e) for e in node.elts]
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        self.generic_visit(node)
        node.keys = [k if k is None else _wrapped(_WEIGHED, k) for k in node.keys]
        return node

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        self.generic_visit(node)
        node.elt = _wrapped(_WEIGHED, node.elt)
        return node

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        self.generic_visit(node)
        node.key = _wrapped(_WEIGHED, node.key)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        self.generic_visit(node)
        return ast.copy_location(_call(_TEXT, node), node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        # the format spec is literal (checked) and short: only the value is guarded
        node.value = _wrapped(_WEIGHED, self.visit(node.value))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.iter = _wrapped(_ITERATE, node.iter)
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


def _globals_for(names: Mapping[str, Any], work: _Work) -> dict[str, Any]:
    # Data goes into globals, not locals: comprehensions only see globals. The functions
    # and guards go in after the data, so that a variable named like one of them (data
    # stored before names were checked at the door) can never replace it.
    scope: dict[str, Any] = dict(names)
    scope.update(work.functions())
    scope.update(work.guards())
    scope["__builtins__"] = {}
    return scope


def evaluate(source: str, names: Mapping[str, Any], allowance: Allowance | None = None) -> Any:
    """Evaluate a checked expression over `names` (task data), drawing on the command's
    `allowance` when given."""
    code = compile_expression(source)
    work = _Work(allowance)
    try:
        return work.weighed(eval(code, _globals_for(names, work)))  # noqa: S307 - checked AST
    finally:
        work.settle()


def evaluate_over(source: str, data: Mapping[str, Any], allowance: Allowance | None = None) -> Any:
    """Evaluate over instance data in which a variable not set yet reads as None (forms
    prefill and check over data that a later step may not have yet)."""
    names = dict(data)
    for variable in names_in(source):
        names.setdefault(variable, None)
    return evaluate(source, names, allowance)


def execute(
    source: str, data: dict[str, Any], allowance: Allowance | None = None
) -> dict[str, Any]:
    """Run a checked script over `data`, store its assignments there and return them.
    The whole script is one evaluation: its lines share one budget of work."""
    steps = compile_script(source)
    work = _Work(allowance)
    assigned: dict[str, Any] = {}
    try:
        for name, code in steps:
            value = eval(code, _globals_for({**data, **assigned}, work))  # noqa: S307 - checked AST
            assigned[name] = work.weighed(value)
    finally:
        work.settle()
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
