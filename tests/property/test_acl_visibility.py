"""Property: what a token can see over HTTP is exactly what a reference model of Nomad's rules allows.

One real ACL-enabled server (shared by all examples) holds six namespaces with one running allocation each. Every example
writes random policies (shorthands, capabilities, globs, deny) and a token for them (or makes them
the ``anonymous`` policy and sends no token), then checks against an independent model
(FACTS §5.4-5.6): the ``*`` list is exactly the allocations of namespaces whose governing rule grants
``read-job``; per-namespace lists answer 403 exactly where the model says so; and every allocation
the token may not read answers byte-for-byte what a missing allocation answers.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.acl_fixtures import ACLAgent, as_token, open_acl_agent
from tests.acl_model import SHORTHANDS, Rule, governing_caps, merged_rules

NAMESPACES = ["default", "a", "b", "prod-1", "prod-2", "x"]
RULE_NAMES = [*NAMESPACES, "*", "prod-*", "a*", "*-1", "p*", "nosuch"]
CAPS = ["read-job", "list-jobs", "alloc-lifecycle", "submit-job", "deny"]

rules = st.tuples(st.sampled_from(RULE_NAMES), st.sampled_from(list(SHORTHANDS)), st.lists(st.sampled_from(CAPS), max_size=3).map(tuple))
policy_sets = st.lists(st.lists(rules, min_size=1, max_size=3), min_size=1, max_size=3)


def render(policy: list[Rule]) -> str:
    blocks = []
    for name, shorthand, caps in policy:
        attrs = [f'policy = "{shorthand}"'] if shorthand else []
        if caps:
            attrs.append("capabilities = [" + ", ".join(f'"{c}"' for c in caps) + "]")
        blocks.append(f'namespace "{name}" {{\n  ' + "\n  ".join(attrs) + "\n}")
    return "\n".join(blocks)


@dataclass
class World:
    agent: ACLAgent
    allocs: dict[str, str]  # namespace -> alloc ID
    counter: itertools.count[int]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.agent.client


@pytest.fixture
async def world(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[World]:
    async for agent in open_acl_agent(tmp_path / "data", nursery):
        await agent.bootstrap()
        allocs = {}
        for ns in NAMESPACES:
            if ns != "default":
                await agent.namespace(ns)
            (allocs[ns],) = await agent.job(f"job-{ns}", ns)
        yield World(agent, allocs, itertools.count())


async def caller_for(world: World, policy_set: list[list[Rule]], anonymous: bool) -> tuple[dict[str, str], list[list[Rule]]]:
    """Write the policies and return the caller's headers and the policies that govern it."""
    n = next(world.counter)
    if anonymous:
        await world.agent.policy("anonymous", render(policy_set[0]))
        return {}, policy_set[:1]
    names = []
    for i, policy in enumerate(policy_set):
        names.append(f"p{n}-{i}")
        await world.agent.policy(names[-1], render(policy))
    token = await world.agent.token(*names, name=f"t{n}")
    return as_token(token["SecretID"]), policy_set


async def test_visibility_matches_reference_model(world: World) -> None:
    """Hypothesis drives examples from a worker thread; each example runs on the server's trio loop."""

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(policy_set=policy_sets, anonymous=st.booleans())
    def examples(policy_set: list[list[Rule]], anonymous: bool) -> None:
        trio.from_thread.run(check_example, world, policy_set, anonymous)

    await trio.to_thread.run_sync(examples)


async def check_example(world: World, policy_set: list[list[Rule]], anonymous: bool) -> None:
    headers, governing = await caller_for(world, policy_set, anonymous)
    merged = merged_rules(governing)
    readable = {ns for ns in NAMESPACES if "read-job" in (governing_caps(merged, ns) or set())}
    any_read = any("read-job" in caps for caps in merged.values())
    c = world.client

    r = await c.get("/v1/allocations", params={"namespace": "*"}, headers=headers)
    if any_read:
        assert r.status_code == 200, r.text
        assert {a["ID"] for a in r.json()} == {world.allocs[ns] for ns in readable}
    else:
        assert (r.status_code, r.text) == (403, "Permission denied")

    for ns in NAMESPACES:
        r = await c.get("/v1/allocations", params={"namespace": ns}, headers=headers)
        if ns in readable:
            assert [a["ID"] for a in r.json()] == [world.allocs[ns]]
        else:
            assert (r.status_code, r.text) == (403, "Permission denied")

    ghost = str(uuid.uuid4())
    missing = await c.get(f"/v1/allocation/{ghost}", headers=headers)
    missing_signal = await c.post(f"/v1/client/allocation/{ghost}/signal", json={"Signal": "SIGHUP"}, headers=headers)
    for ns, alloc_id in world.allocs.items():
        r = await c.get(f"/v1/allocation/{alloc_id}", headers=headers)
        if ns in readable:
            assert r.status_code == 200
            assert r.json()["ID"] == alloc_id
            continue
        assert (r.status_code, r.text) == (missing.status_code, missing.text) == (404, "alloc not found")
        assert r.headers["X-Nomad-Index"] == missing.headers["X-Nomad-Index"]
        if "alloc-lifecycle" not in (governing_caps(merged, ns) or set()):
            s = await c.post(f"/v1/client/allocation/{alloc_id}/signal", json={"Signal": "SIGHUP"}, headers=headers)
            assert (s.status_code, s.text.replace(alloc_id, ghost)) == (missing_signal.status_code, missing_signal.text)
