"""Nomad's ACL matrix tests, ported to black-box HTTP against a real server with ``acl_enabled=True``.

Sources: FACTS §9.3 (TestAllocEndpoint_List_AllNamespaces_ACL_OSS, GetAlloc_ACL, Stop_ACL), §9.4
(TestAllocations_Signal_ACL, Restart_ACL), §5. Where allocsvc deliberately differs (design/compat.md,
"Existence is never revealed"), a caller who may not see an allocation's namespace gets exactly what
a missing allocation gets; those rows say so. Every case table is checked in full before failing,
so one run reports every wrong row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from allocsvc.acl import NAMESPACE_CAPABILITIES
from tests.acl_fixtures import ACLAgent, as_token, open_acl_agent, open_ws

NO_READ_JOB = sorted(NAMESPACE_CAPABILITIES - {"read-job", "deny"})
POLICIES = {
    "ns1": 'namespace "ns1" { policy = "read" }',
    "ns2": 'namespace "ns2" { policy = "read" }',
    "no-read-job": "\n".join(
        f'namespace "{ns}" {{ capabilities = {json.dumps(NO_READ_JOB)} }}' for ns in ("ns1", "ns2")
    ),
    "list-only": 'namespace "ns1" { capabilities = ["list-jobs"] }',
    "glob": 'namespace "ns*" { policy = "read" }',
    "write-ns1": 'namespace "ns1" { policy = "write" }',
    "deny-ns1": 'namespace "ns1" { policy = "deny" }',
    "star-read": 'namespace "*" { policy = "read" }',
    "lifecycle-ns1": 'namespace "ns1" { capabilities = ["alloc-lifecycle"] }',
    "empty-ns1": 'namespace "ns1" { capabilities = [] }',
    "exec-ns1": 'namespace "ns1" { capabilities = ["alloc-exec"] }',
    "exec-node-ns1": 'namespace "ns1" { capabilities = ["alloc-exec", "alloc-node-exec"] }',
    "exec-readfs-ns1": 'namespace "ns1" { capabilities = ["alloc-exec", "read-fs"] }',
}
TOKENS = {
    "ns1": ("ns1",),
    "ns2": ("ns2",),
    "both": ("ns1", "ns2"),
    "no-read-job": ("no-read-job",),
    "list-only": ("list-only",),
    "glob": ("glob",),
    "deny": ("write-ns1", "deny-ns1"),
    "star-but-ns1": ("star-read", "deny-ns1"),
    "lifecycle": ("lifecycle-ns1",),
    "read-lifecycle": ("ns1", "lifecycle-ns1"),
    "empty": ("empty-ns1",),
    "deny-only": ("deny-ns1",),
    "exec": ("exec-ns1",),
    "exec-node": ("exec-node-ns1",),
    "exec-readfs": ("exec-readfs-ns1",),
    "expired": ("ns1", "lifecycle-ns1"),
    "deleted": ("ns1", "lifecycle-ns1"),
}


@dataclass
class World:
    """ns1 and ns2 with one running allocation each, and a token per row of the matrix."""

    agent: ACLAgent
    a1: str
    a2: str
    secrets: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.agent.client

    def headers(self, who: str) -> dict[str, str]:
        """Request headers for a named caller: a token name, ``root``, ``anonymous`` or ``random``."""
        if who == "anonymous":
            return {}
        if who == "root":
            return self.agent.mgmt()
        if who == "random":
            return as_token(str(uuid.UUID(int=12345)))
        return as_token(self.secrets[who])


@pytest.fixture
async def world(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[World]:
    async for agent in open_acl_agent(tmp_path / "data", nursery):
        await agent.bootstrap()
        for ns in ("ns1", "ns2"):
            await agent.namespace(ns)
        (a1,) = await agent.job("web1", "ns1")
        (a2,) = await agent.job("web2", "ns2")
        for name, rules in POLICIES.items():
            await agent.policy(name, rules)
        secrets = {}
        for name, policies in TOKENS.items():
            extra = {"ExpirationTTL": "61s"} if name == "expired" else {}
            secrets[name] = (await agent.token(*policies, name=name, **extra))["SecretID"]
        deleted = agent.tokens["deleted"]["AccessorID"]
        assert (await agent.client.delete(f"/v1/acl/token/{deleted}", headers=agent.mgmt())).status_code == 200
        agent.clock.advance(62)
        yield World(agent, a1, a2, secrets)


def outcome(r: httpx.Response) -> Any:
    """A comparable summary: the set of IDs of a 200 list, else (status, body)."""
    if r.status_code == 200 and r.headers.get("content-type") == "application/json":
        body = r.json()
        if isinstance(body, list):
            return {item["ID"] for item in body}
    return (r.status_code, r.text)


DENIED = (403, "Permission denied")


async def check_table(world: World, rows: list[tuple[str, str, dict[str, str], Any]], request: Any) -> None:
    failures = []
    for label, who, params, expected in rows:
        got = outcome(await request(world, who, params))
        want = expected(world) if callable(expected) else expected
        if got != want:
            failures.append(f"{label}: as {who} {params}: got {got!r}, want {want!r}")
    assert not failures, "\n".join(failures)


async def list_allocs(world: World, who: str, params: dict[str, str]) -> httpx.Response:
    return await world.client.get("/v1/allocations", params=params, headers=world.headers(who))


def both(w: World) -> set[str]:
    return {w.a1, w.a2}


def only_a1(w: World) -> set[str]:
    return {w.a1}


def only_a2(w: World) -> set[str]:
    return {w.a2}


def distinguishing_prefix(w: World) -> str:
    """The shortest even-length prefix of a1 that a2 does not share (Nomad's test uses 2 chars)."""
    n = 2
    while w.a2.startswith(w.a1[:n]):
        n += 2
    return w.a1[:n]


async def test_list_all_namespaces_acl_matrix(world: World) -> None:
    """TestAllocEndpoint_List_AllNamespaces_ACL_OSS (12 rows) plus anonymous, expired, deleted, glob, deny."""
    star = {"namespace": "*"}
    ns1 = {"namespace": "ns1"}
    rows: list[tuple[str, str, dict[str, str], Any]] = [
        ("nomad 1: * with a token for both namespaces", "both", star, both),
        ("nomad 2: * with root", "root", star, both),
        ("nomad 3: * with an ns1 token", "ns1", star, only_a1),
        ("nomad 4: * with an ns2 token", "ns2", star, only_a2),
        ("nomad 5: * with a random token", "random", star, DENIED),
        ("nomad 6: * with every capability but read-job", "no-read-job", star, DENIED),
        ("nomad 7: ns1 with an ns1 token", "ns1", ns1, only_a1),
        ("nomad 8: ns1 with root", "root", ns1, only_a1),
        ("nomad 9: ns1 with an ns2 token", "ns2", ns1, DENIED),
        ("nomad 10: ns1 with a random token", "random", ns1, DENIED),
        ("nomad 11: a random namespace with root", "root", {"namespace": "nosuch"}, set()),
        ("anonymous without an anonymous policy", "anonymous", star, DENIED),
        ("anonymous on the default namespace", "anonymous", {}, DENIED),
        ("expired token", "expired", star, DENIED),
        ("deleted token", "deleted", star, DENIED),
        ("glob ns* on *", "glob", star, both),
        ("glob ns* on ns2", "glob", {"namespace": "ns2"}, only_a2),
        ("deny beats write in ns1, on *", "deny", star, DENIED),
        ("deny beats write in ns1, on ns1", "deny", ns1, DENIED),
        ("* read but ns1 denied, on *", "star-but-ns1", star, only_a2),
        ("* read but ns1 denied, on ns1", "star-but-ns1", ns1, DENIED),
        ("list-jobs is not read-job", "list-only", star, DENIED),
        ("ns1 token on the default namespace", "ns1", {}, DENIED),
        ("alloc-lifecycle alone does not list", "lifecycle", ns1, DENIED),
    ]
    await check_table(world, rows, list_allocs)
    r = await list_allocs(world, "root", {"namespace": "*", "prefix": distinguishing_prefix(world)})
    assert outcome(r) == {world.a1}, "nomad 12: * with root and a short prefix"
    r = await world.client.put(
        "/v1/acl/policy/anonymous", json={"Name": "anonymous", "Rules": POLICIES["ns2"]}, headers=world.agent.mgmt()
    )
    assert r.status_code == 200
    await check_table(
        world,
        [
            ("anonymous policy grants ns2, on *", "anonymous", star, only_a2),
            ("anonymous policy grants ns2, on ns1", "anonymous", ns1, DENIED),
        ],
        list_allocs,
    )


async def read_alloc(world: World, who: str, params: dict[str, str]) -> httpx.Response:
    return await world.client.get(f"/v1/allocation/{params['id']}", headers=world.headers(who))


def alloc_found(r: httpx.Response) -> Any:
    return (r.status_code, r.json()["ID"]) if r.status_code == 200 else (r.status_code, r.text)


async def test_get_alloc_acl_matrix(world: World) -> None:
    """TestAllocEndpoint_GetAlloc_ACL: a caller without read-job sees a missing allocation (404)."""
    hidden = (404, "alloc not found")
    cases = [
        ("nomad: no token", "anonymous", world.a1, hidden),
        ("nomad: read-job token", "ns1", world.a1, (200, world.a1)),
        ("nomad: list-jobs-only token", "list-only", world.a1, hidden),
        ("nomad: root", "root", world.a1, (200, world.a1)),
        ("ns1 token on an ns2 allocation", "ns1", world.a2, hidden),
        ("glob token", "glob", world.a2, (200, world.a2)),
        ("deny beats write", "deny", world.a1, hidden),
        ("alloc-lifecycle without read-job", "lifecycle", world.a1, hidden),
        ("bogus token", "random", world.a1, DENIED),
        ("expired token", "expired", world.a1, DENIED),
        ("deleted token", "deleted", world.a1, DENIED),
    ]
    failures = []
    for label, who, alloc_id, want in cases:
        got = alloc_found(await read_alloc(world, who, {"id": alloc_id}))
        if got != want:
            failures.append(f"{label}: got {got!r}, want {want!r}")
    assert not failures, "\n".join(failures)


async def post(world: World, who: str, path: str, body: Any = None) -> httpx.Response:
    return await world.client.post(path, json=body, headers=world.headers(who))


async def test_signal_and_restart_acl_matrix(world: World) -> None:
    """TestAllocations_Signal_ACL and Restart_ACL; callers who cannot see the namespace get 404 Unknown allocation."""
    unknown = (404, f'Unknown allocation "{world.a1}"')
    ok = (200, '{"Index":0}')
    cases = [
        ("nomad: no token", "anonymous", unknown),
        ("nomad: token with an empty capability list", "empty", unknown),
        ("read-job without alloc-lifecycle", "ns1", DENIED),
        ("nomad: alloc-lifecycle token", "lifecycle", ok),
        ("read-job and alloc-lifecycle", "read-lifecycle", ok),
        ("nomad: management token", "root", ok),
        ("other namespace's token", "ns2", unknown),
        ("bogus token", "random", DENIED),
        ("expired token", "expired", DENIED),
        ("deleted token", "deleted", DENIED),
    ]
    failures = []
    for action, body in (("signal", {"Signal": "SIGHUP"}), ("restart", {})):
        for label, who, want in cases:
            r = await post(world, who, f"/v1/client/allocation/{world.a1}/{action}", body)
            got = (r.status_code, r.text)
            if got != want and not (want == ok and action == "restart" and got[1] == "Task not running"):
                failures.append(f"{action} {label}: got {got!r}, want {want!r}")
    assert not failures, "\n".join(failures)


async def test_stop_acl_matrix(world: World) -> None:
    """TestAllocEndpoint_Stop_ACL: lifecycle and management tokens stop; both allocs end with Migrate=true."""
    hidden = (404, "allocation not found")
    failures = []
    for label, who, alloc_id, want in [
        ("nomad: no token (hidden, Nomad: 403)", "anonymous", world.a1, hidden),
        ("read-job without alloc-lifecycle", "ns1", world.a1, DENIED),
        ("other namespace's token", "ns2", world.a1, hidden),
        ("bogus token", "random", world.a1, DENIED),
        ("expired token", "expired", world.a1, DENIED),
        ("deny beats write", "deny", world.a1, hidden),
    ]:
        r = await post(world, who, f"/v1/allocation/{alloc_id}/stop")
        if (r.status_code, r.text) != want:
            failures.append(f"{label}: got {(r.status_code, r.text)!r}, want {want!r}")
    assert not failures, "\n".join(failures)
    for who, alloc_id in (("lifecycle", world.a1), ("root", world.a2)):
        r = await post(world, who, f"/v1/allocation/{alloc_id}/stop")
        assert r.status_code == 200, (who, r.text)
        assert uuid.UUID(r.json()["EvalID"])
        assert r.json()["Index"] == int(r.headers["X-Nomad-Index"]) > 0
    for alloc_id in (world.a1, world.a2):
        got = await world.client.get(f"/v1/allocation/{alloc_id}", headers=world.agent.mgmt())
        assert got.json()["DesiredTransition"]["Migrate"] is True


async def same_as_missing(world: World, who: str, method: str, template: str, **kw: Any) -> list[str]:
    """Compare the answer about a hidden allocation with the answer about a random one."""
    ghost = str(uuid.uuid4())
    hidden = await world.client.request(method, template.format(id=world.a1), headers=world.headers(who), **kw)
    missing = await world.client.request(method, template.format(id=ghost), headers=world.headers(who), **kw)
    problems = []
    if hidden.status_code != missing.status_code or hidden.text.replace(world.a1, ghost) != missing.text:
        problems.append(f"{method} {template} as {who}: {hidden.status_code} {hidden.text!r} vs {missing.status_code} {missing.text!r}")
    if hidden.status_code == 200:
        problems.append(f"{method} {template} as {who}: answered 200")
    for header in ("X-Nomad-Index", "content-type"):
        if hidden.headers.get(header) != missing.headers.get(header):
            problems.append(f"{method} {template} as {who}: {header} differs")
    if world.a1 in hidden.text.replace(f'"{world.a1}"', ""):
        problems.append(f"{method} {template} as {who}: body mentions the allocation")
    return problems


async def test_hidden_allocations_are_indistinguishable_from_missing(world: World) -> None:
    """No endpoint reveals that a1 exists to callers without read-job (or lifecycle) in ns1."""
    probes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/allocation/{id}", {}),
        ("GET", "/v1/allocation/{id}?index=1&wait=10ms", {}),
        ("GET", "/v1/allocation/{id}/services?namespace=ns1", {}),
        ("GET", "/v1/allocation/{id}/checks", {}),
        ("GET", "/v1/allocation/{id}/events", {}),
        ("GET", "/v1/allocation/{id}?at_index=1", {}),
        ("POST", "/v1/allocation/{id}/stop", {}),
        ("POST", "/v1/client/allocation/{id}/signal", {"json": {"Signal": "SIGHUP"}}),
        ("POST", "/v1/client/allocation/{id}/restart", {"json": {}}),
    ]
    problems = []
    for who in ("anonymous", "ns2", "list-only", "deny", "empty"):
        for method, template, kw in probes:
            problems += await same_as_missing(world, who, method, template, **kw)
    assert not problems, "\n".join(problems)
    for who in ("ns2", "list-only", "star-but-ns1"):
        r = await world.client.get("/v1/allocations", params={"namespace": "*"}, headers=world.headers(who))
        assert world.a1 not in r.text, who
        r = await world.client.get("/v1/job/web1/allocations", params={"namespace": "ns1"}, headers=world.headers(who))
        assert world.a1 not in r.text, who


