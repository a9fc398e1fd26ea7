"""Property tests: the compiled ACL agrees with a small independent model of Nomad's rules.

The model works on a reduced vocabulary (six capabilities, four shorthands) and re-states the
rules from FACTS.md section 5: per-name union with deny winning, exact name before globs, the glob
with the smallest character difference (ties: the greatest pattern, which is what Nomad's stable
sort with a ``<=`` comparator yields for up to 20 matches), and ``*`` meaning "any rule".
"""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from allocsvc.acl import ACL, parse_policy, policy_to_json
from allocsvc.acl._glob import _go_slice_stable
from tests.acl_model import SHORTHANDS, Rule, governing_caps, merged_rules

CAPS = ["read-job", "list-jobs", "alloc-exec", "alloc-lifecycle", "alloc-node-exec", "deny"]
QUERY_CAPS = ["read-job", "list-jobs", "alloc-exec", "alloc-lifecycle", "alloc-node-exec", "submit-job"]

concrete_names = st.text(alphabet="ab-", min_size=1, max_size=4)
rule_names = st.text(alphabet="ab-*", min_size=1, max_size=4)
rules = st.tuples(rule_names, st.sampled_from(list(SHORTHANDS)), st.lists(st.sampled_from(CAPS), max_size=3))
policies = st.lists(st.lists(rules, min_size=1, max_size=4), max_size=4)


def render_hcl(policy: list[Rule]) -> str:
    blocks = []
    for name, shorthand, caps in policy:
        attrs = []
        if shorthand is not None:
            attrs.append(f'policy = "{shorthand}"')
        if caps:
            attrs.append("capabilities = [" + ", ".join(f'"{c}"' for c in caps) + "]")
        blocks.append(f'namespace "{name}" {{ {", ".join(attrs)} }}')
    return "\n".join(blocks)


def render_json(policy: list[Rule]) -> str:
    entries = []
    for name, shorthand, caps in policy:
        body: dict[str, object] = {}
        if shorthand is not None:
            body["policy"] = shorthand
        if caps:
            body["capabilities"] = caps
        entries.append({name: body})
    return json.dumps({"namespace": entries})


def model_allowed(policy_set: list[list[Rule]], capability: str, existing: list[str]) -> set[str]:
    merged = merged_rules(policy_set)
    return {ns for ns in existing if capability in (governing_caps(merged, ns) or set())}


@settings(max_examples=300, deadline=None)
@given(
    policy_set=policies, capability=st.sampled_from(QUERY_CAPS), existing=st.lists(concrete_names, max_size=8)
)
def test_allowed_namespaces_matches_model(
    policy_set: list[list[Rule]], capability: str, existing: list[str]
) -> None:
    acl = ACL.from_policies(parse_policy(render_hcl(p)) for p in policy_set)
    assert acl.allowed_namespaces(capability, existing) == model_allowed(policy_set, capability, existing)
    for ns in existing:
        assert acl.allow_namespace_op(ns, capability) == (ns in model_allowed(policy_set, capability, [ns]))


@settings(max_examples=200, deadline=None)
@given(policy_set=policies, capability=st.sampled_from(QUERY_CAPS))
def test_all_namespaces_sentinel_matches_model(policy_set: list[list[Rule]], capability: str) -> None:
    acl = ACL.from_policies(parse_policy(render_hcl(p)) for p in policy_set)
    merged = merged_rules(policy_set)
    assert acl.allow_namespace_op("*", capability) == any(capability in caps for caps in merged.values())


@settings(max_examples=100, deadline=None)
@given(
    policy_set=policies, capability=st.sampled_from(QUERY_CAPS), existing=st.lists(concrete_names, max_size=8)
)
def test_management_and_policy_order(
    policy_set: list[list[Rule]], capability: str, existing: list[str]
) -> None:
    assert ACL.management().allowed_namespaces(capability, existing) == set(existing)
    parsed = [parse_policy(render_hcl(p)) for p in policy_set]
    forward = ACL.from_policies(parsed).allowed_namespaces(capability, existing)
    backward = ACL.from_policies(reversed(parsed)).allowed_namespaces(capability, existing)
    assert forward == backward


@settings(max_examples=200, deadline=None)
@given(policy=st.lists(rules, min_size=1, max_size=5))
def test_json_and_hcl_forms_parse_identically(policy: list[Rule]) -> None:
    from_hcl = policy_to_json(parse_policy(render_hcl(policy)))
    from_json = policy_to_json(parse_policy(render_json(policy)))
    from_hcl.pop("Raw")
    from_json.pop("Raw")
    assert from_hcl == from_json


@given(keys=st.lists(st.integers(min_value=0, max_value=5), max_size=120))
def test_go_stable_sort_is_a_sort(keys: list[int]) -> None:
    data = list(enumerate(keys))
    _go_slice_stable(data, lambda d, i, j: d[i][1] <= d[j][1])
    assert sorted(data) == sorted(enumerate(keys))
    assert [k for _, k in data] == sorted(keys)
    if len(keys) <= 20:
        # Insertion sort with a non-strict comparator puts later equal elements first.
        assert data == sorted(enumerate(keys), key=lambda e: (e[1], -e[0]))
