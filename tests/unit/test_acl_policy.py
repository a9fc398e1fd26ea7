"""ACL policy parsing, validation and authorization, checked against Nomad's own behaviour.

Expected strings and expansions come from ``nomad/acl/policy.go`` and ``acl/policy_test.go``.
"""

from __future__ import annotations

import pytest

from allocsvc.acl import (
    ACL,
    NAMESPACE_CAPABILITIES,
    NAMESPACE_POLICY_EXPANSIONS,
    Policy,
    PolicyError,
    _hclast,
    parse_policy,
    policy_to_json,
)
from allocsvc.acl._glob import _go_slice_stable, closest_glob, go_glob

READ = [
    "list-jobs", "parse-job", "read-job", "csi-list-volume", "csi-read-volume", "read-job-scaling",
    "list-scaling-policies", "read-scaling-policy", "host-volume-read",
]  # fmt: skip
WRITE = [
    *READ, "scale-job", "submit-job", "dispatch-job", "read-logs", "read-fs", "alloc-exec",
    "alloc-lifecycle", "csi-mount-volume", "csi-write-volume", "submit-recommendation",
    "host-volume-create", "host-volume-read",
]  # fmt: skip
SCALE = [
    "list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job", "read-job",
    "submit-recommendation",
]  # fmt: skip


def caps_of(rules: str, index: int = 0) -> list[str] | None:
    ns = parse_policy(rules).namespaces[index]
    return None if ns.capability_list is None else list(ns.capability_list)


def error_of(rules: str, *, strict: bool = True) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(rules, strict=strict)
    return info.value.message


def acl_of(*rules: str) -> ACL:
    return ACL.from_policies(parse_policy(r) for r in rules)


# --- shorthand expansion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("read", READ), ("write", WRITE), ("scale", SCALE), ("deny", ["deny"])],
)
def test_shorthand_expands_in_nomad_order(policy: str, expected: list[str]) -> None:
    assert caps_of(f'namespace "default" {{ policy = "{policy}" }}') == expected


def test_write_does_not_include_alloc_node_exec() -> None:
    ns = parse_policy('namespace "default" { policy = "write" }').namespaces[0]
    assert "alloc-node-exec" not in ns.capabilities
    assert "alloc-exec" in ns.capabilities
    assert "alloc-node-exec" not in NAMESPACE_POLICY_EXPANSIONS["write"]


def test_explicit_capabilities_come_first_then_shorthand() -> None:
    rules = 'namespace "default" {\n\tpolicy = "read"\n\tcapabilities = ["alloc-lifecycle"]\n}'
    ns = parse_policy(rules).namespaces[0]
    assert list(ns.capability_list or ()) == ["alloc-lifecycle", *READ]
    assert ns.capabilities == frozenset(["alloc-lifecycle", *READ])
    assert ns.policy == "read"


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        ("host-volume-create", ["host-volume-create", "host-volume-read"]),
        ("host-volume-register", ["host-volume-register", "host-volume-create", "host-volume-read"]),
        (
            "host-volume-write",
            [
                "host-volume-write",
                "host-volume-register",
                "host-volume-create",
                "host-volume-delete",
                "host-volume-read",
            ],
        ),
    ],
)
def test_host_volume_capabilities_imply_others(cap: str, expected: list[str]) -> None:
    assert caps_of(f'namespace "default" {{ capabilities = ["{cap}"] }}') == expected


def test_capabilities_only_block_keeps_policy_empty() -> None:
    ns = parse_policy('namespace "secret" { capabilities = ["deny", "read-logs"] }').namespaces[0]
    assert ns.policy == ""
    assert ns.capability_list == ("deny", "read-logs")


def test_block_without_capabilities_is_nil_not_empty() -> None:
    assert caps_of('namespace "x" {}') is None
    assert caps_of('namespace "x" { capabilities = [] }') == []


def test_namespace_capability_vocabulary() -> None:
    assert len(NAMESPACE_CAPABILITIES) == 45
    for expansion in NAMESPACE_POLICY_EXPANSIONS.values():
        assert set(expansion) <= NAMESPACE_CAPABILITIES
    assert {
        "alloc-node-exec",
        "sentinel-override",
        "submit-recommendation",
        "pause-allocation",
    } <= NAMESPACE_CAPABILITIES
    assert "list" not in NAMESPACE_CAPABILITIES


def test_node_pool_host_volume_and_operator_expansions() -> None:
    p = parse_policy(
        'node_pool "dev" { policy = "write" }\n'
        'node_pool "prod" { policy = "read"\n capabilities = ["write"] }\n'
        'host_volume "staging-*" { policy = "write" }\n'
        'operator { policy = "read" }\n'
    )
    assert [np.capabilities for np in p.node_pools] == [("delete", "read", "write"), ("write", "read")]
    assert p.host_volumes[0].capabilities == ("mount-readonly", "mount-readwrite")
    assert p.operator is not None
    assert p.operator.capabilities == ("license-read", "keyring-read")


def test_variables_read_implies_list_and_deny_wins() -> None:
    p = parse_policy(
        'namespace "apps" {\n variables {\n'
        '  path "a" { capabilities = ["write"] }\n'
        '  path "b" { capabilities = ["read"] }\n'
        '  path "c" { capabilities = ["read", "deny"] }\n }\n}'
    )
    variables = p.namespaces[0].variables
    assert variables is not None
    assert variables.paths is not None
    assert [(v.path_spec, v.capabilities) for v in variables.paths] == [
        ("a", ("write",)),
        ("b", ("read", "list")),
        ("c", ("deny",)),
    ]


# --- valid syntax forms ----------------------------------------------------------------------------

NOMAD_FULL_HCL = """
namespace "default" {
    policy = "read"
}
namespace "other" {
    policy = "write"
}
namespace "secret" {
    capabilities = ["deny", "read-logs"]
}
namespace "autoscaler" {
    policy = "scale"
}
host_volume "production-tls-*" {
    capabilities = ["mount-readonly"]
}
host_volume "staging-tls-*" {
    policy = "write"
}
node_pool "prod" {
    capabilities = ["read"]
}
node_pool "dev" {
    policy = "write"
}
agent {
    policy = "read"
}
node {
    policy = "write"
}
operator {
    policy = "deny"
}
quota {
    policy = "read"
}
plugin {
    policy = "read"
}
"""

# The same policy in JSON, with the trailing commas Nomad's own test uses (HCL1 accepts them).
NOMAD_FULL_JSON = """
{
    "namespace": [
        {"default": {"policy": "read"},},
        {"other": {"policy": "write"},},
        {"secret": {"capabilities": ["deny", "read-logs"]}},
        {"autoscaler": {"policy": "scale"},},
    ],
    "host_volume": [
        {"production-tls-*": {"capabilities": ["mount-readonly"]}},
        {"staging-tls-*": {"policy": "write"}}
    ],
    "node_pool": [
        {"prod": {"capabilities": ["read"]}},
        {"dev": {"policy": "write"}}
    ],
    "agent": {"policy": "read"},
    "node": {"policy": "write"},
    "operator": {"policy": "deny"},
    "quota": {"policy": "read"},
    "plugin": {"policy": "read"}
}
"""


def without_raw(p: Policy) -> dict[str, object]:
    out = policy_to_json(p)
    del out["Raw"]
    return out


def test_full_hcl_policy() -> None:
    p = parse_policy(NOMAD_FULL_HCL)
    assert [ns.name for ns in p.namespaces] == ["default", "other", "secret", "autoscaler"]
    assert list(p.namespaces[1].capability_list or ()) == WRITE
    assert [hv.name for hv in p.host_volumes] == ["production-tls-*", "staging-tls-*"]
    assert p.agent is not None
    assert p.agent.policy == "read"
    assert p.node is not None
    assert p.node.policy == "write"
    assert p.operator is not None
    assert p.operator.capabilities == ("deny",)
    assert p.quota is not None
    assert p.plugin is not None
    assert p.raw == NOMAD_FULL_HCL


