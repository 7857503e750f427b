"""resolve() over whole configurations, literal paths, and referenced_keys() for validation."""

import pytest

from daytonaflow.expressions import (
    ExpressionContext,
    ExpressionError,
    ExpressionSyntaxError,
    compile_template,
    referenced_keys,
    resolve,
)


def test_resolve_walks_nested_objects_and_lists(ctx: ExpressionContext) -> None:
    config = {
        "sandbox": '{{ $["Create Sandbox"].data.id }}',
        "env": [{"name": "BRANCH", "value": "<< root().data.branch >>"}],
        "timeout": 30,
        "flags": [True, None, "{{ previous().data.exitCode }}"],
    }
    assert resolve(config, ctx) == {
        "sandbox": "sb-123",
        "env": [{"name": "BRANCH", "value": "main"}],
        "timeout": 30,
        "flags": [True, None, 1],
    }


def test_resolve_leaves_the_input_untouched(ctx: ExpressionContext) -> None:
    config = {"a": ["{{ 1 }}"]}
    resolve(config, ctx)
    assert config == {"a": ["{{ 1 }}"]}


def test_literal_paths_are_kept_verbatim_escapes_included(ctx: ExpressionContext) -> None:
    config = {"code": "print(f'{{x}}') \\{{", "files": [{"content": "{{ raw }}"}], "cmd": "{{ 1 + 1 }}"}
    resolved = resolve(config, ctx, literal_paths=["code", "files.*.content"])
    assert resolved == {"code": "print(f'{{x}}') \\{{", "files": [{"content": "{{ raw }}"}], "cmd": 2}


def test_literal_path_can_cover_a_whole_subtree(ctx: ExpressionContext) -> None:
    assert resolve({"script": {"a": "{{ x }}"}}, ctx, literal_paths=["script"]) == {
        "script": {"a": "{{ x }}"}
    }


def test_error_field_is_extended_with_the_path_inside_the_value(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionError) as caught:
        resolve({"env": [{"value": "{{ nope() }}"}]}, ctx, node="Run tests", field="config")
    assert str(caught.value).startswith(
        'node "Run tests" field "config.env.0.value": unknown function nope()'
    )
    assert caught.value.field == "config.env.0.value"


def test_strings_without_templates_are_returned_as_they_are(ctx: ExpressionContext) -> None:
    text = "echo 'a > b' }} >> log && x=${y}"
    assert resolve(text, ctx) is text


def test_each_distinct_template_is_parsed_once() -> None:
    compile_template.cache_clear()
    compile_template("{{ 1 + 1 }}")
    compile_template("{{ 1 + 1 }}")
    info = compile_template.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_referenced_keys_lists_every_node_key_in_any_template() -> None:
    config = {
        "sandbox": '{{ $["daytona.createSandbox"].data.id }}',
        "cmd": "cd << $.Clone.data.path >> && {{ previous().data.x }}",
        "env": [{"v": '{{ $["Run tests"].data.ok ? $["A"].x : $["B"]?.y ?? 1 }}'}],
        "plain": "no template",
        "n": 3,
    }
    assert referenced_keys(config) == {"daytona.createSandbox", "Clone", "Run tests", "A", "B"}


def test_referenced_keys_skips_literal_paths_and_escapes() -> None:
    config = {"code": '{{ $["Hidden"] }}', "text": '\\{{ $["Escaped"] }}'}
    assert referenced_keys(config, literal_paths=["code"]) == set()


def test_referenced_keys_reports_syntax_errors_with_the_field_path() -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        referenced_keys({"env": ["{{ $[ }}"]})
    assert caught.value.field == "env.0"


def test_string_keys_inside_expressions_are_not_node_references() -> None:
    assert referenced_keys('{{ root().data["Clone"] }}') == set()
