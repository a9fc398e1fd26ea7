"""The compiled ACL object: Nomad's ``acl.NewACL`` and the ``Allow*`` checks built on it.

Owns: merging a token's policies (per name: union of capabilities; ``deny`` anywhere clears the
set and wins for good), exact-over-glob lookup with Nomad's closest-glob rule, the ``*``
namespace sentinel, and the coarse ``agent``/``node``/``operator``/``quota``/``plugin`` levels
(most privilege wins, ``deny`` beats everything). Variables and sentinel checks are not
implemented; nothing in the allocations API needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from allocsvc.acl._glob import closest_glob
from allocsvc.acl.policy import CAP_DENY, POLICY_DENY, POLICY_LIST, POLICY_READ, POLICY_WRITE, Policy

ALL_NAMESPACES: Final = "*"

_Table = tuple[Mapping[str, frozenset[str]], tuple[tuple[str, frozenset[str]], ...]]
_EMPTY_TABLE: Final[_Table] = ({}, ())
_Check = Callable[[frozenset[str]], bool]


def _compile(entries: Iterable[tuple[str, Sequence[str]]]) -> _Table:
    """Merge ``(name, capabilities)`` entries in order, as NewACL does for each rule kind."""
    exact: dict[str, set[str]] = {}
    wildcard: dict[str, set[str]] = {}
    for name, caps in entries:
        current = (wildcard if "*" in name else exact).setdefault(name, set())
        if CAP_DENY in current:
            continue
        if CAP_DENY in caps:
            current.clear()
            current.add(CAP_DENY)
            continue
        current.update(caps)
    # The wildcard radix tree is walked in byte order; names are ASCII, so str order matches.
    return (
        {k: frozenset(v) for k, v in exact.items()},
        tuple((k, frozenset(wildcard[k])) for k in sorted(wildcard)),
    )


def _lookup(table: _Table, name: str) -> frozenset[str] | None:
    exact, wildcard = table
    found = exact.get(name)
    if found is not None:
        return found
    return closest_glob(wildcard, name)


def _max_privilege(a: str, b: str) -> str:
    for level in (POLICY_DENY, POLICY_WRITE, POLICY_READ, POLICY_LIST):
        if level in (a, b):
            return level
    return ""


class ACL:
    """A token's effective permissions. Build with ``management()`` or ``from_policies()``."""

    __slots__ = (
        "_host_volumes",
        "_namespaces",
        "_node_pools",
        "agent",
        "is_management",
        "node",
        "operator",
        "plugin",
        "quota",
    )

    def __init__(
        self,
        *,
        is_management: bool,
        namespaces: _Table = _EMPTY_TABLE,
        node_pools: _Table = _EMPTY_TABLE,
        host_volumes: _Table = _EMPTY_TABLE,
        agent: str = "",
        node: str = "",
        operator: str = "",
        quota: str = "",
        plugin: str = "",
    ) -> None:
        self.is_management = is_management
        self._namespaces = namespaces
        self._node_pools = node_pools
        self._host_volumes = host_volumes
        #: Merged coarse policy levels ("" when no policy mentions the block).
        self.agent = agent
        self.node = node
        self.operator = operator
        self.quota = quota
        self.plugin = plugin

    @classmethod
    def management(cls) -> ACL:
        """The ACL of a management token: everything is allowed."""
        return cls(is_management=True)

    @classmethod
    def from_policies(cls, policies: Iterable[Policy]) -> ACL:
        """Compile a token's policies (Nomad ``NewACL(false, policies)``)."""
        policies = list(policies)
        levels = {"agent": "", "node": "", "operator": "", "quota": "", "plugin": ""}
        for p in policies:
            for key, block in (
                ("agent", p.agent),
                ("node", p.node),
                ("operator", p.operator),
                ("quota", p.quota),
                ("plugin", p.plugin),
            ):
                if block is not None:
                    levels[key] = _max_privilege(levels[key], block.policy)
        return cls(
            is_management=False,
            namespaces=_compile((ns.name, ns.capability_list or ()) for p in policies for ns in p.namespaces),
            node_pools=_compile((r.name, r.capabilities or ()) for p in policies for r in p.node_pools),
            host_volumes=_compile((r.name, r.capabilities or ()) for p in policies for r in p.host_volumes),
            **levels,
        )

    # --- namespaces ---------------------------------------------------------------------------

    def namespace_capabilities(self, namespace: str) -> frozenset[str] | None:
        """The capability set of the rule that governs ``namespace`` (exact, else closest glob)."""
        return _lookup(self._namespaces, namespace)

    def allow_namespace_op(self, namespace: str, capability: str) -> bool:
        """Nomad ``AllowNamespaceOperation``; ``"*"`` asks whether any namespace rule grants it."""
        if self.is_management:
            return True
        if namespace == ALL_NAMESPACES and self._any_namespace(lambda caps: capability in caps):
            return True
        caps = _lookup(self._namespaces, namespace)
        return caps is not None and capability in caps

    def allow_namespace(self, namespace: str) -> bool:
        """Nomad ``AllowNamespace``: is any (non-deny) operation allowed in ``namespace``?"""
        if self.is_management:
            return True

        def usable(caps: frozenset[str]) -> bool:
            return bool(caps) and CAP_DENY not in caps

        if namespace == ALL_NAMESPACES and self._any_namespace(usable):
            return True
        caps = _lookup(self._namespaces, namespace)
        return caps is not None and usable(caps)

    def allowed_namespaces(self, capability: str, existing: Iterable[str]) -> set[str]:
        """The namespaces among ``existing`` in which ``capability`` is allowed (list with ``*``)."""
        if self.is_management:
            return set(existing)
        return {ns for ns in existing if self.allow_namespace_op(ns, capability)}

    def _any_namespace(self, check: _Check) -> bool:
        exact, wildcard = self._namespaces
        return any(check(caps) for caps in exact.values()) or any(check(caps) for _, caps in wildcard)

    # --- node pools and host volumes -----------------------------------------------------------

    def allow_node_pool_op(self, pool: str, capability: str) -> bool:
        """Nomad ``AllowNodePoolOperation``."""
        if self.is_management:
            return True
        caps = _lookup(self._node_pools, pool)
        return caps is not None and capability in caps

    def allow_host_volume_op(self, volume: str, capability: str) -> bool:
        """Nomad ``AllowHostVolumeOperation``."""
        if self.is_management:
            return True
        caps = _lookup(self._host_volumes, volume)
        return caps is not None and capability in caps

    # --- coarse blocks ---------------------------------------------------------------------------

    def _level_allows(self, level: str, *accepted: str) -> bool:
        return self.is_management or level in accepted

    def allow_node_read(self) -> bool:
        """``node`` policy is read or write."""
        return self._level_allows(self.node, POLICY_READ, POLICY_WRITE)

    def allow_node_write(self) -> bool:
        """``node`` policy is write."""
        return self._level_allows(self.node, POLICY_WRITE)

    def allow_agent_read(self) -> bool:
        """``agent`` policy is read or write."""
        return self._level_allows(self.agent, POLICY_READ, POLICY_WRITE)

    def allow_agent_write(self) -> bool:
        """``agent`` policy is write."""
        return self._level_allows(self.agent, POLICY_WRITE)

    def allow_operator_read(self) -> bool:
        """``operator`` policy is read or write."""
        return self._level_allows(self.operator, POLICY_READ, POLICY_WRITE)

    def allow_operator_write(self) -> bool:
        """``operator`` policy is write."""
        return self._level_allows(self.operator, POLICY_WRITE)

    def allow_quota_read(self) -> bool:
        """``quota`` policy is read or write."""
        return self._level_allows(self.quota, POLICY_READ, POLICY_WRITE)

    def allow_quota_write(self) -> bool:
        """``quota`` policy is write."""
        return self._level_allows(self.quota, POLICY_WRITE)

    def allow_plugin_read(self) -> bool:
        """``plugin`` policy is read (Nomad: write does not imply read here)."""
        return self._level_allows(self.plugin, POLICY_READ)

    def allow_plugin_list(self) -> bool:
        """``plugin`` policy is list or read."""
        return self._level_allows(self.plugin, POLICY_LIST, POLICY_READ)

    def __repr__(self) -> str:
        if self.is_management:
            return "ACL(management)"
        exact, wildcard = self._namespaces
        names = sorted(exact) + [k for k, _ in wildcard]
        return f"ACL(namespaces={names!r}, node={self.node!r}, agent={self.agent!r})"
