"""Routes under /api/v1/jobs: follow a long operation; admins manage the dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from impextech.jobs.domain.model import Job, JobState
from impextech.jobs.service.jobs import JobsService
from impextech.kernel.callers import CurrentPrincipal
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.domain.errors import Conflict
from impextech.kernel.pagination import (
    after_cursor,
    page_response,
    position_to_json,
    time_position_from_json,
)
from impextech.kernel.web import StrictJsonRoute, json_response, problem_responses


class JobHasNoResult(Conflict):
    code = "job-has-no-result"
    title = "The job has not succeeded, so it has no result"


class JobsWeb:
    """What the HTTP edge needs, stored on ``app.state.jobs``."""

    def __init__(self, service: JobsService, cursors: CursorCodec) -> None:
        self.service = service
        self.cursors = cursors


def _web(request: Request) -> JobsWeb:
    web: JobsWeb = request.app.state.jobs
    return web


class ProgressOut(BaseModel):
    done: int
    total: int | None
    percent: float | None


class JobLinks(BaseModel):
    self: str
    result: str | None = Field(description="Where the result is, once the job succeeded")


class JobOut(BaseModel):
    id: UUID
    kind: str
    state: JobState = Field(
        description="queued: waiting to run; running; succeeded; failed: the last attempt "
        "failed and another is scheduled at next_attempt_at; dead: no attempt left (see "
        "last_error); discarded: an admin gave up on it"
    )
    attempts: int
    max_attempts: int
    progress: ProgressOut | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    links: JobLinks


class JobPageOut(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class JobSummaryOut(BaseModel):
    by_state: dict[JobState, int]
    oldest_waiting_seconds: float | None = Field(
        description="Age of the oldest job still waiting to run (queued or failed)"
    )


def job_location(job_id: UUID) -> str:
    return f"/api/v1/jobs/{job_id}"


def job_json(job: Job) -> dict[str, Any]:
    progress = None
    if job.progress_done is not None:
        total = job.progress_total
        percent = round(100 * job.progress_done / total, 1) if total else None
        progress = {"done": job.progress_done, "total": total, "percent": percent}
    location = job_location(job.id)
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": progress,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "next_attempt_at": job.next_attempt_at,
        "links": {
            "self": location,
            "result": f"{location}/result" if job.state is JobState.SUCCEEDED else None,
        },
    }


router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], route_class=StrictJsonRoute)


class JobFilters(BaseModel):
    state: JobState | None = None
    cursor: str | None = Field(default=None, max_length=512, description="From next_cursor")
    limit: int = Field(default=20, ge=1, le=100)


@router.get(
    "",
    response_model=JobPageOut,
    responses=problem_responses(401, 403),
    summary="List this marketplace's jobs, newest first (admins)",
)
async def list_jobs(
    request: Request, principal: CurrentPrincipal, filters: Annotated[JobFilters, Query()]
) -> Response:
    web = _web(request)
    shape = f"jobs:{filters.state.value if filters.state else '*'}"
    after = after_cursor(
        web.cursors, filters.cursor, principal.tenant_id, shape, time_position_from_json
    )
    page = await web.service.list(principal, filters.state, after, filters.limit)
    items = [job_json(j) for j in page.items]
    return page_response(
        web.cursors, principal.tenant_id, shape, items, page.next_position, position_to_json
    )


@router.get(
    "/summary",
    response_model=JobSummaryOut,
    responses=problem_responses(401, 403),
    summary="Jobs by state and the age of the oldest waiting one (admins)",
)
async def summary(request: Request, principal: CurrentPrincipal) -> Response:
    web = _web(request)
    seen = await web.service.summary(principal)
    waiting = seen.oldest_waiting
    return json_response(
        {
            "by_state": {state.value: n for state, n in seen.by_state.items()},
            "oldest_waiting_seconds": None
            if waiting is None
            else round(waiting.total_seconds(), 3),
        }
    )


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses=problem_responses(401, 404),
    summary="Follow a job you started (admins: any job of this marketplace)",
)
async def get_job(job_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
    return json_response(job_json(await _web(request).service.get(principal, job_id)))


@router.get(
    "/{job_id}/result",
    responses=problem_responses(401, 404, 409),
    summary="A succeeded job's result document (its shape depends on the job's kind)",
)
async def get_result(job_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
    job = await _web(request).service.get(principal, job_id)
    if job.state is not JobState.SUCCEEDED:
        raise JobHasNoResult(f"job {job_id} is {job.state.value}")
    return json_response(job.result or {})


@router.post(
    "/{job_id}/retry",
    response_model=JobOut,
    responses=problem_responses(401, 403, 404, 409),
    summary="Run a dead job again with a fresh set of attempts (admins)",
)
async def retry_job(job_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
    return json_response(job_json(await _web(request).service.retry(principal, job_id)))


@router.post(
    "/{job_id}/discard",
    response_model=JobOut,
    responses=problem_responses(401, 403, 404, 409),
    summary="Give up on a dead job: it leaves the dead letters (admins)",
)
async def discard_job(job_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
    return json_response(job_json(await _web(request).service.discard(principal, job_id)))
