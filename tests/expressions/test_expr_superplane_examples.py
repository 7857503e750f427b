"""Every example of SuperPlane's expression-functions reference evaluates to its documented result.

The reference (superplanehq/docs, concepts/expression-functions.md) gives 97 examples, one per
table row. Most are comparisons with their expected value (``trim("  hello  ") == "hello"``) and
so must give ``true``; the others name a value without stating it, and the row here says what
SuperPlane's Go semantics make of it in this project's JSON form (dates as RFC 3339, durations
in Go's ``1h30m0s`` form, time zones by name). Examples that read a variable (``users``) or a
placeholder (``date("...")``) read this file's fixture instead; the rewrite keeps what the
example shows. Each row is evaluated three ways: inside ``{{ }}``, inside ``<< >>`` and bare.
"""

from datetime import UTC, datetime
from typing import Any

import pytest

from daytonaflow.expressions import ChainEntry, ExpressionContext, evaluate_expression, resolve

NOW = datetime(2026, 3, 5, 14, 7, 9, 123456, tzinfo=UTC)
ALICE = {"name": "alice", "role": "admin", "age": 41}
BOB = {"name": "bob", "role": "dev", "age": 29}
CAROL = {"name": "carol", "role": "admin", "age": 35}


def _event(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "default", "data": data, "timestamp": "2026-03-05T14:00:00Z"}


CHAIN = [
    ChainEntry("node-users", "List users", "http", _event({"users": [ALICE, BOB, CAROL]})),
    ChainEntry("node-build", "Build", "daytona.executeCommand", _event({"version": "1.4.0"})),
    ChainEntry("node-deploy", "Deploy", "daytona.executeCommand", _event({"status": "success"})),
]
ROOT = {"type": "github.push", "data": {"ref": "refs/heads/main"}, "timestamp": "2026-03-05T14:00:00Z"}
USERS = '$["List users"].data.users'