async def test_jobs_and_namespaces_are_enforced(world: World) -> None:
    c = world.client
    r = await c.get("/v1/namespaces", headers=world.headers("ns1"))
    assert [n["Name"] for n in r.json()] == ["ns1"]
    assert (await c.get("/v1/job/web1", params={"namespace": "ns1"}, headers=world.headers("ns1"))).status_code == 200
    r = await c.get("/v1/job/web2", params={"namespace": "ns2"}, headers=world.headers("ns1"))
    assert (r.status_code, r.text) == DENIED
    r = await c.get("/v1/job/web1/allocations", params={"namespace": "ns1"}, headers=world.headers("ns1"))
    assert [a["ID"] for a in r.json()] == [world.a1]
    job = {"Job": {"ID": "x", "Namespace": "ns1", "Type": "service", "TaskGroups": []}}
    r = await c.put("/v1/jobs", json=job, headers=world.headers("ns1"))
    assert (r.status_code, r.text) == DENIED
    r = await c.put("/v1/namespace/ns3", json={"Name": "ns3"}, headers=world.headers("both"))
    assert (r.status_code, r.text) == DENIED


async def test_event_stream_filters_namespaces_and_ends_when_the_token_goes(world: World) -> None:
    """A token for ns1 streaming ``namespace=*`` sees ns1 only (CVE-2025-0937), and the stream ends on
    deletion (CVE-2022-3867's lesson)."""
    lines: list[str] = []
    seen_a1 = trio.Event()
    headers = world.headers("ns1")
    r = await world.client.get("/v1/event/stream", params={"namespace": "ns2", "topic": "Allocation"}, headers=headers)
    assert (r.status_code, r.text) == DENIED

    async def consume() -> None:
        params = {"namespace": "*", "topic": "Allocation", "index": "1"}
        async with world.client.stream("GET", "/v1/event/stream", params=params, headers=headers) as resp:
            assert resp.status_code == 200
            async for line in resp.aiter_lines():
                lines.append(line)
                if world.a1 in line:
                    seen_a1.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await seen_a1.wait()
            accessor = world.agent.tokens["ns1"]["AccessorID"]
            assert (await world.client.delete(f"/v1/acl/token/{accessor}", headers=world.agent.mgmt())).status_code == 200
    events = [e for line in lines if line.strip() not in ("", "{}") for e in json.loads(line)["Events"]]
    assert events
    assert {e["Namespace"] for e in events} == {"ns1"}
    assert all(world.a2 not in line for line in lines)


