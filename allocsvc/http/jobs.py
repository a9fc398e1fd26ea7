"""Nomad's job and namespace endpoints, the way allocations come into being.

Owns ``PUT|POST /v1/jobs``, ``GET /v1/jobs``, ``GET|DELETE /v1/job/:id``,
``GET /v1/job/:id/allocations``, ``GET /v1/namespaces`` and ``/v1/namespace/:name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from quart import Blueprint, Response, request

from allocsvc.domain.model import Job, JobRegisterRequest, Namespace, is_terminal_client_status
from allocsvc.errors import BadRequestError, MethodNotAllowedError, PermissionDeniedError
from allocsvc.http.auth import authorizer_for
from allocsvc.http.query import bool_param, parse_list_options
from allocsvc.http.responses import (
    empty_response,
    error_response,
    json_bytes_response,
    json_response,
    meta_headers,
)
from allocsvc.views.blocking import QueryResult, blocking_query
from allocsvc.views.wire import encode

if TYPE_CHECKING:
    from allocsvc.service import Service

_register_decoder = msgspec.json.Decoder(JobRegisterRequest)
_namespace_decoder = msgspec.json.Decoder(Namespace)


def decode_body(data: bytes, decoder: msgspec.json.Decoder[Any]) -> Any:
    """Decode a JSON body; a client mistake is a 400 naming the problem."""
    if not data.strip():
        raise BadRequestError("Request body is empty")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequestError(f"Failed to decode body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"Failed to decode body: {exc}") from exc


def job_status(service: Service, job: Job, stopped: bool) -> str:
    """Nomad's job status: pending with no live allocs, running with any, dead when stopped and done."""
    allocs = service.model.allocs_of_job(job.namespace, job.id)
    live = [a for a in allocs if not is_terminal_client_status(a.alloc.ClientStatus)]
    if live:
        return "running"
    if stopped or (allocs and job.type in ("batch", "sysbatch")):
        return "dead"
    return "pending"


def job_routes(service: Service) -> Blueprint:
    """Job and namespace endpoints bound to one service."""
    bp = Blueprint("jobs", __name__)

    @bp.route("/v1/jobs", methods=["GET", "PUT", "POST", "DELETE"])
    async def jobs() -> Response:
        if request.method == "GET":
            return await list_jobs()
        if request.method not in ("PUT", "POST"):
            raise MethodNotAllowedError()
        return await register_job(None)

    async def register_job(path_id: str | None) -> Response:
        body = decode_body(await request.get_data(cache=True, as_text=False, parse_form_data=False), _register_decoder)
        job = body.job
        if job is None:
            raise BadRequestError("Job must be specified")
        if path_id is not None and job.id != path_id:
            raise BadRequestError("Job ID does not match name")
        namespace = job.namespace or request.args.get("namespace", "") or "default"
        job = msgspec.structs.replace(job, namespace=namespace)
        authz = authorizer_for(service, request.headers)
        if not authz.allow_namespace_op(namespace, "submit-job"):
            raise PermissionDeniedError()
        result = await service.scheduler.register(job)
        return json_response(
            {
                "EvalID": result.eval_id,
                "EvalCreateIndex": result.eval_create_index,
                "JobModifyIndex": result.job_modify_index,
                "Warnings": "",
                "Index": result.index,
                "LastContact": 0,
                "KnownLeader": False,
                "NextToken": "",
            },
            headers={"X-Nomad-Index": str(result.index)},
        )

    async def list_jobs() -> Response:
        opts = parse_list_options(request.args)
        authz = authorizer_for(service, request.headers)
        if not authz.allow_namespace_op(opts.namespace, "list-jobs") and not authz.allow_namespace_op(
            opts.namespace, "read-job"
        ):
            raise PermissionDeniedError()
        allowed = (
            authz.allowed_namespaces("read-job", service.model.namespaces()) if opts.namespace == "*" else {opts.namespace}
        )

        def run() -> QueryResult[list[dict[str, Any]]]:
            out = []
            for (ns, _), record in sorted(service.model.state.jobs.items()):
                if ns not in allowed or record.purged:
                    continue
                job = record.current
                if opts.prefix and not job.id.startswith(opts.prefix):
                    continue
                out.append(
                    {
                        "ID": job.id,
                        "ParentID": job.parent_id,
                        "Name": job.name,
                        "Namespace": job.namespace,
                        "Datacenters": job.datacenters,
                        "NodePool": job.node_pool,
                        "Type": job.type,
                        "Priority": job.priority,
                        "Periodic": job.periodic is not None,
                        "ParameterizedJob": job.parameterized_job is not None,
                        "Stop": job.stop,
                        "Status": job_status(service, job, record.stopped),
                        "StatusDescription": job.status_description,
                        "JobSummary": None,
                        "CreateIndex": job.create_index,
                        "ModifyIndex": job.modify_index,
                        "JobModifyIndex": job.job_modify_index,
                        "SubmitTime": job.submit_time,
                    }
                )
            return QueryResult(service.model.index("jobs"), out, ("table:jobs",))

        result = await blocking_query(service.model.hub, opts.query, run)
        return json_response(result.value, headers=meta_headers(result.index))

    @bp.route("/v1/job/<job_id>", methods=["GET", "PUT", "POST", "DELETE"])
    async def job(job_id: str) -> Response:
        namespace = request.args.get("namespace", "") or "default"
        authz = authorizer_for(service, request.headers)
        if request.method == "DELETE":
            if not authz.allow_namespace_op(namespace, "submit-job"):
                raise PermissionDeniedError()
            purge = bool_param(request.args, "purge", False)
            eval_id, index = await service.scheduler.deregister(namespace, job_id, purge=purge)
            return json_response(
                {"EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index, "Index": index,
                 "LastContact": 0, "KnownLeader": False, "NextToken": ""},
                headers={"X-Nomad-Index": str(index)},
            )  # fmt: skip
        if request.method in ("PUT", "POST"):
            return await register_job(job_id)
        opts = parse_list_options(request.args)
        if not authz.allow_namespace_op(namespace, "read-job"):
            raise PermissionDeniedError()

        def run() -> QueryResult[Job | None]:
            record = service.model.state.jobs.get((namespace, job_id))
            if record is None or record.purged:
                return QueryResult(service.model.index("jobs"), None, ("table:jobs",))
            current = msgspec.structs.replace(record.current, status=job_status(service, record.current, record.stopped))
            return QueryResult(record.current.modify_index, current, (f"job:{namespace}/{job_id}", "table:allocs"))

        result = await blocking_query(service.model.hub, opts.query, run)
        if result.value is None:
            return error_response(404, "job not found", headers=meta_headers(result.index))
        return json_bytes_response(encode(result.value), headers=meta_headers(result.index))

    @bp.route("/v1/job/<job_id>/allocations", methods=["GET"])
    async def job_allocs(job_id: str) -> Response:
        opts = parse_list_options(request.args)
        namespace = opts.namespace
        authz = authorizer_for(service, request.headers)
        if not authz.allow_namespace_op(namespace, "read-job"):
            raise PermissionDeniedError()

        def run() -> QueryResult[list[bytes]]:
            allocs = service.model.allocs_of_job(namespace, job_id)
            return QueryResult(
                service.model.index("allocs"), [service.model.encoded_stub(a) for a in allocs], ("table:allocs",)
            )

        result = await blocking_query(service.model.hub, opts.query, run)
        return json_bytes_response(b"[" + b",".join(result.value) + b"]", headers=meta_headers(result.index))

    @bp.route("/v1/namespaces", methods=["GET"])
    async def namespaces() -> Response:
        opts = parse_list_options(request.args)
        authz = authorizer_for(service, request.headers)

        def run() -> QueryResult[list[Namespace]]:
            names = sorted(service.model.state.namespaces)
            visible = [service.model.state.namespaces[n] for n in names if authz.is_management or authz.allowed_namespaces("list-jobs", [n]) or authz.allowed_namespaces("read-job", [n])]
            return QueryResult(service.model.index("namespaces"), visible, ("table:namespaces",))

        result = await blocking_query(service.model.hub, opts.query, run)
        return json_response(result.value, headers=meta_headers(result.index))

    @bp.route("/v1/namespace/", defaults={"name": ""}, methods=["GET", "PUT", "POST", "DELETE"])
    @bp.route("/v1/namespace/<name>", methods=["GET", "PUT", "POST", "DELETE"])
    async def namespace(name: str) -> Response:
        authz = authorizer_for(service, request.headers)
        if request.method == "GET":
            if not name:
                raise BadRequestError("Missing Namespace Name")
            ns = service.model.state.namespaces.get(name)
            if ns is None or not (authz.is_management or authz.allowed_namespaces("read-job", [name]) or authz.allowed_namespaces("list-jobs", [name])):
                return error_response(404, "namespace not found", headers=meta_headers(service.model.index("namespaces")))
            return json_response(ns, headers=meta_headers(service.model.index("namespaces")))
        if not authz.is_management:
            raise PermissionDeniedError()
        if request.method == "DELETE":
            index = await service.scheduler.delete_namespace(name)
            return empty_response(headers={"X-Nomad-Index": str(index)})
        body = decode_body(await request.get_data(cache=True, as_text=False, parse_form_data=False), _namespace_decoder)
        if name and body.Name and body.Name != name:
            raise BadRequestError("Namespace name does not match request path")
        body = msgspec.structs.replace(body, Name=body.Name or name)
        index = await service.scheduler.upsert_namespace(body)
        return empty_response(headers={"X-Nomad-Index": str(index)})

    return bp
