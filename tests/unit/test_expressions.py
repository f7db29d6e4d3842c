"""The expression whitelist: what diagrams may say, and the escapes it refuses."""

from __future__ import annotations

import pytest

from engine.errors import UnsafeExpression
from engine.workflow import expressions
from tests.helpers.deadline import quickly


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("decision == 'reject'", True),
        ("outcome in ('adjust', 'continue')", False),
        ("1 + 2 * 3 - 4 / 2", 5.0),
        ("not flag and n >= 2 or n == 0", True),
        ("metrics[0]['owner']", "po1"),
        ("'implemented' if result == 'success' else 'failed'", "implemented"),
        ("sorted(set([m['owner'] for m in metrics]))", ["po1", "po2"]),
        ("len(metrics) > 1", True),
        ("{m['code']: m['owner'] for m in metrics}", {"A": "po1", "B": "po2"}),
        ("max([1, n, 3])", 3),
        ("f'{n} items'", "2 items"),
        ("f'{n:>4}'", "   2"),
        ("2 ** 10", 1024),
        ("'ab' * 3 + str(n * 4)", "ababab8"),
        ("n % 2 == 0 and 7 % n", 1),
        ("str(n) + str([1, 2]) + str()", "2[1, 2]"),
        ("[m['code'] for m in metrics for k in [1] if m['owner'] == 'po2']", ["B"]),
        ("[0] * 5", [0, 0, 0, 0, 0]),
    ],
)
def test_allowed_expressions(source: str, expected: object) -> None:
    data = {
        "decision": "reject",
        "outcome": "achieved",
        "flag": False,
        "n": 2,
        "result": "success",
        "metrics": [{"code": "A", "owner": "po1"}, {"code": "B", "owner": "po2"}],
    }
    assert expressions.evaluate(source, data) == expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('id')",
        "__builtins__",
        "().__class__.__bases__[0].__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "x.__class__",
        "'abc'.upper()",
        "(lambda: 1)()",
        "open('/etc/passwd')",
        "eval('1')",
        "getattr(x, 'y')",
        "type(x)",
        "_private",
        "[x async for x in y]",
        "10 ** 10 ** 10",
        "print('x')",
        "dict(**x)",
        "(yield)",
        "import os",
    ],
)
def test_refused_expressions(source: str) -> None:
    with pytest.raises(UnsafeExpression):
        expressions.check(source)


def test_data_named_like_a_function_never_replaces_it() -> None:
    # Stored before names were checked at the door, {"sorted": 1, "set": 2} made every
    # later `sorted(set(...))` fail; the evaluator's functions now always win.
    data = {"sorted": 1, "set": 2, "len": "not a function", "x": [2, 1, 2]}
    assert expressions.evaluate("sorted(set(x))", data) == [1, 2]
    assert expressions.evaluate("len(x)", data) == 3
    assert expressions.execute("y = sorted(x)", dict(data)) == {"y": [1, 2, 2]}


@pytest.mark.parametrize("name", ["lambda", "None", "class"])
def test_python_keywords_are_reserved(name: str) -> None:
    assert expressions.is_reserved(name)


@pytest.mark.parametrize("name", ["sorted", "set", "get", "len", "_x", "__csi"])
def test_a_script_may_not_assign_a_reserved_name(name: str) -> None:
    assert expressions.is_reserved(name)
    with pytest.raises(UnsafeExpression, match="reserved"):
        expressions.check(f"{name} = 1", script=True)


@pytest.mark.parametrize("name", ["source", "metrics", "type", "match", "setting", "sorted_rows"])
def test_names_data_may_take(name: str) -> None:
    assert not expressions.is_reserved(name)


def test_script_stores_only_its_assignments() -> None:
    data = {"metrics": [{"owner": "b"}, {"owner": "a"}, {"owner": "b"}]}
    assigned = expressions.execute(
        "collected = []\nmetric_owners = sorted(set([m['owner'] for m in metrics]))", data
    )
    assert assigned == {"collected": [], "metric_owners": ["a", "b"]}
    assert set(data) == {
        "metrics",
        "collected",
        "metric_owners",
    }  # no comprehension variable leaked


@pytest.mark.parametrize(
    "script",
    [
        "import os",
        "x = 1; del y",
        "for i in range(3): x = i",
        "x.y = 1",
        "x[0] = 1",
        "def f(): pass",
        "__x = 1",
        "x = ().__class__",
        "with open('f') as f: x = 1",
    ],
)
def test_refused_scripts(script: str) -> None:
    with pytest.raises(UnsafeExpression):
        expressions.check(script, script=True)


def test_later_lines_see_earlier_assignments() -> None:
    data: dict[str, object] = {}
    expressions.execute("a = 2\nb = a * 3", data)
    assert data == {"a": 2, "b": 6}


@pytest.mark.parametrize(
    "source",
    [
        "'a' * 10 ** 9",
        "[0] * 10 ** 12",
        "n * ['x'] * 10 ** 6",
        "f'{n:>2000000000}'",
        "f'{n:{n}}'",
        "'%50000000d' % n",
        "'%*d' % (50000000, n)",
        "len([1 for a in 'x' * 3000 for b in 'x' * 3000])",
        "sum(1 for a in 'x' * 99999 for b in 'xy')",
        "str([[0] * 100000] * 100000)",
        "f'{[[0] * 100000] * 100000}'",
    ],
)
def test_expressions_cannot_claim_unbounded_memory(source: str) -> None:
    with pytest.raises(UnsafeExpression):
        expressions.evaluate(source, {"n": 2})


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("a + b", {"a", "b"}),
        ("1", set()),
        ("x if y else z", {"x", "y", "z"}),
        ("f'{a}-{b:>3}'", {"a", "b"}),
        ("get(d, 'k') + len(xs) + max(ys)", {"d", "xs", "ys"}),  # functions are no variables
        ("len", set()),
        ("[m['c'] for m in ms if m != x]", {"ms", "x"}),
        ("{k: v for k, v in zip(ks, vs)}", {"ks", "vs"}),
        ("{k for (k, v) in pairs if v}", {"pairs"}),
        ("[[j for j in i] for i in rows]", {"rows"}),
        ("[a for a in xs for b in a if b > limit]", {"xs", "limit"}),
        ("sum(n for n in ns)", {"ns"}),
        # a comprehension binds its names only inside itself
        ("x + [x for x in xs]", {"x", "xs"}),
        ("[x for x in xs] + [y for y in x]", {"xs", "x"}),
        ("[m for m in m]", {"m"}),  # the first iterable is read outside
        ("[a for a in xs for c in a]", {"xs"}),  # later iterables are read inside
    ],
)
def test_names_in(source: str, names: set[str]) -> None:
    assert expressions.names_in(source) == names


@pytest.mark.parametrize("source", ["a.b", "_x + 1", "1 +"])
def test_names_in_refuses_what_evaluation_would(source: str) -> None:
    with pytest.raises(UnsafeExpression):
        expressions.names_in(source)


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("absent is None", {}, True),
        ("(metrics or []) + [1]", {}, [1]),
        ("a or b", {"b": 2}, 2),
        ("[x for x in xs] + (x or [])", {"xs": [1]}, [1]),  # x is read outside: None
        ("present", {"present": 0}, 0),
    ],
)
def test_evaluate_over_reads_absent_variables_as_none(
    source: str, data: dict[str, object], expected: object
) -> None:
    before = dict(data)
    assert expressions.evaluate_over(source, data) == expected
    assert data == before  # the None stand-ins are not written back


def test_evaluate_leaves_absent_variables_undefined() -> None:
    with pytest.raises(NameError):
        expressions.evaluate("absent", {})


@pytest.mark.parametrize(
    ("container", "key", "default", "expected"),
    [
        ({"k": 1}, "k", None, 1),
        ({"k": None}, "k", 5, None),
        ({"k": 1}, "z", None, None),
        ({"k": 1}, "z", 5, 5),
        ([10, 20], 1, None, 20),
        ([10, 20], -2, None, 10),
        ([10, 20], 2, "d", "d"),
        ([10, 20], -3, "d", "d"),
        ([10, 20], "0", "d", "d"),
        ((10, 20), 0, None, 10),
        ("abc", 0, "d", "d"),
        (None, "k", "d", "d"),
        (5, 0, None, None),
    ],
)
def test_get(container: object, key: object, default: object, expected: object) -> None:
    names = {"c": container, "k": key, "d": default}
    assert expressions.evaluate("get(c, k, d)", names) == expected
    if default is None:
        assert expressions.evaluate("get(c, k)", names) == expected