async def test_event_stream_ends_when_the_token_expires(world: World) -> None:
    """An expired token's stream is closed at the next ACL wake-up rather than running on."""
    await world.agent.policy("short", POLICIES["ns1"])
    short = await world.agent.token("short", ExpirationTTL="61s")
    headers = as_token(short["SecretID"])
    started = trio.Event()

    async def consume() -> None:
        params = {"namespace": "ns1", "topic": "Allocation"}
        async with world.client.stream("GET", "/v1/event/stream", params=params, headers=headers) as resp:
            assert resp.status_code == 200
            async for _ in resp.aiter_lines():
                started.set()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await started.wait()
            world.agent.clock.advance(62)
            await world.agent.policy("unrelated", POLICIES["ns2"])  # any ACL write wakes subscribers


async def exec_outcome(
    world: World, who: str, *, task: str = "server", command: tuple[str, ...] = ("echo", "hi"), handshake: bool = False
) -> tuple[int, str, bool]:
    """Run one exec session; returns (close code, close reason, whether an exit frame arrived)."""
    params = {"command": json.dumps(list(command)), "task": task, "tty": "false"}
    headers = world.headers(who)
    if handshake:
        params["ws_handshake"] = "true"
    url = f"ws://127.0.0.1:{world.agent.served.port}/v1/client/allocation/{world.a1}/exec?{urlencode(params)}"
    exited = False
    with trio.fail_after(20):
        async with open_ws(url, {} if handshake else headers) as ws:
            if handshake:
                await ws.send_message(json.dumps({"version": 1, "auth_token": headers.get("X-Nomad-Token", "")}))
            while True:
                try:
                    message = await ws.get_message()
                except ConnectionClosed as exc:
                    reason = exc.reason
                    break
                exited = exited or str(message).startswith('{"exited"')
    assert reason is not None
    return reason.code, reason.reason or "", exited


