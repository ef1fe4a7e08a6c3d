"""The HTTP edge shared by every context: problem+json, safe text types, common responses."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictInt,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, to_json

from impextech.kernel.domain.errors import (
    BadRequest,
    Conflict,
    FieldIssue,
    Forbidden,
    ImpextechError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
    UpstreamFailed,
)
from impextech.kernel.domain.text import (
    BIDI_CONTROLS,
    MULTI_LINE_FORBIDDEN,
    SINGLE_LINE_FORBIDDEN,
    multi_line,
    single_line,
)

PROBLEM_BASE = "https://impextech.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class _Pattern:
    """Publishes a rule the validators enforce as the JSON Schema ``pattern`` of the field.

    Only the document gets it: the validator is the rule itself, and pydantic's own regex
    engine does not read every escape that Python's and ECMA-262's do.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


# What str.strip() removes that the single-line rules do not already refuse: a value of only
# these is blank.
_SPACES = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SINGLE = SINGLE_LINE_FORBIDDEN + BIDI_CONTROLS
SINGLE_LINE_PATTERN = f"^[^{_SINGLE}]*[^{_SINGLE}{_SPACES}][^{_SINGLE}]*$"
MULTI_LINE_PATTERN = f"^[^{MULTI_LINE_FORBIDDEN}{BIDI_CONTROLS}]*$"

SingleLine = Annotated[str, AfterValidator(single_line), _Pattern(SINGLE_LINE_PATTERN)]
MultiLine = Annotated[str, AfterValidator(multi_line), _Pattern(MULTI_LINE_PATTERN)]


def _integral(value: object) -> object:
    # JSON has one kind of number and JSON Schema's "integer" is any number without a
    # fraction, so 12900.0 is the integer 12900; 12900.5, "12900" and true stay refused.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
"""Makes a ``StrictInt`` an integer as JSON Schema means it. Put it last, after the bounds:
``Annotated[StrictInt, Field(ge=0, le=9), INTEGRAL]`` (bounds given after it are published as
"ge"/"le" where a field is optional, keywords JSON Schema does not know)."""
JsonInt = Annotated[StrictInt, INTEGRAL]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused (no mass assignment).

    Integers use ``JsonInt`` so "12" or 12.5 is refused rather than coerced; a model-wide
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


def json_response(document: object, status_code: int = 200, **headers: str) -> Response:
    """A JSON answer serialised in one pass by pydantic-core (UUIDs and datetimes included)."""
    return Response(
        to_json(document), status_code=status_code, media_type="application/json", headers=headers
    )


def required_header(name: str, description: str, pattern: str) -> dict[str, Any]:
    """``openapi_extra`` for a header the route reads itself because its absence has its own
    answer (428 for If-Match) rather than the generic 422 a required parameter would give."""
    parameter = {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }
    return {"parameters": [parameter]}


# ``openapi_extra`` for a route that takes a bearer token but also answers without one: the
# empty requirement is OpenAPI's way of saying "or no credentials at all".
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}]}


def issues_to_errors(issues: tuple[FieldIssue, ...]) -> list[dict[str, Any]]:
    return [{"path": list(i.path), "message": i.message} for i in issues]


# The one table that decides the HTTP status of every error: by its category, the nearest one in
# its class's method resolution order. An uncategorised ImpextechError is an internal error.
STATUS_BY_CATEGORY: dict[type[ImpextechError], int] = {
    BadRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    TooLarge: 413,
    UnsupportedMedia: 415,
    InvalidInput: 422,
    PreconditionRequired: 428,
    RateLimited: 429,
    UpstreamFailed: 502,
    Unavailable: 503,
}


def status_of(exc: ImpextechError) -> int:
    for cls in type(exc).__mro__:
        status = STATUS_BY_CATEGORY.get(cls)
        if status is not None:
            return status
    return 500


def error_response(request: Request | None, exc: ImpextechError) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    errors = issues_to_errors(exc.issues) if isinstance(exc, InvalidInput) else None
    return problem_response(
        request, status, exc.code, exc.title, exc.detail, errors=errors, headers=headers
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
