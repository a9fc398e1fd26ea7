"""Parse and validate Nomad ACL policy rules (HCL1 or JSON) exactly as ``nomad/acl/policy.go`` does.

Owns: the capability vocabularies and shorthand expansions, ``parse_policy`` (``acl.Parse``),
the frozen ``Policy`` record and ``policy_to_json`` (the ``RulesJSON`` shape of
``GET /v1/acl/policy/:name``). Every ``PolicyError.message`` is Nomad's text.

Sources: the policy.go text read for this module is the 2025 revision with strict parsing
(``Parse(rules, strict)``, ``ExtraKeysHCL``); the pinned HEAD (aa026cc, 2026) also has a
``sentinel`` block and operator ``keyring-*`` capabilities, known only from a line-numbered
description of that file. Those two additions are marked ``[HEAD, unverified text]`` below.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from allocsvc.acl._decode import GoStruct, HclDecodeError, decode_policy, go_sharp_v, remove_extra_key
from allocsvc.acl._hclast import HclSyntaxError, parse_rules
from allocsvc.gocompat import go_quote

# Shorthand policy values (acl.PolicyDeny/Read/List/Write/Scale).
POLICY_DENY: Final = "deny"
POLICY_READ: Final = "read"
POLICY_LIST: Final = "list"
POLICY_WRITE: Final = "write"
POLICY_SCALE: Final = "scale"

CAP_DENY: Final = "deny"
CAP_LIST_JOBS: Final = "list-jobs"
CAP_READ_JOB: Final = "read-job"
CAP_ALLOC_EXEC: Final = "alloc-exec"
CAP_ALLOC_NODE_EXEC: Final = "alloc-node-exec"
CAP_ALLOC_LIFECYCLE: Final = "alloc-lifecycle"
CAP_READ_LOGS: Final = "read-logs"
CAP_READ_FS: Final = "read-fs"

# isNamespaceCapabilityValid: every NamespaceCapability* constant, enterprise ones included.
NAMESPACE_CAPABILITIES: Final = frozenset(
    {
        "deny", "list-jobs", "parse-job", "read-job", "submit-job", "dispatch-job", "read-logs",
        "read-fs", "alloc-exec", "alloc-node-exec", "alloc-lifecycle", "sentinel-override",
        "csi-register-plugin", "csi-write-volume", "csi-read-volume", "csi-list-volume",
        "csi-mount-volume", "host-volume-create", "host-volume-register", "host-volume-read",
        "host-volume-write", "host-volume-delete", "list-scaling-policies", "read-scaling-policy",
        "read-job-scaling", "scale-job", "submit-recommendation", "register-job", "revert-job",
        "deregister-job", "purge-job", "evaluate-job", "plan-job", "tag-job-version", "stable-job",
        "fail-deployment", "pause-deployment", "promote-deployment", "unblock-deployment",
        "cancel-deployment", "set-alloc-health-deployment", "gc-allocation", "pause-allocation",
        "force-periodic-job", "delete-service-registration",
    }
)  # fmt: skip

_NS_READ: Final = (
    "list-jobs", "parse-job", "read-job", "csi-list-volume", "csi-read-volume", "read-job-scaling",
    "list-scaling-policies", "read-scaling-policy", "host-volume-read",
)  # fmt: skip
_NS_WRITE: Final = (
    *_NS_READ, "scale-job", "submit-job", "dispatch-job", "read-logs", "read-fs", "alloc-exec",
    "alloc-lifecycle", "csi-mount-volume", "csi-write-volume", "submit-recommendation",
    "host-volume-create",
)  # fmt: skip
_NS_SCALE: Final = (
    "list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job", "read-job",
    "submit-recommendation",
)  # fmt: skip

# expandNamespacePolicy: shorthand -> capabilities, in Nomad's order. `write` has no alloc-node-exec.
NAMESPACE_POLICY_EXPANSIONS: Final[dict[str, tuple[str, ...]]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: _NS_READ,
    POLICY_WRITE: _NS_WRITE,
    POLICY_SCALE: _NS_SCALE,
}

# expandNamespaceCapabilities: capabilities implied by fine-grained host volume capabilities.
_NS_IMPLIED: Final[dict[str, tuple[str, ...]]] = {
    "host-volume-write": (
        "host-volume-register",
        "host-volume-create",
        "host-volume-delete",
        "host-volume-read",
    ),
    "host-volume-register": ("host-volume-create", "host-volume-read"),
    "host-volume-create": ("host-volume-read",),
}

NODE_POOL_CAPABILITIES: Final = frozenset({"delete", "deny", "read", "write"})
_NODE_POOL_EXPANSIONS: Final[dict[str, tuple[str, ...]]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: ("read",),
    POLICY_WRITE: ("delete", "read", "write"),
}

HOST_VOLUME_CAPABILITIES: Final = frozenset({"deny", "mount-readonly", "mount-readwrite"})
_HOST_VOLUME_EXPANSIONS: Final[dict[str, tuple[str, ...]]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: ("mount-readonly",),
    POLICY_WRITE: ("mount-readonly", "mount-readwrite"),
}

VARIABLES_CAPABILITIES: Final = frozenset({"list", "read", "write", "destroy", "deny"})

# [HEAD, unverified text] keyring-* capabilities and their place in the expansions.
OPERATOR_CAPABILITIES: Final = frozenset(
    {"deny", "snapshot-save", "license-read", "keyring-rotate", "keyring-read", "keyring-delete"}
)
_OPERATOR_EXPANSIONS: Final[dict[str, tuple[str, ...]]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: ("license-read", "keyring-read"),
    POLICY_WRITE: ("snapshot-save", "license-read", "keyring-rotate", "keyring-read", "keyring-delete"),
}

# [HEAD, unverified text] the sentinel block.
SENTINEL_CAPABILITIES: Final = frozenset({"deny", "sentinel-read", "sentinel-submit", "sentinel-delete"})
_SENTINEL_EXPANSIONS: Final[dict[str, tuple[str, ...]]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: ("sentinel-read",),
    POLICY_WRITE: ("sentinel-read", "sentinel-submit", "sentinel-delete"),
}

# isPolicyValid (namespace, node_pool, host_volume, agent, node, operator, sentinel, quota).
_VALID_POLICIES: Final = frozenset({POLICY_DENY, POLICY_READ, POLICY_WRITE, POLICY_SCALE})
# PluginPolicy.isValid.
_VALID_PLUGIN_POLICIES: Final = frozenset({POLICY_DENY, POLICY_READ, POLICY_LIST, POLICY_WRITE})

_VALID_NAMESPACE: Final = re.compile(r"[a-zA-Z0-9\-*]{1,128}")
_VALID_NODE_POOL: Final = re.compile(r"[a-zA-Z0-9\-_*]{1,128}")
_VALID_VOLUME: Final = re.compile(r"[a-zA-Z0-9\-*]{1,128}")


class PolicyError(Exception):
    """``parse_policy`` rejected the rules; ``message`` is the exact text of Nomad's ``acl.Parse``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VariablesPathRule(msgspec.Struct, frozen=True, kw_only=True):
    """``path "<spec>" { capabilities = [...] }`` inside a namespace's ``variables`` block."""

    path_spec: str
    capabilities: tuple[str, ...] | None


class VariablesRule(msgspec.Struct, frozen=True, kw_only=True):
    """A namespace's ``variables`` block."""

    paths: tuple[VariablesPathRule, ...] | None


class NamespaceRule(msgspec.Struct, frozen=True, kw_only=True):
    """One ``namespace "<name>"`` block after shorthand expansion.

    ``capability_list`` is Nomad's list in Nomad's order (explicit, then shorthand, then implied;
    duplicates kept; ``None`` when Go's slice would be nil); ``capabilities`` is its set.
    """

    name: str
    policy: str
    capabilities: frozenset[str]
    capability_list: tuple[str, ...] | None = None
    variables: VariablesRule | None = None


class LabelledRule(msgspec.Struct, frozen=True, kw_only=True):
    """A ``node_pool "<name>"`` or ``host_volume "<name>"`` block after expansion."""

    name: str
    policy: str
    capabilities: tuple[str, ...] | None


class BlockRule(msgspec.Struct, frozen=True, kw_only=True):
    """An ``agent``, ``node``, ``quota`` or ``plugin`` block (a policy value only)."""

    policy: str


class CapabilityBlockRule(msgspec.Struct, frozen=True, kw_only=True):
    """An ``operator`` or ``sentinel`` block after expansion."""

    policy: str
    capabilities: tuple[str, ...] | None


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed, validated policy: Nomad's ``acl.Policy`` with ``Raw`` kept as ``raw``."""

    raw: str
    namespaces: tuple[NamespaceRule, ...] = ()
    node_pools: tuple[LabelledRule, ...] = ()
    host_volumes: tuple[LabelledRule, ...] = ()
    agent: BlockRule | None = None
    node: BlockRule | None = None
    operator: CapabilityBlockRule | None = None
    sentinel: CapabilityBlockRule | None = None
    quota: BlockRule | None = None
    plugin: BlockRule | None = None


def parse_policy(rules: str, *, strict: bool = True) -> Policy:
    """Parse and validate policy rules like Nomad's ``acl.Parse(rules, strict)``.

    ``strict`` (Nomad uses it when a policy is written) also rejects unknown or duplicated
    top-level keys. ``""`` is Nomad's hot path: a valid policy that grants nothing; text with no
    recognised block (whitespace or comments only, for instance) is ``Invalid policy: <raw>``.

    Raises:
        PolicyError: with Nomad's message.
    """
    if rules == "":
        return Policy(raw="")
    try:
        raw = decode_policy(parse_rules(rules))
    except (HclSyntaxError, HclDecodeError) as exc:
        raise PolicyError(f"Failed to parse ACL Policy: {exc}") from None
    if _is_empty(raw):
        raise PolicyError(f"Invalid policy: {rules}")

    namespaces = [_validate_namespace(raw, ns) for ns in raw.structs("Namespaces") or []]
    node_pools = [_validate_node_pool(raw, np) for np in raw.structs("NodePools") or []]
    host_volumes = [_validate_host_volume(raw, hv) for hv in raw.structs("HostVolumes") or []]

    extra = raw.strings("ExtraKeysHCL")
    if extra and strict:
        raise PolicyError(f"Invalid or duplicate policy keys: {', '.join(extra)}")

    for key, label in (("Agent", "agent"), ("Node", "node")):
        block = raw.ptr(key)
        if block is not None and block.string("Policy") not in _VALID_POLICIES:
            raise PolicyError(f"Invalid {label} policy: {go_sharp_v(block)}")
    operator = _validate_capability_block(
        raw.ptr("Operator"), "operator", OPERATOR_CAPABILITIES, _OPERATOR_EXPANSIONS
    )
    sentinel = _validate_capability_block(
        raw.ptr("Sentinel"), "sentinel", SENTINEL_CAPABILITIES, _SENTINEL_EXPANSIONS
    )
    quota = raw.ptr("Quota")
    if quota is not None and quota.string("Policy") not in _VALID_POLICIES:
        raise PolicyError(f"Invalid quota policy: {go_sharp_v(quota)}")
    plugin = raw.ptr("Plugin")
    if plugin is not None and plugin.string("Policy") not in _VALID_PLUGIN_POLICIES:
        raise PolicyError(f"Invalid plugin policy: {go_sharp_v(plugin)}")

    return Policy(
        raw=rules,
        namespaces=tuple(namespaces),
        node_pools=tuple(node_pools),
        host_volumes=tuple(host_volumes),
        agent=_block(raw.ptr("Agent")),
        node=_block(raw.ptr("Node")),
        operator=operator,
        sentinel=sentinel,
        quota=_block(quota),
        plugin=_block(plugin),
    )


