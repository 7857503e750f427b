"""The escape examples docs/expressions.md gives for code fields resolve as the document says."""

import pytest

from daytonaflow.expressions import ExpressionContext, resolve

EXAMPLES = [
    (
        'print(f"\\{{ not a template }}")\nprint(f"sandbox: {{ $["Create Sandbox"].data.id }}")',
        'print(f"{{ not a template }}")\nprint(f"sandbox: sb-123")',
    ),
    (
        "cat \\<<EOF > config.ini\nbranch={{ root().data.branch }}\nEOF\necho $((1 \\<< 4))",
        "cat <<EOF > config.ini\nbranch=main\nEOF\necho $((1 << 4))",
    ),
    (
        'const url = `${base}/{{ $["Create Sandbox"].data.id }}`;\nconst tpl = "\\{{ mustache }}";',
        'const url = `${base}/sb-123`;\nconst tpl = "{{ mustache }}";',
    ),
    ('{{ "\\\\" }}{{ previous().data.exitCode }}', "\\1"),
    ('build-{{ now().Format("20060102-1504") }}', "build-20260305-1407"),
    ('{{ date("05/03/2026", "02/01/2006").Format("2006-01-02") }}', "2026-03-05"),
    ('{{ date("2024-08-14", "America/New_York") }}', "2024-08-14T00:00:00-04:00"),
    ('{{ now().Truncate(duration("24h")) }}', "2026-03-05T00:00:00Z"),
    ("{{ map([1, 2], ({id: #})) }}", [{"id": 1}, {"id": 2}]),
    ('{{ let n = len($["Run tests"].data.names); n > 1 && n < 5 }}', True),
]


@pytest.mark.parametrize(("template", "expected"), EXAMPLES)
def test_documented_example_resolves_as_documented(
    ctx: ExpressionContext, template: str, expected: object
) -> None:
    assert resolve(template, ctx) == expected