def test_json_syntax_matches_hcl() -> None:
    assert without_raw(parse_policy(NOMAD_FULL_JSON)) == without_raw(parse_policy(NOMAD_FULL_HCL))


def test_json_object_form_and_list_form_agree() -> None:
    as_object = '{"namespace": {"default": {"policy": "read", "capabilities": ["alloc-lifecycle"]}}}'
    as_list = '{"namespace": [{"default": {"policy": "read", "capabilities": ["alloc-lifecycle"]}}]}'
    hcl = 'namespace "default" { policy = "read"\n capabilities = ["alloc-lifecycle"] }'
    assert (
        without_raw(parse_policy(as_object))
        == without_raw(parse_policy(as_list))
        == without_raw(parse_policy(hcl))
    )


def test_hcl_one_line_form_with_commas_and_comments() -> None:
    rules = (
        "# hash comment\n"
        "// slash comment\n"
        "/* block\n comment */\n"
        'namespace "default" { policy = "read", capabilities = ["alloc-lifecycle", "alloc-exec",] }  # trailing\n'
        'node { policy = "read" }\n'
    )
    p = parse_policy(rules)
    assert p.namespaces[0].capability_list == ("alloc-lifecycle", "alloc-exec", *READ)
    assert p.node is not None
    assert p.node.policy == "read"


def test_node_only_policy_is_valid() -> None:
    p = parse_policy('node { policy = "write" }')
    assert p.namespaces == ()
    assert p.node is not None
    assert p.node.policy == "write"


def test_keys_match_case_insensitively_like_hcl1() -> None:
    p = parse_policy('Namespace "x" { POLICY = "read" }')
    assert p.namespaces[0].name == "x"
    assert p.namespaces[0].policy == "read"


def test_empty_rules_are_an_empty_policy() -> None:
    # Nomad's Parse hot path: "" is accepted and grants nothing.
    p = parse_policy("")
    assert p == Policy(raw="")
    assert not ACL.from_policies([p]).allow_namespace_op("default", "read-job")


def test_parser_instance_is_reused_across_calls_and_errors() -> None:
    parser = _hclast._PARSER
    for i in range(5):
        assert parse_policy(f'namespace "ns{i}" {{ policy = "read" }}').namespaces[0].name == f"ns{i}"
        with pytest.raises(PolicyError):
            parse_policy('namespace "broken" {')
    assert _hclast._PARSER is parser
    assert parse_policy('agent { policy = "write" }').agent is not None


# --- duplicates -------------------------------------------------------------------------------------


def test_duplicate_labelled_blocks_stay_separate_and_union() -> None:
    p = parse_policy('namespace "a" { policy = "read" }\nnamespace "a" { capabilities = ["alloc-exec"] }')
    assert [ns.name for ns in p.namespaces] == ["a", "a"]
    caps = ACL.from_policies([p]).namespace_capabilities("a")
    assert caps == frozenset([*READ, "alloc-exec"])


def test_duplicate_labelled_block_with_deny_denies() -> None:
    acl = acl_of('namespace "a" { policy = "write" }\nnamespace "a" { policy = "deny" }')
    assert acl.namespace_capabilities("a") == frozenset(["deny"])
    assert not acl.allow_namespace_op("a", "read-job")


def test_duplicate_unlabelled_blocks_are_rejected_in_strict_mode() -> None:
    rules = 'node { policy = "read" }\nnode { policy = "write" }'
    assert error_of(rules) == "Invalid or duplicate policy keys: node"
    lenient = parse_policy(rules, strict=False)
    assert lenient.node is not None
    assert lenient.node.policy == "write"


def test_repeated_capabilities_attribute_concatenates() -> None:
    assert caps_of('namespace "x" {\n capabilities = ["read-job"]\n capabilities = ["alloc-exec"]\n}') == [
        "read-job",
        "alloc-exec",
    ]


def test_nomad_extra_keys_case() -> None:
    rules = """
namespace "foo" {
  policy = "write"
  variables {
    path "project/*" {
      capabilities = ["read", "write"]
    }
  }
}
namespace "bar" {
  policy = "write"
  variables {
    path "system/*" {
      capabilities = ["read", "write"]
    }
  }
}
bogus {
  policy = "read"
}
anotherbogus {
  policy = "write"
}
node {
  policy = "read"
}
node {
  policy = "write"
}
agent {
  policy = "read"
}
agent {
  policy = "write"
}
operator {
  policy = "read"
}
operator {
  policy = "write"
}
quota {
  policy = "read"
}
quota {
  policy = "write"
}
host_volume "volume-read-only" {
  policy = "read"
}
host_volume "volume-read-write" {
  policy = "write"
}
plugin {
  policy = "read"
}
plugin {
  policy = "write"
}
node_pool "pool-read-only" {
  policy = "read"
}
node_pool "pool-read-write" {
  policy = "write"
}
"""
    assert (
        error_of(rules)
        == "Invalid or duplicate policy keys: agent, anotherbogus, bogus, node, operator, plugin, quota"
    )
    assert parse_policy(rules, strict=False).namespaces[1].name == "bar"


# --- error strings ------------------------------------------------------------------------------------

NS_NIL = "Capabilities:[]string(nil), Variables:(*acl.VariablesPolicy)(nil)"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            'namespace "default" { policy = "foo" }',
            f'Invalid namespace policy: &acl.NamespacePolicy{{Name:"default", Policy:"foo", {NS_NIL}}}',
        ),
        (
            'namespace "default" { policy = "list" }',
            f'Invalid namespace policy: &acl.NamespacePolicy{{Name:"default", Policy:"list", {NS_NIL}}}',
        ),
        (
            'namespace "default" { capabilities = ["deny", "foo"] }',
            'Invalid namespace capability \'foo\': &acl.NamespacePolicy{Name:"default", Policy:"", '
            'Capabilities:[]string{"deny", "foo"}, Variables:(*acl.VariablesPolicy)(nil)}',
        ),
        (
            'namespace "has a space" { policy = "read" }',
            f'Invalid namespace name: &acl.NamespacePolicy{{Name:"has a space", Policy:"read", {NS_NIL}}}',
        ),
        (
            'namespace { policy = "read" }',
            f'Invalid namespace name: &acl.NamespacePolicy{{Name:"", Policy:"read", {NS_NIL}}}',
        ),
        (
            '{"namespace": [{"": {"policy": "read"}}]}',
            f'Invalid namespace name: &acl.NamespacePolicy{{Name:"", Policy:"read", {NS_NIL}}}',
        ),
        (
            f'namespace "{"a" * 129}" {{}}',
            f'Invalid namespace name: &acl.NamespacePolicy{{Name:"{"a" * 129}", Policy:"", {NS_NIL}}}',
        ),
        (
            "namespace {}",
            "Failed to parse ACL Policy: invalid acl policy: runtime error: index out of range [0] with length 0",
        ),
        (
            '{"Name": "my-policy", "Description": "This is a great policy", "Rules": "anything"}',
            'Invalid policy: {"Name": "my-policy", "Description": "This is a great policy", "Rules": "anything"}',
        ),
        ("   \n", "Invalid policy:    \n"),
        ("# just a comment\n", "Invalid policy: # just a comment\n"),
        ('agent { policy = "foo" }', 'Invalid agent policy: &acl.AgentPolicy{Policy:"foo"}'),
        ("agent {}", 'Invalid agent policy: &acl.AgentPolicy{Policy:""}'),
        ('node { policy = "list" }', 'Invalid node policy: &acl.NodePolicy{Policy:"list"}'),
        (
            'operator { policy = "foo" }',
            'Invalid operator policy: &acl.OperatorPolicy{Policy:"foo", Capabilities:[]string(nil)}',
        ),
        ('operator { capabilities = ["bogus"] }', "Invalid operator capability 'bogus'"),
        ('quota { policy = "foo" }', 'Invalid quota policy: &acl.QuotaPolicy{Policy:"foo"}'),
        ('plugin { policy = "reader" }', 'Invalid plugin policy: &acl.PluginPolicy{Policy:"reader"}'),
        ('plugin { policy = "scale" }', 'Invalid plugin policy: &acl.PluginPolicy{Policy:"scale"}'),
        ('node_pool "pool%" {}', "Invalid node pool name 'pool%'"),
        ('node_pool { policy = "read" }', "Invalid node pool name ''"),
        ('node_pool "p" { policy = "foo" }', "Invalid node pool policy 'foo' for 'p'"),
        (
            'node_pool "my-pool" { capabilities = ["read", "invalid"] }',
            "Invalid node pool capability 'invalid' for 'my-pool'",
        ),
        (
            'host_volume "volume has a space" { capabilities = ["mount-readwrite"] }',
            'Invalid host volume name: &acl.HostVolumePolicy{Name:"volume has a space", Policy:"", '
            'Capabilities:[]string{"mount-readwrite"}}',
        ),
        (
            'host_volume "v" { policy = "foo" }',
            'Invalid host volume policy: &acl.HostVolumePolicy{Name:"v", Policy:"foo", Capabilities:[]string(nil)}',
        ),
        (
            'host_volume "v" { capabilities = ["mount"] }',
            'Invalid host volume capability \'mount\': &acl.HostVolumePolicy{Name:"v", Policy:"", '
            'Capabilities:[]string{"mount"}}',
        ),
        (
            'namespace "dev" { variables "*" { capabilities = ["read", "write"] } }',
            "Invalid variable policy: no variable paths in namespace dev",
        ),
        (
            'namespace "dev" { variables { path "/nomad/job" { capabilities = ["read"] } } }',
            "Invalid variable path \"/nomad/job\" in namespace dev: cannot start with a leading '/'`",
        ),
        (
            'namespace "dev" {\n policy = "read"\n variables {\n path {}\n path "nomad/jobs/example" { capabilities = ["read"] }\n }\n}',
            "Invalid missing variable path in namespace dev",
        ),
        (
            'namespace "dev" { variables { path "x" { capabilities = ["bogus"] } } }',
            "Invalid variable capability 'bogus' in namespace dev",
        ),
        ('bogus { policy = "read" }', 'Invalid policy: bogus { policy = "read" }'),
        ('namespace "a" {}\nbogus { policy = "read" }', "Invalid or duplicate policy keys: bogus"),
    ],
)
def test_error_messages(rules: str, message: str) -> None:
    assert error_of(rules) == message


@pytest.mark.parametrize(
    "rules",
    ['namespace "default" {', "policy = read", 'namespace "a" { policy = read }', '{"namespace": ', "= ="],
)
def test_syntax_errors_have_nomads_prefix(rules: str) -> None:
    assert error_of(rules).startswith("Failed to parse ACL Policy: ")


def test_name_escaping_in_go_syntax() -> None:
    message = error_of('{"namespace": [{"a\\"b\\n": {"policy": "read"}}]}')
    assert message.startswith('Invalid namespace name: &acl.NamespacePolicy{Name:"a\\"b\\n", ')


def test_policy_error_is_an_exception_with_message() -> None:
    err = PolicyError("x")
    assert str(err) == "x"
    assert err.message == "x"


# --- RulesJSON --------------------------------------------------------------------------------------


def test_policy_to_json_shape() -> None:
    rules = 'namespace "default" { policy = "read"\n capabilities = ["alloc-lifecycle"] }\nnode { policy = "read" }'
    assert policy_to_json(parse_policy(rules)) == {
        "Namespaces": [
            {
                "Name": "default",
                "Policy": "read",
                "Capabilities": ["alloc-lifecycle", *READ],
                "Variables": None,
            }
        ],
        "NodePools": None,
        "HostVolumes": None,
        "Agent": None,
        "Node": {"Policy": "read"},
        "Operator": None,
        "Sentinel": None,
        "Quota": None,
        "Plugin": None,
        "Raw": rules,
        "ExtraKeysHCL": None,
    }


def test_policy_to_json_keeps_write_duplicate_host_volume_read() -> None:
    out = policy_to_json(parse_policy('namespace "x" { policy = "write" }'))
    namespaces = out["Namespaces"]
    assert isinstance(namespaces, list)
    assert namespaces[0]["Capabilities"] == WRITE


# --- ACL: merging and precedence ----------------------------------------------------------------


def test_union_across_policies() -> None:
    acl = acl_of(
        'namespace "default" { policy = "read" }', 'namespace "default" { capabilities = ["alloc-exec"] }'
    )
    assert acl.allow_namespace_op("default", "read-job")
    assert acl.allow_namespace_op("default", "alloc-exec")
    assert not acl.allow_namespace_op("default", "alloc-lifecycle")


@pytest.mark.parametrize("deny_first", [True, False])
def test_deny_in_any_policy_wins(deny_first: bool) -> None:
    deny = 'namespace "default" { policy = "deny" }'
    write = 'namespace "default" { policy = "write" }'
    acl = acl_of(deny, write) if deny_first else acl_of(write, deny)
    assert acl.namespace_capabilities("default") == frozenset(["deny"])
    assert not acl.allow_namespace_op("default", "read-job")
    assert not acl.allow_namespace("default")


def test_deny_capability_mixed_with_others_is_still_deny() -> None:
    acl = acl_of('namespace "secret" { capabilities = ["read-logs", "deny"] }')
    assert acl.namespace_capabilities("secret") == frozenset(["deny"])


def test_exact_name_beats_glob() -> None:
    acl = acl_of('namespace "*" { policy = "write" }\nnamespace "prod" { policy = "read" }')
    assert not acl.allow_namespace_op("prod", "alloc-lifecycle")
    assert acl.allow_namespace_op("prod", "read-job")
    assert acl.allow_namespace_op("dev", "alloc-lifecycle")


def test_empty_exact_block_shadows_glob() -> None:
    acl = acl_of('namespace "*" { policy = "write" }\nnamespace "default" {}')
    assert acl.namespace_capabilities("default") == frozenset()
    assert not acl.allow_namespace_op("default", "read-job")
    assert not acl.allow_namespace("default")


def test_closest_glob_wins() -> None:
    acl = acl_of(
        'namespace "*" { policy = "read" }\n'
        'namespace "prod-*" { policy = "write" }\n'
        'namespace "prod-api-*" { policy = "deny" }'
    )
    assert acl.allow_namespace_op("prod-web", "alloc-exec")
    assert not acl.allow_namespace_op("prod-api-1", "read-job")
    assert not acl.allow_namespace_op("staging", "alloc-exec")
    assert acl.allow_namespace_op("staging", "read-job")


def test_glob_tie_goes_to_lexicographically_last_pattern() -> None:
    # "a*" and "*b" both match "ab" with difference 1; Nomad's stable sort with a <= comparator
    # leaves the later pattern in radix order ("a*" after "*b") in front.
    acl = acl_of(
        'namespace "a*" { capabilities = ["read-job"] }\nnamespace "*b" { capabilities = ["alloc-exec"] }'
    )
    assert acl.namespace_capabilities("ab") == frozenset(["read-job"])


def test_no_matching_rule_denies() -> None:
    acl = acl_of('namespace "prod-*" { policy = "write" }')
    assert acl.namespace_capabilities("dev") is None
    assert not acl.allow_namespace_op("dev", "read-job")


def test_all_namespaces_sentinel() -> None:
    acl = acl_of('namespace "ns1" { policy = "read" }\nnamespace "ns2" { capabilities = ["alloc-exec"] }')
    assert acl.allow_namespace_op("*", "read-job")
    assert acl.allow_namespace_op("*", "alloc-exec")
    assert not acl.allow_namespace_op("*", "alloc-lifecycle")
    assert acl.allow_namespace("*")
    only_deny = acl_of('namespace "ns1" { policy = "deny" }')
    assert not only_deny.allow_namespace("*")
    assert not only_deny.allow_namespace_op("*", "read-job")


