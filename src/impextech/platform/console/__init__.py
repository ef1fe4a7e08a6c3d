"""The operators' console: static pages that drive the public API from the admin's browser.

The pages hold no secrets and no data of their own: they sign in through /api/v1/auth/login and
call the same admin endpoints as any client, so every rule (roles, tenant scope, rate limits)
is the API's. They are kept out of the OpenAPI document; they are not part of the API.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from impextech.kernel.domain.errors import NotFound

# Scripts and styles are files from this process: no inline code, nothing from elsewhere.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}

router = APIRouter(prefix="/console", include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath(name).read_bytes()


@router.get("/jobs")
async def jobs_page() -> Response:
    return Response(
        _read("jobs.html"),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-store"},
    )


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no console asset {name!r}")
    return Response(_read(name), media_type=media_type, headers={"Cache-Control": "no-cache"})