# (the example as SuperPlane's page writes it, the expression run here, the documented result)
EXAMPLES: list[tuple[str, str, Any]] = [
    # -- SuperPlane
    ("root().data.ref", "root().data.ref", "refs/heads/main"),
    ("previous().data.status", "previous().data.status", "success"),
    ("previous(2).data.version", "previous(2).data.version", "1.4.0"),
    # -- String
    ('trim("  hello  ") == "hello"', "", True),
    ('trim("xxhelloxx", "x") == "hello"', "", True),
    ('trimPrefix("HelloWorld", "Hello") == "World"', "", True),
    ('trimSuffix("HelloWorld", "World") == "Hello"', "", True),
    ('upper("hello") == "HELLO"', "", True),
    ('lower("HELLO") == "hello"', "", True),
    ('split("a,b,c", ",") == ["a", "b", "c"]', "", True),
    ('split("a,b,c", ",", 2) == ["a", "b,c"]', "", True),
    ('splitAfter("a,b,c", ",") == ["a,", "b,", "c"]', "", True),
    ('replace("hello world", "world", "there")', "", "hello there"),
    ('repeat("ab", 3) == "ababab"', "", True),
    ('indexOf("apple pie", "pie") == 6', "", True),
    ('lastIndexOf("abab", "ab") == 2', "", True),
    ('hasPrefix("hello", "he") == true', "", True),
    ('hasSuffix("hello", "lo") == true', "", True),
    # -- Number
    ("max(5, 7) == 7", "", True),
    ("min(5, 7) == 5", "", True),
    ("abs(-5) == 5", "", True),
    ("ceil(1.2) == 2.0", "", True),
    ("floor(1.8) == 1.0", "", True),
    ("round(1.5) == 2.0", "", True),
    # -- Array
    ("all([1, 2, 3], # > 0) == true", "", True),
    ("any([1, 2, 3], # > 2) == true", "", True),
    ("one([1, 2, 3], # == 2) == true", "", True),
    ("none([1, 2, 3], # > 5) == true", "", True),
    ("map([1, 2, 3], # * 2) == [2, 4, 6]", "", True),
    ("filter([1, 2, 3], # > 1) == [2, 3]", "", True),
    ("find([1, 2, 3], # > 1) == 2", "", True),
    ("findIndex([1, 2, 3], # > 1) == 1", "", True),
    ("findLast([1, 2, 3], # > 1) == 3", "", True),
    ("findLastIndex([1, 2, 3], # > 1) == 2", "", True),
    ("groupBy(users, #.role)", f"groupBy({USERS}, #.role)", {"admin": [ALICE, CAROL], "dev": [BOB]}),
    ("count([1, 2, 3], # > 1) == 2", "", True),
    ("reduce([1, 2, 3], #acc + #, 0) == 6", "", True),
    ("sum([1, 2, 3]) == 6", "", True),
    ("mean([1, 2, 3]) == 2.0", "", True),
    ("median([1, 2, 3]) == 2.0", "", True),
    ("first([1, 2, 3]) == 1", "", True),
    ("last([1, 2, 3]) == 3", "", True),
    ("take([1, 2, 3, 4], 2) == [1, 2]", "", True),
    ("reverse([1, 2, 3]) == [3, 2, 1]", "", True),
    ("sort([3, 1, 2]) == [1, 2, 3]", "", True),
    ('sort([1, 2, 3], "desc") == [3, 2, 1]', "", True),
    ('sortBy(users, #.age, "desc")', f'sortBy({USERS}, #.age, "desc")', [ALICE, CAROL, BOB]),
    ("concat([1, 2], [3, 4]) == [1, 2, 3, 4]", "", True),
    ("flatten([[1, 2], [3]]) == [1, 2, 3]", "", True),
    ("uniq([1, 2, 2, 3]) == [1, 2, 3]", "", True),
    ('join(["a", "b"], ",") == "a,b"', "", True),
    # -- Map
    ('keys({a: 1, b: 2}) == ["a", "b"]', "", True),
    ("values({a: 1, b: 2}) == [1, 2]", "", True),
    ('toPairs({a: 1}) == [["a", 1]]', "", True),
    ('fromPairs([["a", 1]]) == {a: 1}', "", True),
    # -- Date and time
    ("now().Year()", "", 2026),
    ('date("2024-08-14")', "", "2024-08-14T00:00:00Z"),
    ('date("2024-08-14", "America/New_York")', "", "2024-08-14T00:00:00-04:00"),
    ("date(1700000000)", "", "2023-11-14T22:13:20Z"),
    ('duration("1h30m")', "", "1h30m0s"),
    ('timezone("Europe/Zurich")', "", "Europe/Zurich"),
    # -- Date methods
    ("now().Year()", "", 2026),
    ("now().Month()", "", 3),
    ("now().Day()", "", 5),
    ("now().Hour()", "", 14),
    ("now().Minute()", "", 7),
    ("now().Second()", "", 9),
    ("now().Weekday()", "", "Thursday"),
    ("now().YearDay()", "", 64),
    ("now().Unix()", "", 1772719629),
    ("now().UnixMilli()", "", 1772719629123),
    ('now().Format("2006-01-02")', "", "2026-03-05"),
    ('now().Add(duration("1h"))', "", "2026-03-05T15:07:09.123456Z"),
    ('now().Sub(date("2024-01-01"))', "", "19070h7m9.123456s"),
    ('date("2024-01-01").Before(now())', "", True),
    ('now().After(date("2024-01-01"))', "", True),
    ('now().In(timezone("US/Eastern"))', "", "2026-03-05T09:07:09.123456-05:00"),
    ('date("...").UTC()', 'date("2024-08-14T09:30:00+02:00").UTC()', "2024-08-14T07:30:00Z"),
    ('now().Round(duration("1h"))', "", "2026-03-05T14:00:00Z"),
    ('now().Truncate(duration("24h"))', "", "2026-03-05T00:00:00Z"),
    ('date("...").IsZero()', 'date("2024-08-14").IsZero()', False),
    # -- Duration methods
    ('duration("90m").Hours() == 1.5', "", True),
    ('duration("1h").Minutes() == 60.0', "", True),
    ('duration("1m30s").Seconds() == 90.0', "", True),
    ('duration("1s").Milliseconds() == 1000', "", True),
    ('duration("1ms").Microseconds() == 1000', "", True),
    ('duration("1us").Nanoseconds() == 1000', "", True),
    # -- Type and conversion
    ('type(42) == "int"', "", True),
    ('int("123") == 123', "", True),
    ('float("1.5") == 1.5', "", True),
    ('string(123) == "123"', "", True),
    ("toJSON({a: 1})", "", '{"a":1}'),
    ('fromJSON("{\\"a\\":1}")', "", {"a": 1}),
    ('toBase64("hello")', "", "aGVsbG8="),
    ('fromBase64("aGVsbG8=") == "hello"', "", True),
    ('len("hello") == 5', "", True),
    ("get([1, 2], 5) == nil", "", True),
]


def _runnable(example: str, rewritten: str) -> str:
    return rewritten or example


@pytest.fixture
def superplane_ctx() -> ExpressionContext:
    return ExpressionContext(CHAIN, ROOT, clock=lambda: NOW)


