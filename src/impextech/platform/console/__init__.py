"""The operators' console: the static pages the contexts declare, served under /console.

The pages hold no secrets and no data of their own: they sign in through /api/v1/auth/login and
call the same admin endpoints as any client, so every rule (roles, tenant scope, rate limits)
is the API's. They are kept out of the OpenAPI document; they are not part of the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from impextech.kernel.contexts import AssemblyError, ConsolePage
from impextech.kernel.domain.errors import NotFound

# Scripts and styles are files from this process: no inline code, nothing from elsewhere.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@cache
def _read(package: str, name: str) -> bytes:
    return resources.files(package).joinpath(name).read_bytes()


# The console's look is the platform's: one stylesheet every page links to.
_SHARED_ASSETS = {"console.css": (__name__, "text/css; charset=utf-8")}


def console_router(pages: Sequence[ConsolePage]) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    assets: dict[str, tuple[str, str]] = dict(_SHARED_ASSETS)  # name -> (package, media type)
    for page in pages:
        for name, media_type in page.assets.items():
            if assets.get(name, (page.package, media_type)) != (page.package, media_type):
                raise AssemblyError(f"two console pages ship an asset named {name!r}")
            assets[name] = (page.package, media_type)
        router.add_api_route(f"/{page.path}", _page(page), methods=["GET"])

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise NotFound(f"no console asset {name!r}")
        package, media_type = found
        return Response(
            _read(package, name), media_type=media_type, headers={"Cache-Control": "no-cache"}
        )

    return router


def _page(page: ConsolePage) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        return Response(
            _read(page.package, page.filename),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-store"},
        )

    serve.__name__ = f"console_{page.path}"
    return serve
