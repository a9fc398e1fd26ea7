"""An independent reference model of Nomad's namespace ACL rules, shared by the property tests.

Deliberately simple: union per rule name with deny winning, exact name before glob, the glob with
the smallest character difference (ties: the greatest pattern). FACTS.md §5.4 to §5.6.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

SHORTHANDS: dict[str | None, set[str]] = {
    None: set(),
    "read": {"read-job", "list-jobs"},
    "write": {"read-job", "list-jobs", "alloc-exec", "alloc-lifecycle", "submit-job"},
    "scale": {"read-job"},
    "deny": {"deny"},
}
"""What each shorthand grants, restricted to the capabilities the tests query, plus deny."""

Rule = tuple[str, str | None, Sequence[str]]
"""(namespace rule name, shorthand policy or None, explicit capabilities)."""


def merged_rules(policy_set: Sequence[Sequence[Rule]]) -> dict[str, set[str]]:
    """Per rule name: the union of capabilities over all policies; deny anywhere wins."""
    merged: dict[str, set[str]] = {}
    for policy in policy_set:
        for name, shorthand, caps in policy:
            granted = set(caps) | SHORTHANDS[shorthand]
            current = merged.setdefault(name, set())
            if "deny" in current or "deny" in granted:
                merged[name] = {"deny"}
            else:
                current |= granted
    return merged


def governing_caps(merged: dict[str, set[str]], namespace: str) -> set[str] | None:
    """The capabilities of the rule that governs ``namespace``; None when no rule matches."""
    if namespace in merged:
        return merged[namespace]
    matches = [
        (len(namespace) - len(p) + p.count("*"), p) for p in merged if "*" in p and fnmatch.fnmatchcase(namespace, p)
    ]
    if not matches:
        return None
    best = min(d for d, _ in matches)
    return merged[max(p for d, p in matches if d == best)]
