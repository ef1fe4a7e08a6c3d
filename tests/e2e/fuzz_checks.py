"""A schemathesis check loaded into the fuzzing run (tests/e2e/test_openapi_fuzz.py).

The built-in positive-data check must let 400, 412 and 422 through: a request can match the
document and still be refused for what no JSON Schema can say (a stale ETag, a forged cursor,
a common password, min_price above max_price, a CSV file's rows). This check takes the 400s
and 422s back: every one that answers a schema-valid request must be one of those refusals,
never a field rule the document leaves out.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

PROBLEM = "https://impextech.example/problems/"
# Refusals of well-formed input that depend on state, on secrets the server mints or on lists
# no schema carries.
BEYOND_ANY_SCHEMA = {
    PROBLEM + code
    for code in (
        "weak-password",
        "invalid-reset-token",
        "malformed-csv",
        "invalid-import-file",
        "import-too-large",
    )
}
# Field-level refusals no schema can state: the cursor is a signed token minted by the server;
# min_price above max_price compares two parameters.
BEYOND_ANY_SCHEMA_FIELDS = {("query", "cursor"), ("query", "min_price")}


@schemathesis.check
def schema_valid_input_is_refused_only_for_what_no_schema_can_say(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    problem: dict[str, Any] = response.json()
    if problem.get("type") in BEYOND_ANY_SCHEMA:
        return None
    fields = {tuple(error.get("path", ())) for error in problem.get("errors") or [{}]}
    if problem.get("type") == PROBLEM + "validation-failed" and fields <= BEYOND_ANY_SCHEMA_FIELDS:
        return None
    raise AssertionError(f"a request the document allows was refused: {problem}")