def test_the_table_holds_every_example_of_the_reference_page() -> None:
    assert len(EXAMPLES) == 97


@pytest.mark.parametrize(("example", "rewritten", "expected"), EXAMPLES, ids=[row[0] for row in EXAMPLES])
def test_example_resolves_to_its_documented_result_in_braces(
    superplane_ctx: ExpressionContext, example: str, rewritten: str, expected: Any
) -> None:
    assert resolve("{{ " + _runnable(example, rewritten) + " }}", superplane_ctx) == expected


@pytest.mark.parametrize(("example", "rewritten", "expected"), EXAMPLES, ids=[row[0] for row in EXAMPLES])
def test_example_resolves_to_its_documented_result_in_angle_brackets(
    superplane_ctx: ExpressionContext, example: str, rewritten: str, expected: Any
) -> None:
    assert resolve("<< " + _runnable(example, rewritten) + " >>", superplane_ctx) == expected


@pytest.mark.parametrize(("example", "rewritten", "expected"), EXAMPLES, ids=[row[0] for row in EXAMPLES])
def test_example_evaluates_to_its_documented_result_bare(
    superplane_ctx: ExpressionContext, example: str, rewritten: str, expected: Any
) -> None:
    assert evaluate_expression(_runnable(example, rewritten), superplane_ctx) == expected


# The expressions page (superplanehq/docs, concepts/expressions.md): its examples against a node
# named "node" and one named "HTTP Request", with this file's own data.
NODE = {
    "items": [{"price": 5}, {"price": 12}, {"price": 30}],
    "users": [{"name": "alice"}, {"name": "bob"}],
    "tags": ["critical", "env:prod", "env:eu"],
    "alerts": [{"id": "a1", "severity": 2}, {"id": "a2", "severity": 5}],
    "body": "an error occurred",
    "ref": "refs/heads/main",
    "branch": "fix-hotfix",
    "msg": "fix(parser): handle let",
    "env": "staging",
    "ok": True,
    "environments": ["production", "staging"],
    "timestamp": "2026-03-05T13:30:00Z",
    "user": {"name": "carol"},
}
CONCEPT_CHAIN = [
    ChainEntry(
        "node-http",
        "HTTP Request",
        "http",
        _event({"status": 200}),
        {"url": "https://api.example.test/health", "method": "GET"},
    ),
    ChainEntry("node-node", "node", "noop", _event(NODE)),
]
CONCEPT_EXAMPLES: list[tuple[str, Any]] = [
    ("{{$['HTTP Request'].config.url}}", "https://api.example.test/health"),
    ("{{$['HTTP Request'].config.method}}", "GET"),
    ("{{$['node'].data.body contains \"error\"}}", True),
    ("{{$['node'].data.ref startsWith \"refs/heads/\"}}", True),
    ("{{$['node'].data.branch endsWith \"-hotfix\"}}", True),
    ("{{$['node'].data.msg matches \"^fix\\\\(.*\\\\)\"}}", True),
    ('{{$[\'node\'].data.env in ["staging", "prod"]}}', True),
    ("{{$['node'].data.label ?? \"default\"}}", "default"),
    ('{{$[\'node\'].data.ok ? "pass" : "fail"}}', "pass"),
    ("{{$['node'].data?.user?.name}}", "carol"),
    ("{{filter(map($['node'].data.items, #.price), # > 10)}}", [12, 30]),
    ("{{map($['node'].data.users, #.name)}}", ["alice", "bob"]),
    ("{{any($['node'].data.tags, # == \"critical\")}}", True),
    ("{{sortBy($['node'].data.alerts, #.severity, \"desc\")}}", [NODE["alerts"][1], NODE["alerts"][0]]),
    ("{{reduce($['node'].data.items, #acc + #.price, 0)}}", 47),
    ("{{\"production\" in $['node'].data.environments}}", True),
    ('{{join(filter($[\'node\'].data.tags, # startsWith "env:"), ", ")}}', "env:prod, env:eu"),
    ("{{now().Sub(date($['node'].data.timestamp)).Hours() < 1}}", True),
    (
        "{{toJSON({status: $['node'].data.env, ref: root().data.ref})}}",
        '{"status":"staging","ref":"refs/heads/main"}',
    ),
]


@pytest.mark.parametrize(("template", "expected"), CONCEPT_EXAMPLES, ids=[row[0] for row in CONCEPT_EXAMPLES])
def test_expressions_page_example_resolves_as_described(template: str, expected: Any) -> None:
    ctx = ExpressionContext(CONCEPT_CHAIN, ROOT, clock=lambda: NOW)
    assert resolve(template, ctx) == expected
