"""The built-in web UI in headless Chromium against a real agent (issue 9).

Each test runs a real hypercorn server (SQLite log, real processes for raw_exec) and drives the
page with Selenium through chromedriver. Screenshots go to ``test-artifacts/ui/``. Waits are
bounded condition waits on the page, never sleeps, except the one deliberate idle window that
checks the list makes no requests while nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from selenium import webdriver
from selenium.webdriver.common.keys import Keys

from allocsvc.config import AgentConfig
from allocsvc.domain import events as ev
from tests.acl_fixtures import ACLAgent, open_acl_agent
from tests.conftest import Served, open_served
from tests.helpers import example_job, wait_until
from tests.ui.browser import TEXTS_OF, Browser
from tests.ui.conftest import attach

MOCK: dict[str, Any] = {"Driver": "mock", "Config": {}}
RAW_EXEC: dict[str, Any] = {"Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": ["1000"]}}
SCREENSHOT = Path(__file__).resolve().parents[2] / "design" / "ui-screenshot.png"


async def run_job(s: Served, job_id: str, *, count: int = 1, namespace: str = "default", task: dict[str, Any] = MOCK,
                  headers: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """Register a job and wait until all its allocations run; returns their IDs (sorted)."""
    r = await s.client.put(
        "/v1/jobs", json=example_job(job_id, count=count, namespace=namespace, **task), headers=headers
    )
    assert r.status_code == 200, r.text
    state = s.service.model.state

    def ids() -> list[str]:
        return sorted(
            i for i, a in state.allocs.items() if a.alloc.JobID == job_id and a.alloc.Namespace == namespace
        )

    await wait_until(
        s.service,
        lambda: len(ids()) == count and all(state.allocs[i].alloc.ClientStatus == "running" for i in ids()),
    )
    return ids()


def row_ids(rows: list[str]) -> list[str]:
    """The short IDs in the list's rows (first column)."""
    return sorted(r.split()[0] for r in rows if r and r != "No allocations")


async def list_rows(page: Browser, expected: list[str]) -> None:
    """Wait until the list shows exactly these allocations (by short ID)."""
    want = sorted(i[:8] for i in expected)

    def check(driver: webdriver.Chrome) -> bool:
        return row_ids(driver.execute_script(TEXTS_OF, "#alloc-rows tr")) == want

    try:
        await page.wait_for(check)
    except Exception:
        await page.screenshot("rows-timeout")
        raise


def api_requests(events: list[dict[str, Any]], path: str) -> list[str]:
    return [e["url"] for e in events if e["kind"] == "http" and path in e["url"]]


# --- allocations page -----------------------------------------------------------------------------


async def test_list_updates_live_when_a_job_is_registered(served: Served, page: Browser) -> None:
    await page.open("/")  # Nomad's redirect to /ui/
    assert (await page.run(lambda: page.driver.current_url)).startswith(served.base_url + "/ui/")
    await page.wait_text("#alloc-rows", lambda t: t == "No allocations")

    ids = await run_job(served, "web", count=2)
    await list_rows(page, ids)
    await page.wait_text("#alloc-rows", lambda t: t.count("running run") == 2)  # ClientStatus, DesiredStatus
    rows = await page.texts("#alloc-rows tr")
    assert all(r.split()[1:4] == ["web", "app", "default"] for r in rows), rows
    link = await page.find("#alloc-rows a")
    assert await page.run(link.get_attribute, "title") in ids
    await page.screenshot("live-list")

    # Live through blocking queries: the pending request carries index and wait, and an idle page
    # sends nothing more (a polling loop would).
    requests = api_requests(await page.network(), "/v1/allocations")
    assert requests, "the list was never requested"
    assert "index=" in requests[-1], requests[-1]
    assert "wait=5m" in requests[-1], requests[-1]
    await trio.sleep(1.5)
    assert api_requests(await page.network(), "/v1/allocations") == []

    # A change wakes the pending request at once.
    more = await run_job(served, "db", count=1)
    await list_rows(page, ids + more)


async def test_namespace_selector_filter_prefix_and_pagination(served: Served, page: Browser) -> None:
    r = await served.client.put("/v1/namespace/prod", json={"Name": "prod"})
    assert r.status_code == 200, r.text
    web = await run_job(served, "web", count=2)
    api = await run_job(served, "api", namespace="prod")

    await page.open("/ui/")
    await list_rows(page, web)
    await page.wait_for(lambda d: len(d.find_elements("css selector", "#namespace option")) == 3)
    assert await page.texts("#namespace option") == ["all namespaces", "default", "prod"]

    await page.select("#namespace", "prod")
    await list_rows(page, api)
    assert "namespace=prod" in await page.run(lambda: page.driver.current_url)
    await page.select("#namespace", "*")
    await list_rows(page, web + api)
    await page.screenshot("all-namespaces")

    await page.type_into("#filter", 'JobID == "api"\n')
    await list_rows(page, api)
    await page.type_into("#filter", "JobID ==\n")
    message = await page.wait_text("#list-error", lambda t: t.startswith("Could not list allocations (400:"))
    assert "filter" in message.lower(), message
    await page.screenshot("bad-filter")
    await page.type_into("#filter", "\n")
    await page.wait_text("#list-error", lambda t: t == "")  # hidden again

    await page.type_into("#prefix", web[1][:6] + "\n")
    await list_rows(page, [web[1]])
    await page.type_into("#prefix", "\n")

    await page.open("/ui/#/allocations?namespace=*&per_page=1")
    seen: list[str] = []
    for number in range(1, 4):
        await page.wait_text("#list-status", lambda t, n=number: t == f"page {n} · 1 shown")  # type: ignore[misc]
        seen += row_ids(await page.texts("#alloc-rows tr"))
        if number < 3:
            await page.click("#page-next")
    assert sorted(seen) == sorted(i[:8] for i in web + api)
    assert await page.run((await page.find("#page-next")).get_attribute, "disabled") is not None
    await page.click("#page-prev")
    await page.wait_text("#list-status", lambda t: t == "page 2 · 1 shown")


async def test_server_data_is_shown_as_text_never_as_html(served: Served, page: Browser) -> None:
    job_id = "<img/src=x/onerror=window.pwned=1>"
    body = example_job(job_id, count=1, **MOCK)
    body["Job"]["TaskGroups"][0]["Name"] = "<b>grp</b>"
    r = await served.client.put("/v1/jobs", json=body)
    assert r.status_code == 200, r.text
    await wait_until(served.service, lambda: len(served.service.model.state.allocs) == 1)
    alloc_id = next(iter(served.service.model.state.allocs))

    await page.open("/ui/")
    row = await page.wait_text("#alloc-rows", lambda t: job_id in t)
    assert "<b>grp</b>" in row
    await page.open(f"/ui/#/allocation/{alloc_id}")
    await page.wait_text("#alloc-summary", lambda t: job_id in t and "<b>grp</b>" in t)
    assert await page.find_all("#view img") == []
    assert await page.find_all("#view b") == []
    assert await page.script("return window.pwned === undefined")


# --- allocation page ------------------------------------------------------------------------------


async def test_allocation_page_shows_task_states_events_and_history(served: Served, page: Browser) -> None:
    [alloc_id] = await run_job(served, "web")
    await page.open("/ui/")
    await list_rows(page, [alloc_id])
    await page.click("#alloc-rows a")  # from the list to the allocation page

    events = await page.wait_text(
        'section.task[data-task="server"] table.events', lambda t: "Task started by client" in t
    )
    for line in (
        "Received Task received by client",
        "Task Setup Building Task Directory",
        "Started Task started by client",
    ):
        assert line in events, events
    summary = await page.wait_text("#alloc-summary", lambda t: alloc_id in t or "running" in t)
    assert "web.app[0]" in summary
    assert "running" in summary
    assert alloc_id in (await page.find("h1")).text

    timeline = await page.wait_text("#timeline", lambda t: "Task started by client" in t)
    types = await page.script(
        "return [...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)"
    )
    assert types[:4] == ["AllocPlaced", "Received", "Task Setup", "Started"], types
    assert "allocation" in timeline
    assert "Placed on" in timeline
    await page.screenshot("allocation")


async def test_restart_from_the_ui_shows_up_in_the_timeline(served: Served, page: Browser) -> None:
    [alloc_id] = await run_job(served, "web")
    await page.open(f"/ui/#/allocation/{alloc_id}")
    await page.wait_text("#timeline", lambda t: "Task started by client" in t)

    # Cancelling the confirmation does nothing.
    await page.click("section.task .restart-task")
    await page.wait_for(lambda d: d.find_element("id", "confirm").get_attribute("open") is not None)
    assert "Restart task server?" in (await page.find("#confirm-message")).text
    await page.click("#confirm-cancel")
    await page.wait_for(lambda d: d.find_element("id", "confirm").get_attribute("open") is None)
    assert api_requests(await page.network(), "/restart") == []

    await page.click("section.task .restart-task")
    await page.confirm()
    await page.wait_text("#action-result", lambda t: t == "Restart requested.")
    await page.wait_text(
        "#timeline", lambda t: "Restart Signaled" in t and t.count("Task started by client") == 2
    )
    types = await page.script(
        "return [...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)"
    )
    signaled = types.index("Restart Signaled")
    assert "Started" in types[signaled:], types
    logged = [
        r.event
        for r in await served.service.model.history.stream_records(
            served.service.log, ev.alloc_stream(alloc_id), upto=served.service.log.last_index
        )
    ]
    assert any(isinstance(e, ev.TaskRestartSignaled) for e in logged)
    await page.wait_text('section.task[data-task="server"] .restarts', lambda t: t == "1")
    await page.screenshot("restarted")

    # A signal with confirmation; the driver sees it.
    await page.select("section.task .signal-select", "SIGUSR1")
    await page.click("section.task .signal-task")
    await page.confirm()
    await page.wait_text("#action-result", lambda t: t == "Signal sent.")
    await page.wait_text("#timeline", lambda t: "Signaling" in t)

    # Stop: the allocation stops, the buttons follow, the timeline records it.
    await page.click("#stop-alloc")
    await page.confirm()
    await page.wait_text("#alloc-summary", lambda t: "complete" in t and "stop" in t)
    assert await page.run((await page.find("#stop-alloc")).get_attribute, "disabled") is not None
    await page.wait_text("#timeline", lambda t: "Killed" in t or "Killing" in t)


# --- exec terminal ------------------------------------------------------------------------------


async def wait_terminal(page: Browser, predicate: Any) -> str:
    def check(driver: webdriver.Chrome) -> str | bool:
        text = driver.execute_script(
            "const r = document.querySelector('.xterm-rows'); return r ? r.innerText : ''"
        )
        return text if predicate(text) else False

    try:
        result = await page.wait_for(check)
    except Exception:
        await page.screenshot("terminal-timeout")
        raise
    return str(result)


async def keys(page: Browser, *text: str) -> None:
    area = await page.find(".xterm-helper-textarea")
    await page.run(area.send_keys, *text)


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]


def at_prompt(text: str) -> bool:
    """The shell waits for input: the last non-empty line is its bare prompt."""
    filled = [line for line in lines(text) if line]
    return bool(filled) and filled[-1] in ("#", "$")


def tty_size_line(text: str, other_than: str = "") -> str | None:
    """The last ``stty size`` answer ("rows cols") on the screen, if it differs from ``other_than``."""
    sizes = [
        line for line in lines(text) if len(line.split()) == 2 and all(w.isdigit() for w in line.split())
    ]
    return sizes[-1] if sizes and sizes[-1] != other_than else None


async def test_terminal_runs_echo_hi_resizes_ctrl_c_and_exit_code(served: Served, page: Browser) -> None:
    [alloc_id] = await run_job(served, "shell", task=RAW_EXEC)
    await page.open(f"/ui/#/allocation/{alloc_id}")
    await page.wait_text("section.task", lambda t: "running" in t)
    await page.click("section.task .exec-link")
    await page.wait_text("#exec-status", lambda t: t.startswith("Connected"))

    await wait_terminal(page, at_prompt)
    await keys(page, "echo hi\n")
    await wait_terminal(page, lambda t: "hi" in lines(t) and at_prompt(t))
    await page.screenshot("echo-hi")

    # Resizing the window resizes the task's terminal (tty_size frames).
    await keys(page, "stty size\n")
    before = str(tty_size_line(await wait_terminal(page, lambda t: tty_size_line(t) and at_prompt(t))))
    await page.run(page.driver.set_window_size, 900, 600)
    await keys(page, "clear; stty size\n")
    after = str(
        tty_size_line(await wait_terminal(page, lambda t: tty_size_line(t, before) and at_prompt(t)), before)
    )
    rows_before, cols_before = map(int, before.split())
    rows_after, cols_after = map(int, after.split())
    assert rows_after < rows_before, (before, after)
    assert cols_after < cols_before, (before, after)
    await page.run(page.driver.set_window_size, 1280, 900)

    # Ctrl-C interrupts the foreground command.
    await keys(page, "echo sleeping; sleep 30; echo after-sleep\n")
    await wait_terminal(page, lambda t: "sleeping" in lines(t))
    await keys(page, Keys.CONTROL, "c")
    await wait_terminal(page, at_prompt)
    await keys(page, "echo interrupted\n")
    text = await wait_terminal(page, lambda t: "interrupted" in lines(t))
    assert "after-sleep" not in lines(text)

    await keys(page, "exit 3\n")
    status = await page.wait_text("#exec-status", lambda t: t.startswith("Process exited"))
    assert status == "Process exited with code 3."
    await page.screenshot("exit-code")


# --- ACLs ---------------------------------------------------------------------------------------


@pytest.fixture
async def acl_agent(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[ACLAgent]:
    async for agent in open_acl_agent(tmp_path / "data", nursery):
        await agent.bootstrap()
        yield agent


@pytest.fixture
async def acl_page(
    chromium: webdriver.Chrome, acl_agent: ACLAgent, request: pytest.FixtureRequest
) -> AsyncIterator[Browser]:
    async for browser in attach(chromium, acl_agent.served, request.node.name):
        yield browser


async def test_the_ui_works_with_an_acl_token(acl_agent: ACLAgent, acl_page: Browser) -> None:
    page = acl_page
    await acl_agent.namespace("secret")
    rules = 'namespace "default" { capabilities = ["read-job", "alloc-exec", "alloc-node-exec"] }'
    await acl_agent.policy("viewer", rules)
    token = await acl_agent.token("viewer")
    secret = token["SecretID"]
    visible = await run_job(acl_agent.served, "web", headers=acl_agent.mgmt())
    await run_job(acl_agent.served, "hidden", namespace="secret", headers=acl_agent.mgmt())

    await page.open("/ui/")
    await page.wait_text("#list-error", lambda t: "403: Permission denied" in t)
    await page.screenshot("anonymous")

    await page.type_into("#token-input", secret)
    await page.click("#token-save")
    await page.wait_text("#token-status", lambda t: t == "token: viewer")
    await list_rows(page, visible)
    assert await page.script("return sessionStorage.getItem('allocsvc.token')") == secret
    await page.select("#namespace", "*")
    await list_rows(page, visible)  # the other namespace stays invisible

    # Lifecycle needs alloc-lifecycle: the error is shown, nothing happens.
    await page.open(f"/ui/#/allocation/{visible[0]}")
    await page.wait_text("#timeline", lambda t: "Task started by client" in t)
    await page.click("section.task .restart-task")
    await page.confirm()
    await page.wait_text("#alloc-error", lambda t: t == "Restart requested failed (403: Permission denied)")
    await page.screenshot("permission-denied")

    # Exec with the token in the handshake frame.
    await page.open(f"/ui/#/allocation/{visible[0]}/exec/server")
    await page.wait_text("#exec-status", lambda t: t.startswith("Connected"))
    await wait_terminal(page, at_prompt)
    await keys(page, "echo hi\n")
    await wait_terminal(page, lambda t: "hi" in lines(t))

    # The token went only to this origin, in a header, never in a URL; the WebSocket got no header.
    events = await page.network()
    origin = acl_agent.served.base_url
    ws_origin = origin.replace("http://", "ws://", 1)
    assert [e for e in events if e["kind"] == "ws"], events
    for event in events:
        assert secret not in event["url"]
        if event["kind"] == "http" and event["url"].startswith("http"):
            assert event["url"].startswith(origin + "/"), event["url"]
        if event["kind"] == "ws":
            assert event["url"].startswith(ws_origin + "/v1/client/allocation/")
            assert "ws_handshake=true" in event["url"]
        if secret in event["headers"].values():
            assert event["kind"] == "http", event
            assert "/v1/" in event["url"], event
    assert secret not in await page.run(lambda: page.driver.current_url)

    # Clearing the token drops it from storage and the list is refused again.
    await page.open("/ui/")
    await list_rows(page, visible)
    await page.click("#token-clear")
    await page.wait_text("#list-error", lambda t: "403: Permission denied" in t)
    assert await page.script("return sessionStorage.getItem('allocsvc.token')") is None


# --- README screenshot ----------------------------------------------------------------------------


async def test_readme_screenshot(tmp_path: Path, nursery: trio.Nursery, chromium: webdriver.Chrome) -> None:
    """Render the allocation page of a restarted task; with ALLOCSVC_UPDATE_SCREENSHOT=1 it becomes
    design/ui-screenshot.png (the README's picture)."""
    config = AgentConfig(data_dir=str(tmp_path / "data"), port=0, dev=True)
    async for served in open_served(config, nursery):
        async for page in attach(chromium, served, "readme"):
            await run_job(served, "api", count=2)
            [alloc_id] = await run_job(served, "web")
            r = await served.client.post(
                f"/v1/client/allocation/{alloc_id}/restart", json={"TaskName": "server"}
            )
            assert r.status_code == 200, r.text
            await page.open(f"/ui/#/allocation/{alloc_id}")
            await page.wait_text("#timeline", lambda t: t.count("Task started by client") == 2)
            await page.run(page.driver.set_window_size, 1280, 1400)
            shot = await page.screenshot("readme")
            await page.run(page.driver.set_window_size, 1280, 900)
            assert shot.stat().st_size > 10_000
            if os.environ.get("ALLOCSVC_UPDATE_SCREENSHOT") == "1":
                SCREENSHOT.write_bytes(shot.read_bytes())
