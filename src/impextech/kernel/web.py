"""The HTTP edge shared by every context: problem+json, safe text types, common responses."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from impextech.kernel.domain.errors import FieldIssue, ImpextechError, InvalidInput
from impextech.kernel.domain.text import multi_line, single_line

PROBLEM_BASE = "https://impextech.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

SingleLine = Annotated[str, AfterValidator(single_line)]
MultiLine = Annotated[str, AfterValidator(multi_line)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused (no mass assignment).

    Numbers use ``StrictInt`` so "12" or 12.0 is refused rather than coerced; a model-wide
    strict mode would also refuse JSON strings for enums and UUIDs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For validation problems: each invalid field and why."
    )


def problem_response(
    request: Request | None,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail and detail != title:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def issues_to_errors(issues: tuple[FieldIssue, ...]) -> list[dict[str, Any]]:
    return [{"path": list(i.path), "message": i.message} for i in issues]


def error_response(request: Request | None, exc: ImpextechError) -> JSONResponse:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    errors = issues_to_errors(exc.issues) if isinstance(exc, InvalidInput) else None
    return problem_response(
        request, exc.status, exc.code, exc.title, exc.detail, errors=errors, headers=headers
    )


def problem_responses(
    *statuses: int, body: bool = False, inputs: bool = True
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problem+json answers a route may give.

    Every route may answer 500; routes with parameters or headers also 400 and 422; routes
    that take a body also 413 and 415.
    """
    descriptions = {
        400: "Bad request (malformed JSON, missing tenant)",
        401: "Missing, expired or revoked credentials",
        403: "Authenticated but not allowed",
        404: "Not found (or not yours to see)",
        409: "Conflicts with the current state",
        412: "The version in If-Match is not the current one",
        413: "The body is larger than the limit",
        415: "The body is not JSON",
        422: "Invalid fields; `errors` lists each with its path",
        428: "If-Match is required",
        429: "Rate limited; see Retry-After",
        500: "Unexpected server error",
        503: "Not ready",
    }
    common = {500} | ({400, 422} if inputs else set()) | ({413, 415} if body else set())
    schema = Problem.model_json_schema()
    return {
        status: {
            "description": descriptions[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in sorted({*statuses, *common})
    }


def _reject_constant(name: str) -> object:
    # Python's json module accepts NaN and Infinity; RFC 8259 JSON does not.
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
            try:
                self._json = json.loads(text, parse_constant=_reject_constant)
            except RecursionError:
                raise json.JSONDecodeError("the body is nested too deeply", "", 0) from None
        return self._json


class StrictJsonRoute(APIRoute):
    """Routes whose bodies are parsed as standard JSON (no NaN, Infinity or -Infinity)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict
