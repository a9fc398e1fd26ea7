"""The ACL endpoints black-box against a real server (FACTS §5, nomad acl_endpoint.go), plus replay.

Expiry inside a blocking query runs under autojump time through the app's test client, so the
one-minute minimum TTL costs nothing; everything else talks HTTP to hypercorn.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from allocsvc.actors.acl import TokenRequest
from allocsvc.config import AgentConfig
from allocsvc.http.app import create_app
from allocsvc.service import log_path, open_service
from allocsvc.store.memory import MemoryEventLog
from allocsvc.store.sqlite import iter_file_records
from tests.acl_fixtures import ACLAgent, as_token, open_acl_agent
from tests.conftest import FIXED_WALL, open_served

TEXT = "text/plain; charset=utf-8"
READ_DEFAULT = 'namespace "default" { policy = "read" }'
TOKEN_KEYS = [
    "ExpirationTTL", "AccessorID", "SecretID", "Name", "Type", "Policies", "Roles", "Global", "Hash",
    "CreateTime", "CreateIndex", "ModifyIndex",
]  # fmt: skip
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture
async def agent(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[ACLAgent]:
    async for a in open_acl_agent(tmp_path / "data", nursery):
        yield a


@pytest.fixture
async def ready(agent: ACLAgent) -> ACLAgent:
    await agent.bootstrap()
    return agent


def assert_error(r: Any, status: int, body: str) -> None:
    assert (r.status_code, r.text) == (status, body)
    assert r.headers["content-type"] == TEXT


# --- ACLs off ---------------------------------------------------------------------------------------


async def test_acl_endpoints_say_disabled_and_everything_is_allowed_when_off(tmp_path: Path, nursery: trio.Nursery) -> None:
    async for s in open_served(AgentConfig(data_dir=str(tmp_path / "d"), port=0), nursery):
        c = s.client
        for method, path in [
            ("POST", "/v1/acl/bootstrap"), ("GET", "/v1/acl/policies"), ("GET", "/v1/acl/policy/x"),
            ("DELETE", "/v1/acl/policy/x"), ("GET", "/v1/acl/tokens"), ("GET", "/v1/acl/token/self"),
            ("GET", f"/v1/acl/token/{uuid.uuid4()}"), ("DELETE", f"/v1/acl/token/{uuid.uuid4()}"),
        ]:  # fmt: skip
            assert_error(await c.request(method, path), 400, "ACL support disabled")
        r = await c.put("/v1/acl/policy/x", json={"Name": "x", "Rules": READ_DEFAULT})
        assert_error(r, 400, "ACL support disabled")
        assert_error(await c.post("/v1/acl/token", json={"Type": "client"}), 400, "ACL support disabled")
        r = await c.get("/v1/allocations", headers=as_token(str(uuid.uuid4())))
        assert (r.status_code, r.text) == (200, "[]")


# --- bootstrap --------------------------------------------------------------------------------------


async def test_bootstrap_once_with_nomads_token_shape(agent: ACLAgent) -> None:
    r = await agent.client.post("/v1/acl/bootstrap")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    token = r.json()
    assert list(token) == TOKEN_KEYS
    assert uuid.UUID(token["SecretID"])
    assert uuid.UUID(token["AccessorID"])
    assert token["Name"] == "Bootstrap Token"
    assert token["Type"] == "management"
    assert (token["Policies"], token["Roles"], token["Global"], token["ExpirationTTL"]) == (None, None, True, "")
    assert RFC3339.fullmatch(token["CreateTime"])
    assert token["CreateIndex"] == token["ModifyIndex"] == int(r.headers["X-Nomad-Index"])
    expected_hash = hashlib.blake2b(b"Bootstrap Tokenmanagementglobal", digest_size=32).digest()
    assert base64.b64decode(token["Hash"]) == expected_hash
    again = await agent.client.put("/v1/acl/bootstrap")
    assert_error(again, 400, f"ACL bootstrap already done (reset index: {token['CreateIndex']})")
    listed = await agent.client.get("/v1/acl/tokens", headers=as_token(token["SecretID"]))
    assert listed.status_code == 200
    assert [t["AccessorID"] for t in listed.json()] == [token["AccessorID"]]


async def test_bootstrap_secret_methods_and_body_errors(agent: ACLAgent) -> None:
    c = agent.client
    assert_error(await c.get("/v1/acl/bootstrap"), 405, "Invalid method")
    assert_error(await c.delete("/v1/acl/bootstrap"), 405, "Invalid method")
    r = await c.post("/v1/acl/bootstrap", content=b"{nope")
    assert r.status_code == 400
    assert r.text.startswith("failed to decode request body: ")
    assert_error(await c.post("/v1/acl/bootstrap", json={"BootstrapSecret": "not-a-uuid"}), 400, "invalid acl token")
    secret = str(uuid.uuid4())
    r = await c.post("/v1/acl/bootstrap", json={"BootstrapSecret": secret})
    assert r.status_code == 200
    assert r.json()["SecretID"] == secret
    assert (await c.get("/v1/acl/tokens", headers=as_token(secret))).status_code == 200


async def test_bootstrap_reset_file(agent: ACLAgent, tmp_path: Path) -> None:
    first = await agent.bootstrap()
    reset = tmp_path / "data" / "acl-bootstrap-reset"
    reset.write_text("999\n")
    r = await agent.client.post("/v1/acl/bootstrap")
    assert_error(r, 400, f"Invalid bootstrap reset index (specified 999, reset index: {first['CreateIndex']})")
    reset.write_text(str(first["CreateIndex"]))
    second = await agent.client.post("/v1/acl/bootstrap")
    assert second.status_code == 200
    assert second.json()["AccessorID"] != first["AccessorID"]
    r = await agent.client.post("/v1/acl/bootstrap")
    assert_error(r, 400, f"Invalid bootstrap reset index (specified {first['CreateIndex']}, reset index: {second.json()['CreateIndex']})")
    for secret in (first["SecretID"], second.json()["SecretID"]):
        assert (await agent.client.get("/v1/acl/tokens", headers=as_token(secret))).status_code == 200


# --- policies ---------------------------------------------------------------------------------------


async def test_policy_crud_shapes_and_headers(ready: ACLAgent) -> None:
    c, h = ready.client, ready.mgmt()
    rules = 'namespace "default" {\n\tpolicy = "read"\n\tcapabilities = ["alloc-lifecycle"]\n}'
    r = await c.put("/v1/acl/policy/readers", json={"Name": "readers", "Description": "d", "Rules": rules}, headers=h)
    assert (r.status_code, r.content) == (200, b"")
    index = int(r.headers["X-Nomad-Index"])
    got = await c.get("/v1/acl/policy/readers", headers=h)
    assert got.status_code == 200
    assert got.headers["X-Nomad-Index"] == str(index)
    body = got.json()
    assert list(body) == ["Name", "Description", "Rules", "RulesJSON", "JobACL", "Hash", "CreateIndex", "ModifyIndex"]
    assert (body["Name"], body["Description"], body["Rules"], body["JobACL"]) == ("readers", "d", rules, None)
    assert body["CreateIndex"] == body["ModifyIndex"] == index
    assert base64.b64decode(body["Hash"]) == hashlib.blake2b(b"readersd" + rules.encode(), digest_size=32).digest()
    ns = body["RulesJSON"]["Namespaces"][0]
    assert ns["Name"] == "default"
    assert ns["Capabilities"][0] == "alloc-lifecycle"
    assert "read-job" in ns["Capabilities"]
    listed = await c.get("/v1/acl/policies", headers=h)
    assert listed.json() == [{"Name": "readers", "Description": "d", "Hash": body["Hash"], "CreateIndex": index, "ModifyIndex": index}]
    assert listed.headers["X-Nomad-Index"] == str(index)
    r = await c.post("/v1/acl/policy/readers", json={"Name": "readers", "Rules": READ_DEFAULT}, headers=h)
    updated = (await c.get("/v1/acl/policy/readers", headers=h)).json()
    assert updated["CreateIndex"] == index
    assert updated["ModifyIndex"] == int(r.headers["X-Nomad-Index"]) > index
    r = await c.delete("/v1/acl/policy/readers", headers=h)
    assert (r.status_code, r.content) == (200, b"")
    assert int(r.headers["X-Nomad-Index"]) > index
    missing = await c.get("/v1/acl/policy/readers", headers=h)
    assert_error(missing, 404, "ACL policy not found")
    assert missing.headers["X-Nomad-Index"] == r.headers["X-Nomad-Index"]
    assert (await c.get("/v1/acl/policies", headers=h)).json() == []


async def test_policy_validation_errors(ready: ACLAgent) -> None:
    c, h = ready.client, ready.mgmt()
    r = await c.put("/v1/acl/policy/p", json={"Name": "other", "Rules": READ_DEFAULT}, headers=h)
    assert_error(r, 400, "ACL policy name does not match request path")
    assert_error(await c.put("/v1/acl/policy/p", headers=h), 400, "Request body is empty")
    assert_error(await c.put("/v1/acl/policy/", json={}, headers=h), 400, "Missing Policy Name")
    assert_error(await c.patch("/v1/acl/policy/p", headers=h), 405, "Invalid method")
    bad_policy = await c.put("/v1/acl/policy/p", json={"Name": "p", "Rules": 'namespace "default" { policy = "list" }'}, headers=h)
    assert bad_policy.status_code == 400
    assert bad_policy.text.startswith("policy 0 invalid: 1 error occurred:\n\t* failed to parse rules: Invalid namespace policy: ")
    assert bad_policy.text.endswith("\n\n")
    bad_cap = await c.put("/v1/acl/policy/p", json={"Name": "p", "Rules": 'namespace "default" { capabilities = ["fly"] }'}, headers=h)
    assert bad_cap.text.startswith("policy 0 invalid: 1 error occurred:\n\t* failed to parse rules: Invalid namespace capability 'fly': ")
    unknown = await c.put("/v1/acl/policy/p", json={"Name": "p", "Rules": 'bogus "x" { policy = "read" }'}, headers=h)
    assert unknown.status_code == 400
    assert "failed to parse rules" in unknown.text
    two = await c.put("/v1/acl/policy/a_b", json={"Name": "a_b", "Description": "x" * 300, "Rules": READ_DEFAULT}, headers=h)
    assert_error(two, 400, "policy 0 invalid: 2 errors occurred:\n\t* invalid name 'a_b'\n\t* description longer than 256\n\n")
    assert (await c.get("/v1/acl/policies", headers=h)).json() == []


async def test_policy_permissions(ready: ACLAgent) -> None:
    c = ready.client
    await ready.policy("mine", READ_DEFAULT)
    await ready.policy("theirs", READ_DEFAULT)
    await ready.policy("anonymous", 'namespace "ns9" { policy = "read" }')
    token = await ready.token("mine")
    own = as_token(token["SecretID"])
    assert (await c.get("/v1/acl/policy/mine", headers=own)).status_code == 200
    assert_error(await c.get("/v1/acl/policy/theirs", headers=own), 403, "Permission denied")
    assert (await c.get("/v1/acl/policy/anonymous", headers=own)).status_code == 200
    assert [p["Name"] for p in (await c.get("/v1/acl/policies", headers=own)).json()] == ["mine"]
    assert [p["Name"] for p in (await c.get("/v1/acl/policies")).json()] == ["anonymous"]
    assert (await c.get("/v1/acl/policy/anonymous")).status_code == 200
    for headers in (own, {}):
        r = await c.put("/v1/acl/policy/mine", json={"Name": "mine", "Rules": READ_DEFAULT}, headers=headers)
        assert_error(r, 403, "Permission denied")
        assert_error(await c.delete("/v1/acl/policy/mine", headers=headers), 403, "Permission denied")
    bogus = as_token(str(uuid.uuid4()))
    assert_error(await c.get("/v1/acl/policies", headers=bogus), 403, "Permission denied")


# --- tokens -----------------------------------------------------------------------------------------


async def test_token_create_read_update_delete(ready: ACLAgent) -> None:
    c, h = ready.client, ready.mgmt()
    await ready.policy("readers", READ_DEFAULT)
    r = await c.post("/v1/acl/token", json={"Name": "t", "Type": "client", "Policies": ["readers"]}, headers=h)
    assert r.status_code == 200
    token = r.json()
    assert list(token) == TOKEN_KEYS
    assert uuid.UUID(token["SecretID"])
    assert (token["Policies"], token["Global"], token["CreateIndex"]) == (["readers"], False, int(r.headers["X-Nomad-Index"]))
    assert base64.b64decode(token["Hash"]) == hashlib.blake2b(b"tclientreaderslocal", digest_size=32).digest()
    accessor, secret = token["AccessorID"], token["SecretID"]
    by_mgmt = (await c.get(f"/v1/acl/token/{accessor}", headers=h)).json()
    assert by_mgmt["SecretID"] == ""
    assert {k: v for k, v in by_mgmt.items() if k != "SecretID"} == {
        k: v for k, v in token.items() if k != "SecretID"
    }
    by_self = await c.get(f"/v1/acl/token/{accessor}", headers={"Authorization": f"Bearer {secret}"})
    assert by_self.status_code == 200
    assert by_self.json()["AccessorID"] == accessor
    self_view = await c.get("/v1/acl/token/self", headers=as_token(secret))
    assert self_view.json()["AccessorID"] == accessor
    assert self_view.json()["SecretID"] == ""
    update = {"AccessorID": accessor, "Name": "renamed", "Type": "client", "Policies": ["readers"]}
    r = await c.post(f"/v1/acl/token/{accessor}", json=update, headers=h)
    assert r.status_code == 200
    assert r.json()["Name"] == "renamed"
    assert r.json()["SecretID"] == ""
    assert r.json()["CreateIndex"] == token["CreateIndex"] < r.json()["ModifyIndex"]
    assert r.json()["CreateTime"] == token["CreateTime"]
    assert (await c.get("/v1/allocations", headers=as_token(secret))).status_code == 200
    r = await c.put(f"/v1/acl/token/{accessor}", json={**update, "Global": True}, headers=h)
    assert_error(r, 400, "token 0 invalid: 1 error occurred:\n\t* cannot toggle global mode\n\n")
    r = await c.put(f"/v1/acl/token/{uuid.uuid4()}", json={**update}, headers=h)
    assert_error(r, 400, "ACL token accessor does not match request path")
    ghost = str(uuid.uuid4())
    r = await c.put(f"/v1/acl/token/{ghost}", json={**update, "AccessorID": ghost}, headers=h)
    assert_error(r, 400, f"cannot find token {ghost}")
    r = await c.delete(f"/v1/acl/token/{accessor}", headers=h)
    assert (r.status_code, r.content) == (200, b"")
    assert int(r.headers["X-Nomad-Index"]) > 0
    assert_error(await c.get("/v1/allocations", headers=as_token(secret)), 403, "Permission denied")
    assert_error(await c.delete(f"/v1/acl/token/{accessor}", headers=h), 400, f"Cannot delete nonexistent tokens: {accessor}")
    missing = await c.get(f"/v1/acl/token/{accessor}", headers=h)
    assert_error(missing, 404, "ACL token not found")
    assert "X-Nomad-Index" in missing.headers


async def test_token_validation_texts(ready: ACLAgent) -> None:
    c, h = ready.client, ready.mgmt()

    async def create(body: dict[str, Any]) -> Any:
        return await c.post("/v1/acl/token", json=body, headers=h)

    assert_error(await create({"Type": "client"}), 400, "token 0 invalid: 1 error occurred:\n\t* client token missing policies or roles\n\n")
    assert_error(await create({"Type": "root", "Policies": ["p"]}), 400, "token 0 invalid: 1 error occurred:\n\t* token type must be client or management\n\n")
    assert_error(
        await create({"Type": "management", "Policies": ["p"]}),
        400,
        "token 0 invalid: 1 error occurred:\n\t* management token cannot be associated with policies or roles\n\n",
    )
    assert_error(
        await create({"Type": "client", "Policies": ["p"], "ExpirationTTL": "30s"}),
        400,
        "token 0 invalid: 1 error occurred:\n\t* expiration time cannot be less than 1m0s in the future (was 30s)\n\n",
    )
    assert_error(
        await create({"Type": "client", "Policies": ["p"], "ExpirationTTL": 25 * 3600 * 10**9}),
        400,
        "token 0 invalid: 1 error occurred:\n\t* expiration time cannot be more than 24h0m0s in the future (was 25h0m0s)\n\n",
    )
    assert_error(
        await create({"Name": "n" * 257, "Type": "client", "Policies": ["p"], "ExpirationTTL": "-1s"}),
        400,
        "token 0 invalid: 4 errors occurred:\n\t* token name too long\n\t* token expiration TTL '-1s' should not be negative"
        "\n\t* expiration time cannot be before create time\n\t* expiration time cannot be less than 1m0s in the future (was -1s)\n\n",
    )
    assert_error(await create({"Type": "client", "Roles": [{"Name": "ops"}]}), 400, "cannot find role ops")
    assert_error(await create({"Type": "client", "Policies": "p"}), 400, "json: cannot unmarshal string into Go struct field ACLToken.Policies of type []string")
    assert_error(await c.get("/v1/acl/token", headers=h), 405, "Invalid method")
    assert_error(await c.get("/v1/acl/token/", headers=h), 400, "Missing Token Accessor")
    assert_error(await c.post("/v1/acl/token", headers=h), 400, "Request body is empty")
    tokens = (await c.get("/v1/acl/tokens", headers=h)).json()
    assert [t["Name"] for t in tokens] == ["Bootstrap Token"]


async def test_management_required_and_token_visibility(ready: ACLAgent) -> None:
    c = ready.client
    await ready.policy("readers", READ_DEFAULT)
    alice, bob = await ready.token("readers", name="alice"), await ready.token("readers", name="bob")
    a = as_token(alice["SecretID"])
    assert_error(await c.get("/v1/acl/tokens", headers=a), 403, "Permission denied")
    assert_error(await c.get("/v1/acl/tokens"), 403, "Permission denied")
    r = await c.post("/v1/acl/token", json={"Type": "client", "Policies": ["readers"]}, headers=a)
    assert_error(r, 403, "Permission denied")
    assert_error(await c.delete(f"/v1/acl/token/{bob['AccessorID']}", headers=a), 403, "Permission denied")
    assert_error(await c.get(f"/v1/acl/token/{bob['AccessorID']}", headers=a), 403, "Permission denied")
    assert_error(await c.get(f"/v1/acl/token/{uuid.uuid4()}", headers=a), 403, "Permission denied")
    assert_error(await c.get(f"/v1/acl/token/{alice['AccessorID']}"), 403, "Permission denied")
    listed = await c.get("/v1/acl/tokens", headers=ready.mgmt())
    stubs = listed.json()
    assert [t["Name"] for t in stubs] == ["Bootstrap Token", "alice", "bob"]
    assert list(stubs[1]) == ["AccessorID", "Name", "Type", "Policies", "Roles", "Global", "Hash", "CreateTime", "CreateIndex", "ModifyIndex"]
    assert listed.headers["X-Nomad-Index"] == str(bob["CreateIndex"])
    page = await c.get("/v1/acl/tokens", params={"per_page": 2}, headers=ready.mgmt())
    assert [t["Name"] for t in page.json()] == ["Bootstrap Token", "alice"]
    assert page.headers["X-Nomad-NextToken"] == f"{bob['CreateIndex']}.{bob['AccessorID']}"
    rest = await c.get("/v1/acl/tokens", params={"next_token": page.headers["X-Nomad-NextToken"]}, headers=ready.mgmt())
    assert [t["Name"] for t in rest.json()] == ["bob"]
    assert "X-Nomad-NextToken" not in rest.headers
    by_prefix = await c.get("/v1/acl/tokens", params={"prefix": bob["AccessorID"][:6]}, headers=ready.mgmt())
    assert bob["AccessorID"] in [t["AccessorID"] for t in by_prefix.json()]
    body = listed.text + page.text + rest.text
    for secret in (alice["SecretID"], bob["SecretID"], ready.management):
        assert secret not in body


async def test_token_self_and_header_forms(ready: ACLAgent) -> None:
    c = ready.client
    anon = await c.get("/v1/acl/token/self")
    assert anon.status_code == 200
    assert anon.json() == {
        "ExpirationTTL": "", "AccessorID": "anonymous", "SecretID": "", "Name": "Anonymous Token", "Type": "client",
        "Policies": ["anonymous"], "Roles": None, "Global": False, "Hash": None, "CreateTime": "0001-01-01T00:00:00Z",
        "CreateIndex": 0, "ModifyIndex": 0,
    }  # fmt: skip
    assert_error(await c.get("/v1/acl/token/self", headers=as_token(str(uuid.uuid4()))), 403, "Permission denied")
    assert_error(await c.post("/v1/acl/token/self", headers=ready.mgmt()), 405, "Invalid method")
    me = await c.get("/v1/acl/token/self", headers={"Authorization": f"bearer {ready.management} trailing"})
    assert me.json()["Type"] == "management"
    assert me.json()["SecretID"] == ""
    basic = await c.get("/v1/acl/token/self", headers={"Authorization": ready.management})
    assert basic.json()["AccessorID"] == "anonymous"


async def test_anonymous_policy_governs_requests_without_a_token(ready: ACLAgent) -> None:
    c = ready.client
    assert_error(await c.get("/v1/allocations"), 403, "Permission denied")
    await ready.policy("anonymous", READ_DEFAULT)
    assert (await c.get("/v1/allocations")).status_code == 200
    assert (await c.get("/v1/allocations", headers={"Authorization": "Basic abc"})).status_code == 200
    assert_error(await c.get("/v1/allocations", params={"namespace": "other"}), 403, "Permission denied")
    await c.delete("/v1/acl/policy/anonymous", headers=ready.mgmt())
    assert_error(await c.get("/v1/allocations"), 403, "Permission denied")


async def test_expired_token_is_denied_everywhere(ready: ACLAgent) -> None:
    c = ready.client
    await ready.policy("readers", READ_DEFAULT)
    token = await ready.token("readers", ExpirationTTL="61s")
    assert token["ExpirationTTL"] == "1m1s"
    assert RFC3339.fullmatch(token["ExpirationTime"])
    secret = as_token(token["SecretID"])
    assert (await c.get("/v1/allocations", headers=secret)).status_code == 200
    ready.clock.advance(62)
    for path in ("/v1/allocations", "/v1/acl/token/self", "/v1/acl/policy/readers", f"/v1/acl/token/{token['AccessorID']}"):
        assert_error(await c.get(path, headers=secret), 403, "Permission denied")
    stubs = (await c.get("/v1/acl/tokens", headers=ready.mgmt())).json()
    assert any(t["AccessorID"] == token["AccessorID"] and t["ExpirationTime"] == token["ExpirationTime"] for t in stubs)


async def test_blocking_query_answers_403_when_token_is_deleted_while_waiting(ready: ACLAgent) -> None:
    c = ready.client
    await ready.policy("readers", READ_DEFAULT)
    token = await ready.token("readers")
    index = int((await c.get("/v1/allocations", headers=as_token(token["SecretID"]))).headers["X-Nomad-Index"]) + 1
    results: list[Any] = []

    async def blocked() -> None:
        results.append(await c.get("/v1/allocations", params={"index": index, "wait": "60s"}, headers=as_token(token["SecretID"])))

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            hub = ready.served.service.model.hub
            before = hub.statistics().watched_keys
            nursery.start_soon(blocked)
            while hub.statistics().watched_keys == before:  # noqa: ASYNC110 -- polled inside fail_after until parked
                await trio.sleep(0.01)
            r = await c.delete(f"/v1/acl/token/{token['AccessorID']}", headers=ready.mgmt())
            assert r.status_code == 200
    assert_error(results[0], 403, "Permission denied")
    assert hub.statistics().watched_keys == before, "the woken query left no watch behind"


async def test_blocking_query_answers_403_when_token_expires_while_waiting(autojump_clock: trio.testing.MockClock) -> None:
    config = AgentConfig(acl_enabled=True)
    async with open_service(config, log=MemoryEventLog(), wall_base_ns=FIXED_WALL) as svc:
        client = create_app(svc).test_client()
        boot = (await svc.acl.bootstrap()).token
        assert boot.is_management
        await svc.acl.upsert_policy("readers", "", READ_DEFAULT)
        written = await svc.acl.upsert_token(
            TokenRequest(name="short", type="client", policies=("readers",), expiration_ttl=90 * 10**9)
        )
        headers = {"X-Nomad-Token": written.secret_id}
        first = await client.get("/v1/allocations", headers=headers)
        assert first.status_code == 200
        start = trio.current_time()
        late = await client.get(f"/v1/allocations?index={int(first.headers['X-Nomad-Index']) + 1}&wait=300s", headers=headers)
        elapsed = trio.current_time() - start
        assert late.status_code == 403
        assert (await late.get_data()) == b"Permission denied"
        assert 89 < elapsed < 100


# --- replay -----------------------------------------------------------------------------------------


async def test_acl_state_survives_restart_and_the_log_holds_no_secret(tmp_path: Path, nursery: trio.Nursery) -> None:
    data = tmp_path / "data"
    async for first in open_acl_agent(data, nursery):
        boot = await first.bootstrap()
        await first.policy("readers", READ_DEFAULT, description="r")
        keep = await first.token("readers", name="keep")
        drop = await first.token("readers", name="drop")
        assert (await first.client.delete(f"/v1/acl/token/{drop['AccessorID']}", headers=first.mgmt())).status_code == 200
        before = (await first.client.get("/v1/acl/policy/readers", headers=first.mgmt())).json()
    async for second in open_acl_agent(data, nursery):
        c = second.client
        assert (await c.get("/v1/allocations", headers=as_token(keep["SecretID"]))).status_code == 200
        assert_error(await c.get("/v1/allocations", headers=as_token(drop["SecretID"])), 403, "Permission denied")
        assert (await c.get("/v1/acl/policy/readers", headers=as_token(boot["SecretID"]))).json() == before
        again = await c.post("/v1/acl/bootstrap")
        assert_error(again, 400, f"ACL bootstrap already done (reset index: {boot['CreateIndex']})")
        kept = (await c.get(f"/v1/acl/token/{keep['AccessorID']}", headers=as_token(boot["SecretID"]))).json()
        assert {k: v for k, v in kept.items() if k != "SecretID"} == {k: v for k, v in keep.items() if k != "SecretID"}
    raw = log_path(data).read_bytes()
    records = list(iter_file_records(log_path(data), 0))
    assert [r.event.__class__.__name__ for r in records if r.stream.startswith("acl/")] == [
        "ACLBootstrapped", "ACLPolicyUpserted", "ACLTokenUpserted", "ACLTokenUpserted", "ACLTokenDeleted",
    ]  # fmt: skip
    for secret in (boot["SecretID"], keep["SecretID"], drop["SecretID"]):
        assert secret.encode() not in raw
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw
