"""Workload operations carried out through the HTTP app, the way a user or the CLI would.

Owns ``HttpOps``: job registration, scale changes, deregistration, namespace creation and the
allocation stop/signal/restart calls, each one request through the Quart test client. Every
answer is counted by operation and status; an acknowledged command becomes an ``Expectation``
for the invariant checker (its event must reach the log), and an unexpected 500 (an unhandled
exception in the app) is a violation.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

from allocsvc.domain.events import alloc_stream, eval_stream, job_stream
from allocsvc.sim.invariants import Checker, Expectation
from allocsvc.sim.workload import JobPlan, Op

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

    from allocsvc.service import Service

INTERNAL_ERROR_PREFIX = b"internal error"


class Answer(msgspec.Struct, frozen=True):
    """One HTTP answer: status, body and the ``X-Nomad-Index`` header (0 when absent)."""

    status: int
    body: bytes
    index: int


class HttpOps:
    """Issues the workload's requests and records what they acknowledged."""

    def __init__(self, client: TestClientProtocol, service: Service, checker: Checker, counts: Counter[str]) -> None:
        self.client = client
        self.service = service
        self.checker = checker
        self.counts = counts

    async def request(self, op: str, method: str, path: str, *, json: Any = None, query: dict[str, str] | None = None) -> Answer:
        """Send one request; count it as ``op:status`` and flag unhandled server errors."""
        kwargs: dict[str, Any] = {"method": method, "query_string": query}
        if json is not None:
            kwargs["json"] = json
        response = await self.client.open(path, **kwargs)
        body = await response.get_data(as_text=False)
        self.counts[f"{op}:{response.status_code}"] += 1
        self.checker.check_now(
            "no_internal_errors",
            not (response.status_code >= 500 and body.startswith(INTERNAL_ERROR_PREFIX)),
            f"{method} {path} answered {response.status_code} {body[:200]!r}",
        )
        index = response.headers.get("X-Nomad-Index", "0")
        return Answer(response.status_code, body, int(index) if index.isdigit() else 0)

    def _last_index(self) -> int:
        return self.service.log.last_index

    # --- namespaces and jobs ----------------------------------------------------------------------

    async def create_namespace(self, name: str) -> None:
        """``PUT /v1/namespace/:name``."""
        await self.request("namespace", "PUT", f"/v1/namespace/{name}", json={"Name": name, "Description": "simulation"})

    async def register(self, plan: JobPlan, body: dict[str, Any], op: str = "register") -> None:
        """``PUT /v1/jobs``; a new version must show up as ``JobRegistered`` at ``JobModifyIndex``."""
        answer = await self.request(op, "PUT", "/v1/jobs", json=body)
        if answer.status != 200:
            return
        reply = msgspec.json.decode(answer.body)
        if not reply.get("EvalID"):
            return
        job_index = int(reply["JobModifyIndex"])
        stream = job_stream(plan.namespace, plan.job_id)
        what = f"{op} of {plan.namespace}/{plan.job_id} acknowledged at {job_index}"
        self.checker.expect(Expectation(stream=stream, event_type="JobRegistered", attrs={}, lo=job_index - 1, hi=job_index, what=what))
        eval_index = int(reply["EvalCreateIndex"])
        self.checker.expect(
            Expectation(stream=eval_stream(reply["EvalID"]), event_type="EvalCreated", attrs={}, lo=eval_index - 1, hi=eval_index, what=what)
        )

    async def deregister(self, plan: JobPlan) -> None:
        """``DELETE /v1/job/:id``; the job's stream must record ``JobDeregistered``."""
        before = self._last_index()
        answer = await self.request("deregister", "DELETE", f"/v1/job/{plan.job_id}", query={"namespace": plan.namespace})
        if answer.status == 200:
            self.checker.expect(
                Expectation(
                    stream=job_stream(plan.namespace, plan.job_id),
                    event_type="JobDeregistered",
                    attrs={},
                    lo=before,
                    hi=answer.index,
                    what=f"deregister of {plan.namespace}/{plan.job_id} acknowledged at {answer.index}",
                )
            )

    # --- allocation lifecycle ---------------------------------------------------------------------

    async def alloc_op(self, op: Op, alloc_id: str, tasks: tuple[str, ...]) -> None:
        """Carry out one stop, signal or restart on an allocation."""
        if op.kind == "stop":
            await self._stop(op, alloc_id)
            return
        task = tasks[op.task_index % len(tasks)] if op.task_index >= 0 and tasks else ""
        before = self._last_index()
        if op.kind == "signal":
            body: dict[str, Any] = {"Signal": op.signal}
            if task:
                body["Task"] = task
            event_type = "TaskSignaled"
        else:
            body = {"AllTasks": True} if op.all_tasks else ({"TaskName": task} if task else {})
            event_type = "TaskRestartSignaled"
        answer = await self.request(op.kind, "POST", f"/v1/client/allocation/{alloc_id}/{op.kind}", json=body)
        # Restarting "the running tasks" (or all tasks) when none qualifies succeeds with no event.
        if answer.status == 200 and (op.kind == "signal" or task):
            self.checker.expect(
                Expectation(
                    stream=alloc_stream(alloc_id),
                    event_type=event_type,
                    attrs={"task": task} if task else {},
                    lo=before,
                    hi=self._last_index(),
                    what=f"{op.kind} of {alloc_id} acknowledged",
                )
            )

    async def _stop(self, op: Op, alloc_id: str) -> None:
        before = self._last_index()
        query = {"no_shutdown_delay": "true"} if op.no_shutdown_delay else None
        answer = await self.request("stop", "POST", f"/v1/allocation/{alloc_id}/stop", query=query)
        if answer.status != 200:
            return
        reply = msgspec.json.decode(answer.body)
        eval_id, index = str(reply["EvalID"]), int(reply["Index"])
        what = f"stop of {alloc_id} acknowledged at {index}"
        self.checker.expect(
            Expectation(stream=alloc_stream(alloc_id), event_type="AllocStopRequested", attrs={"eval_id": eval_id}, lo=before, hi=index, what=what)
        )
        self.checker.expect(Expectation(stream=eval_stream(eval_id), event_type="EvalCreated", attrs={}, lo=before, hi=index, what=what))