def _is_empty(raw: GoStruct) -> bool:
    lists = ("Namespaces", "NodePools", "HostVolumes")
    ptrs = ("Agent", "Node", "Operator", "Sentinel", "Quota", "Plugin")
    return not any(raw.structs(k) for k in lists) and all(raw.ptr(k) is None for k in ptrs)


def _append(caps: list[str] | None, extra: tuple[str, ...]) -> list[str] | None:
    """Go ``append(caps, extra...)``: appending nothing to a nil slice stays nil."""
    if not extra:
        return caps
    return [*(caps or []), *extra]


def _validate_namespace(raw: GoStruct, ns: GoStruct) -> NamespaceRule:
    name, policy, caps = ns.string("Name"), ns.string("Policy"), ns.strings("Capabilities")
    if not _VALID_NAMESPACE.fullmatch(name):
        raise PolicyError(f"Invalid namespace name: {go_sharp_v(ns)}")
    if policy and policy not in _VALID_POLICIES:
        raise PolicyError(f"Invalid namespace policy: {go_sharp_v(ns)}")
    for cap in caps or []:
        if cap not in NAMESPACE_CAPABILITIES:
            raise PolicyError(f"Invalid namespace capability '{cap}': {go_sharp_v(ns)}")
    if policy:
        caps = _append(caps, NAMESPACE_POLICY_EXPANSIONS.get(policy, ()))
    caps = _append(caps, tuple(c for cap in caps or [] for c in _NS_IMPLIED.get(cap, ())))
    variables = _validate_variables(name, ns.ptr("Variables"))
    remove_extra_key(raw, name)
    return NamespaceRule(
        name=name,
        policy=policy,
        capabilities=frozenset(caps or ()),
        capability_list=None if caps is None else tuple(caps),
        variables=variables,
    )


def _validate_variables(namespace: str, variables: GoStruct | None) -> VariablesRule | None:
    if variables is None:
        return None
    paths = variables.structs("Paths")
    if not paths:
        raise PolicyError(f"Invalid variable policy: no variable paths in namespace {namespace}")
    rules = []
    for path in paths:
        spec, caps = path.string("PathSpec"), path.strings("Capabilities")
        if spec == "":
            raise PolicyError(f"Invalid missing variable path in namespace {namespace}")
        if spec.startswith("/"):
            # Nomad's format string really ends with a stray backtick.
            raise PolicyError(
                f"Invalid variable path {go_quote(spec)} in namespace {namespace}: cannot start with a leading '/'`"
            )
        for cap in caps or []:
            if cap not in VARIABLES_CAPABILITIES:
                raise PolicyError(f"Invalid variable capability '{cap}' in namespace {namespace}")
        rules.append(VariablesPathRule(path_spec=spec, capabilities=_expand_variables(caps)))
    return VariablesRule(paths=tuple(rules))


def _expand_variables(caps: list[str] | None) -> tuple[str, ...] | None:
    """expandVariablesCapabilities: ``deny`` wins outright; ``read`` implies ``list``."""
    if caps is None:
        return None
    if "deny" in caps:
        return ("deny",)
    if "read" in caps and "list" not in caps:
        return (*caps, POLICY_LIST)
    return tuple(caps)


def _validate_node_pool(raw: GoStruct, np: GoStruct) -> LabelledRule:
    name, policy, caps = np.string("Name"), np.string("Policy"), np.strings("Capabilities")
    if not _VALID_NODE_POOL.fullmatch(name):
        raise PolicyError(f"Invalid node pool name '{name}'")
    if policy and policy not in _VALID_POLICIES:
        raise PolicyError(f"Invalid node pool policy '{policy}' for '{name}'")
    for cap in caps or []:
        if cap not in NODE_POOL_CAPABILITIES:
            raise PolicyError(f"Invalid node pool capability '{cap}' for '{name}'")
    if policy:
        caps = _append(caps, _NODE_POOL_EXPANSIONS.get(policy, ()))
    remove_extra_key(raw, name)
    return LabelledRule(name=name, policy=policy, capabilities=None if caps is None else tuple(caps))


