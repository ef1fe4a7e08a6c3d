"""POST /api/v1/products/imports: a CSV file in, 202 and the job to follow out."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from pydantic_core import to_json

from impextech.catalog.domain.imports import COLUMNS, MAX_COLUMNS, MAX_ROWS
from impextech.catalog.service.imports import ProductImports
from impextech.jobs.api import job_location
from impextech.kernel.callers import CurrentPrincipal
from impextech.kernel.domain.errors import UnsupportedMedia
from impextech.kernel.web import problem_responses


class ImportsWeb:
    """What the import route needs, stored on ``app.state.catalog_imports``."""

    def __init__(self, imports: ProductImports) -> None:
        self.imports = imports


class UnsupportedImportMedia(UnsupportedMedia):
    code = "unsupported-media-type"
    title = "Send the file as text/csv (UTF-8)"


class ImportLinks(BaseModel):
    job: str
    result: str


class ImportAcceptedOut(BaseModel):
    job_id: UUID
    state: str
    links: ImportLinks


_EXAMPLE = (
    ",".join(COLUMNS) + "\nTENT-2P,Blue Tent,Sleeps two,outdoor,12999,EUR,3\n"
    'MUG-1,Mug,"Stoneware, 350 ml",kitchen,899,EUR,40\n'
)
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            f"UTF-8 CSV with a header row naming exactly these columns (any order): "
            f"{', '.join(COLUMNS)}. price_amount is in minor units; at most {MAX_ROWS} rows. "
            f"A header of more than {MAX_COLUMNS} columns is refused as a whole."
        ),
        "content": {"text/csv": {"schema": {"type": "string"}, "example": _EXAMPLE}},
    }
}


def _is_csv(content_type: str | None) -> bool:
    media, _, params = (content_type or "").partition(";")
    if media.strip().lower() != "text/csv":
        return False
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


IMPORTS_PATH = "/api/v1/products/imports"

router = APIRouter(prefix="/api/v1/products", tags=["products"])


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportAcceptedOut,
    responses=problem_responses(401, 403, body=True),
    openapi_extra=_BODY,
    summary="Import products from a CSV file (sellers and admins); follow the job it starts",
    description=(
        "Answers at once with the job's Location. The job validates every row, upserts the "
        "valid ones by SKU (new ones created, your own changed ones updated, identical ones "
        "left alone, other sellers' SKUs refused) and its result lists each rejected row with "
        "its line and reasons. Sending the same file again changes nothing."
    ),
)
async def import_products(request: Request, principal: CurrentPrincipal) -> Response:
    if not _is_csv(request.headers.get("content-type")):
        raise UnsupportedImportMedia()
    web: ImportsWeb = request.app.state.catalog_imports
    job_id = await web.imports.submit(principal, await request.body())
    location = job_location(job_id)
    document = {
        "job_id": job_id,
        "state": "queued",
        "links": {"job": location, "result": f"{location}/result"},
    }
    return Response(
        to_json(document),
        status_code=202,
        media_type="application/json",
        headers={"Location": location},
    )
