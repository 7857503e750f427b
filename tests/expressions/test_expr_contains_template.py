"""contains_template: which strings hold an expression to evaluate."""

import pytest

from daytonaflow.errors import DaytonaflowError
from daytonaflow.expressions import ExpressionError, contains_template


@pytest.mark.parametrize(
    "text",
    [
        "{{ previous().data.id }}",
        '<< $["daytona.createSandbox"].data.id >>',
        "cd {{ $.Clone.data.path }} && make",
        "echo <<x>>",
        "\\{{ literal }} then {{ real }}",
        "{{ unterminated",
    ],
)
def test_strings_with_an_unescaped_opener_contain_a_template(text: str) -> None:
    assert contains_template(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text",
        "print(f'\\{{x}}')",
        "cat \\<<EOF",
        "only closers }} and >>",
        "{ single } < angle >",
    ],
)
def test_plain_or_escaped_strings_contain_no_template(text: str) -> None:
    assert not contains_template(text)


def test_expression_error_is_a_daytonaflow_error_with_location() -> None:
    error = ExpressionError("boom", node="Run tests", field="sandbox")
    assert isinstance(error, DaytonaflowError)
    assert str(error) == 'node "Run tests" field "sandbox": boom'
    assert (error.node, error.field) == ("Run tests", "sandbox")