def test_all_namespaces_sentinel_sees_glob_rules() -> None:
    acl = acl_of('namespace "team-*" { policy = "read" }')
    assert acl.allow_namespace_op("*", "read-job")


def test_allowed_namespaces_for_list() -> None:
    existing = ["default", "ns1", "ns2", "prod-a", "prod-b"]
    acl = acl_of(
        'namespace "ns1" { policy = "read" }\nnamespace "prod-*" { policy = "read" }\nnamespace "prod-b" {}'
    )
    assert acl.allowed_namespaces("read-job", existing) == {"ns1", "prod-a"}
    assert ACL.management().allowed_namespaces("read-job", existing) == set(existing)
    every_cap_but_read = acl_of(
        'namespace "ns1" { capabilities = ["list-jobs", "alloc-exec", "alloc-lifecycle", "submit-job"] }'
    )
    assert not every_cap_but_read.allow_namespace_op("*", "read-job")
    assert every_cap_but_read.allowed_namespaces("read-job", existing) == set()


def test_management_allows_everything() -> None:
    acl = ACL.management()
    assert acl.is_management
    assert acl.allow_namespace_op("anything", "alloc-node-exec")
    assert acl.allow_namespace_op("*", "read-job")
    assert acl.allow_node_write()
    assert acl.allow_agent_write()
    assert acl.allow_plugin_read()
    assert acl.allow_node_pool_op("x", "write")
    assert acl.allow_host_volume_op("x", "mount-readwrite")


def test_no_policies_allow_nothing() -> None:
    acl = ACL.from_policies([])
    assert not acl.is_management
    assert not acl.allow_namespace_op("default", "read-job")
    assert not acl.allow_namespace_op("*", "read-job")
    assert not acl.allow_node_read()


def test_coarse_levels_take_most_privilege_with_deny_winning() -> None:
    assert acl_of('node { policy = "read" }', 'node { policy = "write" }').allow_node_write()
    denied = acl_of('node { policy = "write" }', 'node { policy = "deny" }')
    assert denied.node == "deny"
    assert not denied.allow_node_read()
    reader = acl_of('node { policy = "read" }', 'agent { policy = "read" }')
    assert reader.allow_node_read()
    assert not reader.allow_node_write()
    assert reader.allow_agent_read()
    plugin_write = acl_of('plugin { policy = "write" }')
    assert not plugin_write.allow_plugin_read()  # Nomad's AllowPluginRead only accepts "read"
    assert acl_of('plugin { policy = "list" }').allow_plugin_list()


def test_node_pool_and_host_volume_lookup() -> None:
    acl = acl_of('node_pool "prod-*" { policy = "read" }\nhost_volume "tls-*" { policy = "write" }')
    assert acl.allow_node_pool_op("prod-1", "read")
    assert not acl.allow_node_pool_op("prod-1", "write")
    assert acl.allow_host_volume_op("tls-a", "mount-readwrite")
    assert not acl.allow_host_volume_op("other", "mount-readonly")


# --- glob helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("prod-*", "prod-", True),
        ("prod-*", "prod", False),
        ("*-api", "prod-api", True),
        ("a*a", "a", False),
        ("a*b*c", "abxbc", True),
        ("a*b*c", "acb", False),
        ("**", "x", True),
        ("exact", "exact", True),
        ("exact", "exactly", False),
    ],
)
def test_go_glob(pattern: str, subject: str, expected: bool) -> None:
    assert go_glob(pattern, subject) is expected


def test_go_slice_stable_reverses_ties_in_small_inputs() -> None:
    data = [(1, "a"), (0, "b"), (1, "c"), (0, "d")]
    _go_slice_stable(data, lambda d, i, j: d[i][0] <= d[j][0])
    assert data == [(0, "d"), (0, "b"), (1, "c"), (1, "a")]


def test_closest_glob_single_and_none() -> None:
    assert closest_glob([("a*", 1)], "ab") == 1
    assert closest_glob([("a*", 1)], "ba") is None
