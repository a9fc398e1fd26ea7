"""Unit tests for allocsvc.filter: go-bexpr parsing, evaluation and Nomad's error texts.

Expected error strings come from go-bexpr's own tests (grammar/grammar_test.go,
evaluate_test.go) and Nomad's paginator tests; see the module docstrings for sources.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from allocsvc.filter import (
    SYNTAX_ERROR_PREFIX,
    Filter,
    FilterError,
    FilterFieldError,
    FilterSyntaxError,
    GoTypes,
    compile_filter,
    gostr,
    grammar,
    peg,
)
from allocsvc.filter.goregexp import GoRegexpError, compile_go_regexp
from allocsvc.filter.nodes import And, Match, Not, Op, Or, Selector

ALLOC: dict[str, Any] = {
    "ID": "aaaaaa33-3350-4b4b-d185-0e1992ed43e9",
    "Namespace": "default",
    "EvalID": "5456bd7a-9fc0-c0dd-6131-cbee77f57577",
    "Name": "example.web[0]",
    "NodeID": "fb2170a8-257d-3c64-b14d-bc06cc94e34c",
    "NodeName": "client-1",
    "JobID": "example",
    "Job": {
        "ID": "example",
        "Name": "example",
        "Type": "service",
        "Priority": 50,
        "Stop": False,
        "Version": 3,
        "Datacenters": ["dc1", "dc2"],
        "Meta": {"owner": "team-a"},
        "TaskGroups": [
            {
                "Name": "web",
                "Count": 1,
                "Meta": None,
                "Tasks": [
                    {
                        "Name": "web",
                        "Driver": "docker",
                        "Config": {
                            "image": "nginx:1.25",
                            "args": ["-g", "daemon off;"],
                            "ports": {"http": 80},
                        },
                        "Env": None,
                        "Meta": None,
                    }
                ],
            }
        ],
    },
    "TaskGroup": "web",
    "DesiredStatus": "run",
    "DesiredDescription": "",
    "ClientStatus": "running",
    "ClientDescription": "Tasks are running",
    "TaskStates": {
        "web": {
            "State": "running",
            "Failed": False,
            "Restarts": 2,
            "StartedAt": "2024-01-01T00:00:00Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            "Events": [
                {"Type": "Received", "Time": 1700000000000000000, "Details": {}},
                {"Type": "Started", "Time": 1700000001000000000, "Details": {"image": "nginx"}},
            ],
        }
    },
    "DeploymentStatus": None,
    "PreemptedAllocations": None,
    "Metrics": {"NodesEvaluated": 3, "Scores": {"node-1.binpack": 0.5}},
    "CreateIndex": 10,
    "ModifyIndex": 12,
    "AllocModifyIndex": 10,
    "CreateTime": 1700000000000000000,
    "ModifyTime": 1700000002000000000,
}


def run(expression: str, datum: dict[str, Any] | None = None) -> bool:
    return compile_filter(expression).matches(ALLOC if datum is None else datum)


def field_error(expression: str, datum: dict[str, Any] | None = None) -> str:
    with pytest.raises(FilterFieldError) as info:
        run(expression, datum)
    return info.value.message


def syntax_error(expression: str) -> str:
    with pytest.raises(FilterSyntaxError) as info:
        compile_filter(expression)
    assert info.value.message.startswith(SYNTAX_ERROR_PREFIX)
    return info.value.message[len(SYNTAX_ERROR_PREFIX) :]


# --------------------------------------------------------------------------- public API


def test_public_api_shapes() -> None:
    f = compile_filter("TaskGroup == web")
    assert isinstance(f, Filter)
    assert f.expression == "TaskGroup == web"
    assert issubclass(FilterSyntaxError, FilterError)
    assert issubclass(FilterFieldError, FilterError)
    err = FilterFieldError("boom")
    assert err.message == "boom"
    assert str(err) == "boom"


def test_compiled_filter_is_reusable() -> None:
    f = compile_filter('ClientStatus == "running"')
    other = copy.deepcopy(ALLOC)
    other["ClientStatus"] = "failed"
    assert f.matches(ALLOC) is True
    assert f.matches(other) is False
    assert f.matches(ALLOC) is True


# --------------------------------------------------------------------------- Nomad's examples


def test_nomad_example_unquoted_value() -> None:
    assert run("TaskGroup == web") is True


def test_nomad_example_quoted_value() -> None:
    assert run('TaskGroup == "goo"') is False


def test_nomad_example_contains() -> None:
    assert run('ID contains "aaa"') is True
    assert run('ID contains "zzz"') is False


def test_nomad_example_namespace() -> None:
    assert run('Namespace == "non-default"') is False
    assert run('Namespace == "default"') is True


def test_nomad_example_invalid_expression() -> None:
    assert syntax_error("NotValid") == (
        '1:9 (8): no match found, expected: "!=", ".", "==", "[", [ \\t\\r\\n] or [a-zA-Z0-9_/]'
    )


def test_nomad_example_invalid_field() -> None:
    assert field_error('InvalidField == "value"') == (
        'error finding value in datum: /InvalidField at part 0: couldn\'t find key: struct field with name "InvalidField"'
    )


# --------------------------------------------------------------------------- operators


def test_equality_and_inequality_on_strings() -> None:
    assert run('ClientStatus == "running"') is True
    assert run('ClientStatus != "running"') is False
    assert run("ClientStatus != pending") is True
    assert run("DesiredDescription == ``") is True


def test_contains_and_in_on_strings_are_substring_tests() -> None:
    assert run("ClientDescription contains running") is True
    assert run('"are run" in ClientDescription') is True
    assert run('"stopped" not in ClientDescription') is True
    assert run("ClientDescription not contains Tasks") is False


def test_in_on_lists_is_element_membership() -> None:
    assert run("dc1 in Job.Datacenters") is True
    assert run('"dc" in Job.Datacenters') is False
    assert run("Job.Datacenters contains dc2") is True
    assert run("dc3 not in Job.Datacenters") is True
    assert run("Job.Datacenters not contains dc1") is False


def test_in_on_maps_is_key_membership() -> None:
    assert run("web in TaskStates") is True
    assert run("running in TaskStates") is False
    assert run("Job.Meta contains owner") is True
    assert run('"team-a" in Job.Meta') is False


def test_in_on_null_collection_is_false() -> None:
    assert run("x in PreemptedAllocations") is False
    assert run("x not in PreemptedAllocations") is True


def test_is_empty_and_is_not_empty() -> None:
    assert run("TaskStates is not empty") is True
    assert run("Job.Datacenters is empty") is False
    assert run("DesiredDescription is empty") is True
    assert run("TaskStates.web.Events.0.Details is empty") is True
    assert run("TaskStates.web.Events.1.Details is not empty") is True
    assert run("PreemptedAllocations is empty") is True
    assert run("Job.TaskGroups.0.Meta is empty") is True


def test_matches_and_not_matches() -> None:
    assert run('Name matches "^example\\\\.web\\\\[[0-9]+\\\\]$"') is True
    assert run('NodeName matches "^client-[0-9]$"') is True
    assert run("NodeName not matches `^server`") is True
    assert run('ID matches "^A"') is False
    assert run('ID matches "(?i)^A"') is True


def test_matches_dollar_is_end_of_text_like_go() -> None:
    datum = copy.deepcopy(ALLOC)
    datum["ClientDescription"] = "line\n"
    assert run('ClientDescription matches "line$"', datum) is False
    assert run('ClientDescription matches "(?m)line$"', datum) is True


def test_bool_coercion() -> None:
    assert run("Job.Stop == false") is True
    assert run("Job.Stop == true") is False
    assert run("Job.Stop != t") is True
    assert run("TaskStates.web.Failed == 0") is True
    assert run("Job.Stop == FALSE") is True


def test_numeric_coercion() -> None:
    assert run("CreateIndex == 10") is True
    assert run('CreateIndex == "0xa"') is True
    assert syntax_error("CreateIndex == 0xa") == '1:17 (16): rule "number": Invalid number literal'
    assert run("CreateIndex != 10") is False
    assert run("Job.Priority == 50") is True
    assert run("CreateTime == -1") is False
    assert run('Metrics.Scores["node-1.binpack"] == 0.5') is True
    assert run('Metrics.Scores["node-1.binpack"] == "5e-1"') is True


def test_value_literal_forms() -> None:
    assert run("TaskGroup == `web`") is True
    assert run('TaskGroup == "w\\x65b"') is True
    assert run('TaskGroup == "\\u0077eb"') is True
    assert field_error("Job.Priority == 50.0") == (
        'error getting match value in expression: strconv.ParseInt: parsing "50.0": invalid syntax'
    )


def test_selector_value_is_its_dotted_path() -> None:
    datum = copy.deepcopy(ALLOC)
    datum["ClientDescription"] = "Job.Name"
    assert run("ClientDescription == Job.Name", datum) is True
    datum["ClientDescription"] = "a.b c"
    assert run('ClientDescription == a["b c"]', datum) is True


def test_quoted_json_pointer_value_drops_leading_slash() -> None:
    # go-bexpr parses "/x" in value position as a JSON pointer selector whose String() is "x".
    datum = copy.deepcopy(ALLOC)
    datum["ClientDescription"] = "api/v1"
    assert run('ClientDescription == "/api/v1"', datum) is True
    assert run('ClientDescription == "api/v1"', datum) is True


# --------------------------------------------------------------------------- selectors


def test_dotted_bracket_and_pointer_selectors() -> None:
    assert run("TaskStates.web.State == running") is True
    assert run('TaskStates["web"].State == running') is True
    assert run('TaskStates[`web`][ "State" ] == 1') is False
    assert run('"/TaskStates/web/State" == running') is True
    assert run('"/Job/Meta/owner" == "team-a"') is True


def test_list_index_selectors() -> None:
    assert run("TaskStates.web.Events.1.Type == Started") is True
    assert run('"/TaskStates/web/Events/0/Type" == Received') is True
    assert run("Job.TaskGroups.0.Tasks.0.Config.image contains nginx") is True
    assert run('TaskStates.web.Events["01"].Type == Started') is True  # Go parses indexes in base 0
    assert run('TaskStates.web.Events[""].Type == Received') is True  # mapstructure: "" -> 0


def test_selecting_through_a_list_needs_an_index() -> None:
    assert field_error("TaskStates.web.Events.Type == Started") == (
        "error finding value in datum: /TaskStates/web/Events/Type at part 3: "
        'couldn\'t convert value "Type" to type int'
    )
    assert field_error("TaskStates.web.Events.5.Type == Started") == (
        "error finding value in datum: /TaskStates/web/Events/5/Type at part 3: index 5 is out of range (length = 2)"
    )


def test_missing_struct_field_is_an_error_everywhere() -> None:
    assert field_error("Job.Nope == 1") == (
        'error finding value in datum: /Job/Nope at part 1: couldn\'t find key: struct field with name "Nope"'
    )
    assert field_error("TaskStates.web.Nope is empty") == (
        "error finding value in datum: /TaskStates/web/Nope at part 2: "
        'couldn\'t find key: struct field with name "Nope"'
    )


def test_missing_map_key_uses_not_present_disposition() -> None:
    assert run("TaskStates.api == running") is False
    assert run("TaskStates.api != running") is True
    assert run("x in TaskStates.api") is False
    assert run("x not in TaskStates.api") is True
    assert run("TaskStates.api is empty") is True
    assert run("TaskStates.api is not empty") is False
    assert run('TaskStates.api matches ".*"') is False
    assert run('TaskStates.api not matches ".*"') is True
    assert run("Job.Meta.team == a") is False
    assert run("Job.TaskGroups.0.Meta.x == y") is False  # a nil map behaves like an empty one


def test_missing_map_key_deeper_in_the_path_is_an_error() -> None:
    assert field_error("TaskStates.api.State == running") == (
        'error finding value in datum: /TaskStates/api/State at part 1: couldn\'t find key "api"'
    )


def test_selecting_into_a_scalar_or_null_is_an_error() -> None:
    assert field_error("TaskGroup.Name == web") == (
        "error finding value in datum: /TaskGroup/Name: at part 1, invalid value kind: string"
    )
    assert field_error("DeploymentStatus.Healthy == true") == (
        "error finding value in datum: /DeploymentStatus/Healthy: at part 1, invalid value kind: invalid"
    )
    assert field_error("CreateIndex.x == 1") == (
        "error finding value in datum: /CreateIndex/x: at part 1, invalid value kind: uint64"
    )


def test_pointer_escapes_in_error_paths() -> None:
    assert field_error('"/a~1b/c~0" == 1') == (
        'error finding value in datum: /a~1b/c~0 at part 0: couldn\'t find key: struct field with name "a/b"'
    )


# --------------------------------------------------------------------------- evaluation errors


def test_coercion_errors() -> None:
    assert field_error("Job.Stop == maybe") == (
        'error getting match value in expression: strconv.ParseBool: parsing "maybe": invalid syntax'
    )
    assert field_error("CreateIndex == -1") == (
        'error getting match value in expression: strconv.ParseUint: parsing "-1": invalid syntax'
    )
    assert field_error("CreateTime == 99999999999999999999") == (
        'error getting match value in expression: strconv.ParseInt: parsing "99999999999999999999": '
        "value out of range"
    )
    assert field_error('Metrics.Scores["node-1.binpack"] == abc') == (
        'error getting match value in expression: strconv.ParseFloat: parsing "abc": invalid syntax'
    )


def test_type_mismatch_errors() -> None:
    assert field_error("Job == x") == "unable to find suitable primitive comparison function for matching"
    assert field_error("DeploymentStatus == x") == (
        "unable to find suitable primitive comparison function for matching"
    )
    assert field_error("TaskStates.web.StartedAt == x") == (
        "unable to find suitable primitive comparison function for matching"
    )
    assert (
        field_error('"x" in Job')
        == 'Cannot perform in/contains operations on type struct for selector: "Job"'
    )
    assert field_error('"1" in CreateIndex') == (
        'Cannot perform in/contains operations on type uint64 for selector: "CreateIndex"'
    )
    assert field_error('"x" in CreateIndex') == (
        'error getting match value in expression: strconv.ParseUint: parsing "x": invalid syntax'
    )
    assert field_error('"x" in "/Job/TaskGroups/0"') == (
        'Cannot perform in/contains operations on type struct for selector: "Job/TaskGroups/0"'
    )
    assert field_error("Job.TaskGroups contains web") == (
        'unable to find suitable primitive comparison function for "in" comparison'
    )
    assert field_error('CreateIndex matches "1"') == "Value of type uint64 is not convertible to []byte"
    assert field_error("Job is empty") == "reflect: call of reflect.Value.Len on struct Value"


def test_regexp_compile_error_surfaces_at_evaluation() -> None:
    f = compile_filter('TaskGroup matches "("')
    with pytest.raises(FilterFieldError) as info:
        f.matches(ALLOC)
    assert (
        info.value.message
        == 'Failed to compile regular expression "(": error parsing regexp: missing closing ): `(`'
    )


def test_errors_respect_short_circuit() -> None:
    assert run("TaskGroup == api and Nope == 1") is False
    assert run("TaskGroup == web or Nope == 1") is True
    assert field_error("TaskGroup == web and Nope == 1").startswith("error finding value in datum: /Nope")
    assert field_error("not Nope == 1").startswith("error finding value in datum")


# --------------------------------------------------------------------------- boolean logic


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    node = grammar.parse_fast("x in foo and not str == something or list is empty")
    assert node == Or(
        And(
            Match(Selector(("foo",)), Op.IN, "x"),
            Not(Match(Selector(("str",)), Op.EQUAL, "something")),
        ),
        Match(Selector(("list",)), Op.IS_EMPTY, None),
    )
    assert run("TaskGroup == api and ClientStatus == running or Namespace == default") is True
    assert run("TaskGroup == api and (ClientStatus == running or Namespace == default)") is False
    assert run("not TaskGroup == api and ClientStatus == running") is True
    assert run("not (TaskGroup == web and ClientStatus == running)") is False


def test_and_or_are_right_nested_like_go_bexpr() -> None:
    node = grammar.parse_fast("a == 1 or b == 2 or c == 3")
    assert isinstance(node, Or)
    assert isinstance(node.right, Or)


def test_double_not_collapses() -> None:
    assert grammar.parse_fast("not not foo == 3") == Match(Selector(("foo",)), Op.EQUAL, "3")
    assert run("not not TaskGroup == web") is True


def test_parentheses_and_whitespace() -> None:
    assert run("\t\r\n ( \t\r\n TaskGroup \t\r\n == \t\r\n web \t\r\n ) \t\r\n") is True
    assert run("((TaskGroup==web))") is True
    assert run("(TaskGroup == web) and (ClientStatus == running)") is True


# --------------------------------------------------------------------------- collection expressions


def test_any_and_all_over_lists_and_maps() -> None:
    assert run("any TaskStates.web.Events as e { e.Type == Started }") is True
    assert run("all TaskStates.web.Events as e { e.Type == Started }") is False
    assert run("all TaskStates as name, st { st.State == running }") is True
    assert run("any TaskStates as name { name == web }") is True
    assert run("all Job.Datacenters as _, dc { dc contains dc }") is True
    assert run("any Job.Datacenters as i, _ { i == 1 }") is True
    assert run('any TaskStates.web.Events as e { "/e/Type" == Received }') is True
    assert run("all PreemptedAllocations as a { a == x }") is True
    assert run("any PreemptedAllocations as a { a == x }") is False
    assert run("all TaskStates.api as a { a == x }") is True


def test_collection_errors() -> None:
    assert field_error("all Job as x { x == 1 }") == "Job is not a list or a map"
    assert field_error("all TaskStates as k, k { TaskGroup == web }") == (
        '"k" cannot be used as a placeholder for both the index and the value'
    )
    assert (
        field_error("any TaskStates as k { k.Color == red }")
        == "/k references a string so /k/Color is invalid"
    )
    assert field_error("any Job.Datacenters as i, _ { i.Color == red }") == (
        "/i references a int so /i/Color is invalid"
    )


def test_collection_expression_must_be_last_disjunct() -> None:
    assert run("TaskGroup == api or any TaskStates as k { k == web }") is True
    assert syntax_error("any TaskStates as k { k == web } and TaskGroup == web").startswith("1:")
    assert run("(any TaskStates as k { k == web }) and TaskGroup == web") is True


# --------------------------------------------------------------------------- syntax errors

GO_BEXPR_GRAMMAR_ERRORS = [
    (
        '"/hy-phen/under_score/pi|pe/do.t/ti~lde/" == 3',
        '1:43 (42): no match found, expected: "in", "not" or [ \\t\\r\\n]',
    ),
    ('foo == "12x', '1:12 (11): rule "string": Unterminated string literal'),
    ("foo == `12x", '1:12 (11): rule "string": Unterminated string literal'),
    ("foo == 3x", '1:9 (8): rule "number": Invalid number literal'),
    ("foo[3] == abc", '1:5 (4): rule "index": Invalid index'),
    ('x in foo["abc"', '1:15 (14): rule "index": Unclosed index expression'),
    ('foo["abc" == 3', '1:11 (10): rule "index": Unclosed index expression'),
    ("x in 32", '1:6 (5): rule "match": Invalid selector'),
    ("32 == 32", '1:4 (3): no match found, expected: "in", "not" or [ \\t\\r\\n]'),
    ("32 is empty", '1:4 (3): no match found, expected: "in", "not" or [ \\t\\r\\n]'),
    ("x in foo abc", '1:10 (9): no match found, expected: "and", "or", [ \\t\\r\\n] or EOF'),
    (
        "x in foo and ",
        '1:14 (13): no match found, expected: "(", "-", "0", "\\"", "`", "not", [ \\t\\r\\n], [1-9] or [a-zA-Z]',
    ),
    (
        "x in foo or not ",
        '1:17 (16): no match found, expected: "!=", "(", "-", "0", "==", "\\"", "`", "contains", "in", "is", '
        '"matches", "not", [ \\t\\r\\n], [1-9] or [a-zA-Z]',
    ),
    ("(foo == 4", '1:10 (9): rule "grouping": Unmatched parentheses'),
]


@pytest.mark.parametrize(("expression", "message"), GO_BEXPR_GRAMMAR_ERRORS)
def test_syntax_errors_match_go_bexpr(expression: str, message: str) -> None:
    assert syntax_error(expression) == message


def test_syntax_error_expectations_include_collection_keywords_after_or() -> None:
    assert syntax_error("x in foo or ") == (
        '1:13 (12): no match found, expected: "(", "-", "0", "\\"", "`", "all", "any", "not", '
        "[ \\t\\r\\n], [1-9] or [a-zA-Z]"
    )


def test_syntax_error_for_bad_escape_in_string() -> None:
    assert syntax_error('foo == "a\\q"') == '1:8 (7): rule "string": invalid syntax'
    assert syntax_error('foo["a\\q"] == 1') == '1:5 (4): rule "string": invalid syntax'


def test_syntax_error_positions_count_runes_and_bytes() -> None:
    # columns are runes, offsets are UTF-8 bytes, a newline starts a new line
    assert (
        syntax_error('x == "é" junk')
        == '1:10 (10): no match found, expected: "and", "or", [ \\t\\r\\n] or EOF'
    )
    assert (
        syntax_error("x == y\n junk") == '2:2 (8): no match found, expected: "and", "or", [ \\t\\r\\n] or EOF'
    )


def test_whitespace_is_significant_around_keywords() -> None:
    assert syntax_error('"x"in Tags').startswith("1:4 (3): no match found")
    assert syntax_error("not(TaskGroup == web)").startswith("1:")
    assert run("TaskGroup==web") is True


def test_number_literal_must_be_followed_by_space_paren_or_end() -> None:
    assert syntax_error("all TaskStates as k { k == 3}") == '1:29 (28): rule "number": Invalid number literal'
    assert compile_filter("all TaskStates as k { k == 3 }").expression.endswith("}")


def test_empty_expression_is_a_syntax_error() -> None:
    assert syntax_error("").startswith("1:1 (0): no match found, expected:")


def test_keywords_are_valid_selectors_when_the_peg_says_so() -> None:
    assert peg.parse("not == 3") == Match(Selector(("not",)), Op.EQUAL, "3")
    assert compile_filter("not in TaskStates").matches(ALLOC) is False
    datum = copy.deepcopy(ALLOC)
    datum["TaskStates"]["not"] = {"State": "dead"}
    assert compile_filter("not in TaskStates").matches(datum) is True


# --------------------------------------------------------------------------- go-bexpr evaluate_test.go (JSON form)

NESTED: dict[str, Any] = {
    "Nested": {
        "Map": {
            "foo": "bar",
            "bar": "baz",
            "abc": "123",
            "colon": "co:lon",
            "co:lon": "co:lon",
            "email": "foo@example.com",
        },
        "MapOfStructs": {"one": {"Foo": 42, "Baz": "exported"}, "two": {"Foo": 77, "Baz": "consul"}},
        "SliceOfInts": [1, 3, 5, 7, 9],
        "SliceOfStructs": [{"X": 1, "Y": 2}, {"X": 3, "Y": 5}],
        "SliceOfInfs": ["foobar", 1, True],
    },
    "TopInt": 5,
}
NESTED_TYPES = GoTypes(map_paths=["Nested.Map", "Nested.MapOfStructs"], int_fields=["TopInt", "SliceOfInts"])

GO_BEXPR_EVALUATE = [
    ("Nested.Map.foo == bar", True),
    ("Nested.Map.foo contains ba", True),
    ("Nested.Map.foo == baz", False),
    ("Nested.Map is not empty", True),
    ("Nested.Map contains foo and Nested.Map contains bar", True),
    ('Nested.Map.colon == "co:lon"', True),
    ('"/Nested/Map/co:lon" == "co:lon"', True),
    ("Nested.Map contains nope", False),
    ("Nested.Map.bar == `bazel`", False),
    ("TopInt != 0", True),
    (
        "Nested.Map contains nope or (Nested.Map contains bar and Nested.Map.bar == `bazel`) or TopInt != 0",
        True,
    ),
    ("Nested.MapOfStructs.one.Foo == 42", True),
    ("Nested.MapOfStructs.one.Baz == `exported`", True),
    ("Nested.MapOfStructs.two.Foo == 77", True),
    ("7 in Nested.SliceOfInts", True),
    ("Nested.MapOfStructs is empty or (Nested.SliceOfInts contains 7 and 9 in Nested.SliceOfInts)", True),
    ("Nested.SliceOfStructs.0.X == 1", True),
    ("Nested.SliceOfStructs.0.Y == 4", False),
    ('"foobar" in "/Nested/SliceOfInfs"', True),
    ('"1" in "/Nested/SliceOfInfs"', True),
    ('"2" in "/Nested/SliceOfInfs"', False),
    ('"true" in "/Nested/SliceOfInfs"', True),
    ('"/Nested/Map/email" matches "(foz|foo)@example.com"', True),
    ("Nested.Map.notfound == 4", False),
    ("Nested.Map.notfound != 4", True),
    ("4 in Nested.Map.notfound", False),
    ("4 not in Nested.Map.notfound", True),
    ("Nested.Map.notfound is empty", True),
    ("Nested.Map.notfound is not empty", False),
    ('Nested.Map.notfound matches ".*"', False),
    ('Nested.Map.notfound not matches ".*"', True),
    ("all Nested.SliceOfInts as i { i != 42 }", True),
    ("all Nested.SliceOfInts as i { i == 1 }", False),
    ('all Nested.Map as v { v == "bar" }', False),
    ('all Nested.Map as v { v != "hello" }', True),
    ('all Nested.Map as k, _ { k != "foo" }', False),
    ('all Nested.Map as k, _ { k != "hello" }', True),
    ('all Nested.Map as k, v { k != "foo" or v != "baz" }', True),
    ("any Nested.SliceOfInts as i { i == 1 }", True),
    ("any Nested.SliceOfInts as i { i == 42 }", False),
    ('any Nested.SliceOfStructs as i { "/i/X" == 1 }', True),
    ('any Nested.Map as k { k != "bar" }', True),
    ('any Nested.Map as k { k == "bar" }', True),
    ('any Nested.Map as k { k == "hello" }', False),
    ('any Nested.Map as k, v { k == "foo" and v == "bar" }', True),
]

GO_BEXPR_EVALUATE_ERRORS = [
    (
        "Nested.MapOfStructs.one.bar == `unexported`",
        'error finding value in datum: /Nested/MapOfStructs/one/bar at part 3: couldn\'t find key: struct field with name "bar"',
    ),
    ('"/Nested/SliceOfInts" == "7"', "unable to find suitable primitive comparison function for matching"),
    ("Map in Nested", 'Cannot perform in/contains operations on type struct for selector: "Nested"'),
    (
        "Nested.Notfound == 4",
        'error finding value in datum: /Nested/Notfound at part 1: couldn\'t find key: struct field with name "Notfound"',
    ),
    (
        "4 not in Nested.Notfound",
        'error finding value in datum: /Nested/Notfound at part 1: couldn\'t find key: struct field with name "Notfound"',
    ),
    (
        'Nested.Notfound not matches ".*"',
        'error finding value in datum: /Nested/Notfound at part 1: couldn\'t find key: struct field with name "Notfound"',
    ),
    (
        "all Nested.Map as k, k { TopInt == 5 }",
        '"k" cannot be used as a placeholder for both the index and the value',
    ),
    ('all TopInt as k, v { k != "foo" or v != "baz" }', "TopInt is not a list or a map"),
    ('any Nested.Map as k { k.Color == "red" }', "/k references a string so /k/Color is invalid"),
    ('any Nested.SliceOfInts as i, _ { i.Color == "red" }', "/i references a int so /i/Color is invalid"),
]


@pytest.mark.parametrize(("expression", "expected"), GO_BEXPR_EVALUATE)
def test_go_bexpr_evaluate_vectors(expression: str, expected: bool) -> None:
    assert compile_filter(expression, types=NESTED_TYPES).matches(NESTED) is expected


@pytest.mark.parametrize(("expression", "message"), GO_BEXPR_EVALUATE_ERRORS)
def test_go_bexpr_evaluate_error_vectors(expression: str, message: str) -> None:
    f = compile_filter(expression, types=NESTED_TYPES)
    with pytest.raises(FilterFieldError) as info:
        f.matches(NESTED)
    assert info.value.message == message


def test_go_bexpr_invalid_value_kind_vector() -> None:
    datum = {"foo": {"bar": True, "baz": False}, "abc": None}
    types = GoTypes(map_paths=["foo", "abc"])
    assert compile_filter("foo.bar == true", types=types).matches(datum) is True
    assert compile_filter("abc is empty", types=types).matches(datum) is True
    assert compile_filter("foo in abc", types=types).matches(datum) is False
    with pytest.raises(FilterFieldError) as info:
        compile_filter("foo.bar.baz == 3", types=types).matches(datum)
    assert (
        info.value.message
        == "error finding value in datum: /foo/bar/baz: at part 2, invalid value kind: bool"
    )


# --------------------------------------------------------------------------- Go strconv / regexp helpers


def test_go_quote_and_unquote() -> None:
    assert gostr.quote('a"b\\c\n\x01\u00a0é') == '"a\\"b\\\\c\\n\\x01\\u00a0é"'
    assert gostr.unquote('"a\\tb\\u00e9\\101\\x41"') == "a\tbéAA"
    assert gostr.unquote("`a\\tb\r`") == "a\\tb"
    for bad in ('"a\\q"', '"a\\"', '"\\400"', '"\\ud800"', '"a\nb"', "'a'"):
        with pytest.raises(gostr.UnquoteError):
            gostr.unquote(bad)


def test_go_number_parsing() -> None:
    assert gostr.parse_int("-0x1f") == -31
    assert gostr.parse_int("0o17") == 15
    assert gostr.parse_int("017") == 15
    assert gostr.parse_int("1_000") == 1000
    assert gostr.parse_uint("18446744073709551615") == 2**64 - 1
    assert gostr.parse_float("0x1p-2") == 0.25
    assert gostr.parse_float("1_000.5") == 1000.5
    assert gostr.parse_float("-Inf") == float("-inf")
    for func, text, err in (
        (gostr.parse_int, "1__0", 'strconv.ParseInt: parsing "1__0": invalid syntax'),
        (
            gostr.parse_int,
            "9223372036854775808",
            'strconv.ParseInt: parsing "9223372036854775808": value out of range',
        ),
        (gostr.parse_uint, "", 'strconv.ParseUint: parsing "": invalid syntax'),
        (gostr.parse_float, "1e999", 'strconv.ParseFloat: parsing "1e999": value out of range'),
        (gostr.parse_float, "infinit", 'strconv.ParseFloat: parsing "infinit": invalid syntax'),
        (gostr.parse_float, "0x1", 'strconv.ParseFloat: parsing "0x1": invalid syntax'),
        (gostr.parse_bool, "yes", 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ):
        with pytest.raises(gostr.NumError) as info:
            func(text)
        assert str(info.value) == err


def test_go_regexp_translation() -> None:
    assert compile_go_regexp("[[:alpha:]]+\\d").search("ab1")
    assert not compile_go_regexp("\\d").search("\u0663")  # Go's \d is ASCII only
    assert compile_go_regexp("\\Qa.b\\E").search("xa.by")
    assert not compile_go_regexp("\\Qa.b\\E").search("axb")
    for pattern, message in (
        ("(?=x)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
        ("a)", "error parsing regexp: unexpected ): `a)`"),
        ("[a", "error parsing regexp: missing closing ]: `[a`"),
        ("*", "error parsing regexp: missing argument to repetition operator: `*`"),
        ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
        ("\\1", "error parsing regexp: invalid escape sequence: `\\1`"),
    ):
        with pytest.raises(GoRegexpError) as info:
            compile_go_regexp(pattern)
        assert str(info.value) == message


# --------------------------------------------------------------------------- performance


def test_evaluating_ten_thousand_datums_is_fast() -> None:
    datums = []
    for i in range(10_000):
        d = dict(ALLOC)
        d["TaskGroup"] = "web" if i % 3 else "api"
        d["ClientStatus"] = "running" if i % 2 else "pending"
        datums.append(d)
    f = compile_filter('TaskGroup == web and ClientStatus != "pending" and TaskStates.web.State == running')
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        hits = sum(1 for d in datums if f.matches(d))
        best = min(best, time.perf_counter() - start)
    assert hits == sum(1 for i in range(10_000) if i % 3 and i % 2)
    assert best < 0.1, f"10k evaluations took {best:.3f}s"


# --------------------------------------------------------------------------- properties

SIMPLE_TYPES = GoTypes(map_paths=["Meta"], int_fields=["Count"])
WORDS = st.sampled_from(["web", "api", "db", "x", "running", "failed"])


@st.composite
def datums(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "TaskGroup": draw(WORDS),
        "ClientStatus": draw(WORDS),
        "Count": draw(st.integers(-3, 3)),
        "Healthy": draw(st.booleans()),
        "Tags": draw(st.lists(WORDS, max_size=3)),
        "Meta": draw(st.dictionaries(WORDS, WORDS, max_size=3)),
    }


@st.composite
def atoms(draw: st.DrawFn) -> tuple[str, Any]:
    """An atomic filter and a Python oracle for it."""
    word = draw(WORDS)
    n = draw(st.integers(-3, 3))
    b = draw(st.booleans())
    choices: list[tuple[str, Any]] = [
        (f"TaskGroup == {word}", lambda d: d["TaskGroup"] == word),
        (f'ClientStatus != "{word}"', lambda d: d["ClientStatus"] != word),
        (f"Count == {n}", lambda d: d["Count"] == n),
        (f"Healthy == {str(b).lower()}", lambda d: d["Healthy"] == b),
        (f"{word} in Tags", lambda d: word in d["Tags"]),
        (f"Tags not contains {word}", lambda d: word not in d["Tags"]),
        (f"Meta contains {word}", lambda d: word in d["Meta"]),
        (f"Meta.{word} == {word}", lambda d: d["Meta"].get(word) == word),
        ("Tags is empty", lambda d: not d["Tags"]),
        (f'TaskGroup matches "^{word[0]}"', lambda d: d["TaskGroup"].startswith(word[0])),
        (f"TaskGroup contains {word[:2]}", lambda d: word[:2] in d["TaskGroup"]),
    ]
    atom: tuple[str, Any] = draw(st.sampled_from(choices))
    return atom


@given(datums(), atoms(), atoms())
@settings(max_examples=300, deadline=None)
def test_property_boolean_connectives(datum: dict[str, Any], a: tuple[str, Any], b: tuple[str, Any]) -> None:
    (ea, fa), (eb, fb) = a, b
    va, vb = fa(datum), fb(datum)

    def ev(expression: str) -> bool:
        return compile_filter(expression, types=SIMPLE_TYPES).matches(datum)

    assert ev(ea) is va
    assert ev(f"not ({ea})") is (not va)
    assert ev(f"not {ea}") is (not va)
    assert ev(f"{ea} and {eb}") is (va and vb)
    assert ev(f"{ea} or {eb}") is (va or vb)
    assert ev(f"({ea}) and not ({eb})") is (va and not vb)


_TOKENS = st.sampled_from(
    [
        "foo", "a.b", 'm["k v"]', '"/p/q"', '""', '"s"', "`r`", "3", "-1.5", "07", "not", "and", "or", "in",
        "contains", "matches", "is", "empty", "==", "!=", "(", ")", "all", "any", "as", "{", "}", "x", ",", "_",
    ]
)  # fmt: skip
_SEPS = st.sampled_from(["", " ", " ", "  ", "\t", "\n"])


@given(st.lists(st.tuples(_SEPS, _TOKENS), min_size=1, max_size=9), _SEPS)
@settings(max_examples=500, deadline=None)
def test_property_lalr_front_end_agrees_with_pigeon_replica(parts: list[tuple[str, str]], tail: str) -> None:
    text = "".join(sep + tok for sep, tok in parts) + tail
    fast = grammar.parse_fast(text)
    if fast is not None:
        assert peg.parse(text) == fast