async def test_exec_acl_matrix(world: World) -> None:
    """TestAlloc_ExecStreaming_ACL_Basic and _WithIsolation_None (the mock driver has no isolation)."""
    unknown = (1008, f'Unknown allocation "{world.a1}"', False)
    denied = (1011, "Permission denied", False)
    ran = (1000, "", True)
    cases: list[tuple[str, str, dict[str, Any], tuple[int, str, bool]]] = [
        ("nomad: deny-policy token (hidden, Nomad: Permission denied)", "deny-only", {}, unknown),
        ("no token (hidden)", "anonymous", {}, unknown),
        ("other namespace's token (hidden)", "ns2", {}, unknown),
        ("read-job without alloc-exec", "ns1", {}, denied),
        ("nomad: isolation none, alloc-exec alone", "exec", {}, denied),
        ("nomad: isolation none, alloc-exec + alloc-node-exec", "exec-node", {}, ran),
        ("nomad: root", "root", {}, ran),
        ("nomad: alloc-exec + read-fs on an unknown task", "exec-readfs", {"task": "testtask"}, (1011, "task not found", False)),
        ("token in the ws_handshake frame", "exec-node", {"handshake": True}, ran),
        ("bogus token", "random", {}, (1008, "Permission denied", False)),
        ("expired token", "expired", {}, (1008, "Permission denied", False)),
        ("deleted token", "deleted", {}, (1008, "Permission denied", False)),
    ]
    failures = []
    for label, who, kw, want in cases:
        got = await exec_outcome(world, who, **kw)
        if got != want:
            failures.append(f"{label}: got {got!r}, want {want!r}")
    assert not failures, "\n".join(failures)


async def test_exec_session_is_closed_when_its_token_is_deleted(world: World) -> None:
    await world.agent.token("exec-node-ns1", name="short-lived")
    token = world.agent.tokens["short-lived"]
    params = {"command": json.dumps(["cat"]), "task": "server"}
    url = f"ws://127.0.0.1:{world.agent.served.port}/v1/client/allocation/{world.a1}/exec?{urlencode(params)}"
    with trio.fail_after(20):
        async with open_ws(url, as_token(token["SecretID"])) as ws:
            await ws.send_message(json.dumps({"stdin": {"data": "aGkK"}}))
            assert json.loads(await ws.get_message()) == {"stdout": {"data": "aGkK"}}
            r = await world.client.delete(f"/v1/acl/token/{token['AccessorID']}", headers=world.agent.mgmt())
            assert r.status_code == 200
            reason = None
            while reason is None:
                try:
                    await ws.get_message()
                except ConnectionClosed as exc:
                    reason = exc.reason
    assert (reason.code, reason.reason) == (1008, "Permission denied")