# The work an evaluation may do is bounded, whatever the spelling: each of these took
# seconds to hours, or gigabytes, before the guards counted it.
@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("((((10**64)**64)**64)**64) > 0", "4096 bits"),
        ("(10 ** 64) ** 64", "4096 bits"),
        ("int('9' * 4000) * 2", "4096 bits"),
        ("round(1, -10 ** 7)", "4096 digits"),
        ("sum([[0] * 100000] * 100, [])", "100000 items"),
        ("'x' * 60000 + 'y' * 60000", "100000 items"),
        ("[0] * 60000 + [1] * 60000", "100000 items"),
        ("list(a for a in 'x' * 99999) + list('y' * 99999)", "100000 items"),
        ("[[0] * 100000] * 100000 == [[0] * 100000] * 100000", "steps of work"),
        ("[0] * 100000 in [[0] * 100000] * 100000", "steps of work"),
        ("{((0,) * 100000,) * 100000}", "steps of work"),
        ("{((0,) * 100000,) * 100000: 1}", "steps of work"),
        ("set([((0,) * 100000,) * 100000])", "steps of work"),
        ("get({}, ((0,) * 100000,) * 100000)", "steps of work"),
        ("sorted([[0] * 1000] * 1000)", "steps of work"),
        ("max([[0] * 100000] * 1000)", "steps of work"),
        ("min([0] * 100000, [[0] * 100000] * 1000)", "steps of work"),
        ("f'{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}{s}'", "steps"),
        ("[s == t for t in [s] * 1000]", "steps of work"),
        ("[[0] * 100000] * 100000", "steps of work"),  # what it gives back is weighed too
    ],
)
def test_the_work_of_one_evaluation_is_bounded(source: str, reason: str) -> None:
    names = {"s": "y" * 90000}
    with quickly(), pytest.raises(UnsafeExpression, match=reason):
        expressions.evaluate(source, names)


def test_a_script_is_one_evaluation_and_shares_its_bounds() -> None:
    doubling = "a = 'x' * 100000\n" + "a = a + a\n" * 7
    with quickly(), pytest.raises(UnsafeExpression, match="100000 items"):
        expressions.execute(doubling, {})
    # each line alone is cheap: together they go past the steps of one evaluation
    copies = "\n".join(f"c{i} = str([[0] * 1000] * 30)" for i in range(30))
    with quickly(), pytest.raises(UnsafeExpression, match="steps of work"):
        expressions.execute(copies, {})
    data: dict[str, object] = {}
    with pytest.raises(UnsafeExpression, match="steps of work"):
        expressions.execute("b = [[0] * 100000] * 100000", data)
    assert data == {}  # a refused script stores nothing


def test_the_evaluations_of_one_command_share_an_allowance() -> None:
    allowance = expressions.Allowance()
    source = "[[0] * 1000] * 900 == [[0] * 1000] * 900"  # 1.8 million steps each
    each = 1_802_000
    with quickly(3.0):
        for _ in range(expressions.MAX_COMMAND_STEPS // each):
            expressions.evaluate(source, {}, allowance)
    with pytest.raises(UnsafeExpression, match="of one command"):
        expressions.evaluate(source, {}, allowance)
    assert expressions.evaluate(source, {})  # a fresh evaluation has its own steps


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sum([[1], [2]], [])", [1, 2]),
        ("sum([1.5, 2, 3])", 6.5),
        ("sum(x for x in [1, 2, 3])", 6),
        ("round(1234, -2)", 1200),
        ("round(2.675, 2)", 2.67),
        ("max([], default=0)", 0),
        ("min(3, 1, 2)", 1),
        ("sorted(['b', 'a', 'c'], reverse=True)", ["c", "b", "a"]),
        ("sorted(['bb', 'a'], key=len)", ["a", "bb"]),
        ("dict(zip(['a', 'b'], [1, 2]))", {"a": 1, "b": 2}),
        ("list(enumerate('ab', 1))", [(1, "a"), (2, "b")]),
        ("sorted(set('abca'))", ["a", "b", "c"]),
        ("[10, 20, 30, 40][1:3] + [10, 20, 30][::-1]", [20, 30, 30, 20, 10]),
        ("{'a': 1}['a'] + (1, 2)[-1]", 3),
        ("'a' in {'a': 1} and 2 not in {1} and 'b' in 'abc'", True),
        ("x is None and x is not False", True),
        ("0 < 1 < 2 in [2] == [2]", True),
        ("1 in [1] in [[1]] not in [3]", True),
        ("all(v > 0 for v in [1, 2]) and not any([])", True),
        ("int('42') + int(2.9) + float('1.5')", 45.5),
        ("2 ** 64 * 2 ** 64 > 10 ** 38", True),
        ("(1 + 0.05) ** 10 > 1.6", True),
        ("abs(-3) + len('abc') - 7 // 2 % 2 / 2", 5.5),
        ("str(10 ** 64)", "1" + "0" * 64),
        ("'x' * 100000 == 'x' * 100000", True),
        ("{k: v for k, v in [('a', 1)]} == dict(a=1)", True),
        ("{n for n in [1, 1, 2]}", {1, 2}),
    ],
)
def test_guarded_operations_mean_what_python_means(source: str, expected: object) -> None:
    assert expressions.evaluate(source, {"x": None}) == expected
