"""Routes for a forgotten password: ask for a reset link, then set a new password with it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from impextech.identity.adapters.http import NewPassword
from impextech.identity.adapters.web_context import IdentityWeb, client_address, identity_web
from impextech.identity.domain.errors import InvalidResetToken, UnknownTenant
from impextech.identity.domain.password_reset import tenant_of_reset_token
from impextech.identity.service.password_reset import PasswordResetService
from impextech.kernel.callers import AnonymousTenant, NamedSlug, TenantMismatch
from impextech.kernel.web import SingleLine, StrictJsonRoute, StrictModel, problem_responses


async def password_reset_service(request: Request) -> PasswordResetService:
    service: PasswordResetService = request.app.state.password_reset
    return service


Resets = Annotated[PasswordResetService, Depends(password_reset_service)]
Web = Annotated[IdentityWeb, Depends(identity_web)]


class ResetRequestIn(StrictModel):
    # Not EmailStr, as for sign-in: an address that cannot exist gets the same answer.
    email: SingleLine = Field(min_length=3, max_length=254)


class ResetRequestOut(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = "If this address has an account in this marketplace, a reset link is on its way."


class ResetConfirmIn(StrictModel):
    token: str = Field(min_length=1, max_length=200)
    new_password: NewPassword


router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=StrictJsonRoute)


@router.post(
    "/password-reset",
    status_code=202,
    response_model=ResetRequestOut,
    responses=problem_responses(400, 404, 429, body=True),
    summary="E-mail a password reset link; the same answer whether or not the account exists",
)
async def request_password_reset(
    body: ResetRequestIn, request: Request, tenant: AnonymousTenant, resets: Resets
) -> ResetRequestOut:
    await resets.request(tenant.id, body.email, client_address(request))
    return ResetRequestOut()


@router.post(
    "/password-reset/confirm",
    status_code=204,
    responses=problem_responses(400, 401, body=True),
    summary="Set a new password with a reset link's token; every session of the account ends",
)
async def confirm_password_reset(
    body: ResetConfirmIn, resets: Resets, web: Web, slug: NamedSlug
) -> Response:
    # The token names its marketplace; a request that names another one is refused first.
    try:
        tenant = await web.tenants.by_id(tenant_of_reset_token(body.token))
    except UnknownTenant:
        raise InvalidResetToken() from None
    if slug is not None and slug != tenant.slug:
        raise TenantMismatch()
    await resets.confirm(body.token, body.new_password)
    return Response(status_code=204)