def _validate_host_volume(raw: GoStruct, hv: GoStruct) -> LabelledRule:
    name, policy, caps = hv.string("Name"), hv.string("Policy"), hv.strings("Capabilities")
    if not _VALID_VOLUME.fullmatch(name):
        raise PolicyError(f"Invalid host volume name: {go_sharp_v(hv)}")
    if policy and policy not in _VALID_POLICIES:
        raise PolicyError(f"Invalid host volume policy: {go_sharp_v(hv)}")
    for cap in caps or []:
        if cap not in HOST_VOLUME_CAPABILITIES:
            raise PolicyError(f"Invalid host volume capability '{cap}': {go_sharp_v(hv)}")
    if policy:
        caps = _append(caps, _HOST_VOLUME_EXPANSIONS.get(policy, ()))
    remove_extra_key(raw, name)
    return LabelledRule(name=name, policy=policy, capabilities=None if caps is None else tuple(caps))


def _validate_capability_block(
    block: GoStruct | None, label: str, valid: frozenset[str], expansions: dict[str, tuple[str, ...]]
) -> CapabilityBlockRule | None:
    if block is None:
        return None
    policy, caps = block.string("Policy"), block.strings("Capabilities")
    if policy and policy not in _VALID_POLICIES:
        raise PolicyError(f"Invalid {label} policy: {go_sharp_v(block)}")
    for cap in caps or []:
        if cap not in valid:
            raise PolicyError(f"Invalid {label} capability '{cap}'")
    if policy:
        caps = _append(caps, expansions.get(policy, ()))
    return CapabilityBlockRule(policy=policy, capabilities=None if caps is None else tuple(caps))


def _block(block: GoStruct | None) -> BlockRule | None:
    return None if block is None else BlockRule(policy=block.string("Policy"))


# --- RulesJSON -------------------------------------------------------------------------------------


def _caps_json(caps: tuple[str, ...] | None) -> list[str] | None:
    return None if caps is None else list(caps)


def _namespace_json(ns: NamespaceRule) -> dict[str, object]:
    variables: dict[str, object] | None = None
    if ns.variables is not None:
        paths = ns.variables.paths
        variables = {
            "Paths": None
            if paths is None
            else [{"PathSpec": p.path_spec, "Capabilities": _caps_json(p.capabilities)} for p in paths]
        }
    return {
        "Name": ns.name,
        "Policy": ns.policy,
        "Capabilities": _caps_json(ns.capability_list),
        "Variables": variables,
    }


def _labelled_json(rule: LabelledRule) -> dict[str, object]:
    return {"Name": rule.name, "Policy": rule.policy, "Capabilities": _caps_json(rule.capabilities)}


def _block_json(rule: BlockRule | None) -> dict[str, object] | None:
    return None if rule is None else {"Policy": rule.policy}


def _cap_block_json(rule: CapabilityBlockRule | None) -> dict[str, object] | None:
    return None if rule is None else {"Policy": rule.policy, "Capabilities": _caps_json(rule.capabilities)}


def policy_to_json(policy: Policy) -> dict[str, object]:
    """Nomad's ``acl.Policy`` as JSON (``RulesJSON``): Go field names, declaration order, nil as None.

    Capabilities are the expanded lists in Nomad's order, duplicates included.
    """
    return {
        "Namespaces": [_namespace_json(ns) for ns in policy.namespaces] or None,
        "NodePools": [_labelled_json(np) for np in policy.node_pools] or None,
        "HostVolumes": [_labelled_json(hv) for hv in policy.host_volumes] or None,
        "Agent": _block_json(policy.agent),
        "Node": _block_json(policy.node),
        "Operator": _cap_block_json(policy.operator),
        "Sentinel": _cap_block_json(policy.sentinel),
        "Quota": _block_json(policy.quota),
        "Plugin": _block_json(policy.plugin),
        "Raw": policy.raw,
        "ExtraKeysHCL": None,
    }
