"""Routes under /api/v1/auth and /api/v1/users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, EmailStr, Field

from impextech.identity.adapters.web_context import IdentityWeb, client_address, identity_web
from impextech.identity.domain.errors import InvalidToken, UnknownTenant
from impextech.identity.domain.model import User, UserStatus
from impextech.identity.domain.passwords import MAX_LENGTH, MIN_LENGTH
from impextech.identity.service.auth import TokenPair, tenant_of_refresh_token
from impextech.kernel.callers import AnonymousTenant, CurrentPrincipal, NamedSlug, TenantMismatch
from impextech.kernel.domain.principal import Role
from impextech.kernel.pagination import (
    after_cursor,
    page_response,
    position_to_json,
    time_position_from_json,
)
from impextech.kernel.web import SingleLine, StrictJsonRoute, StrictModel, problem_responses

Web = Annotated[IdentityWeb, Depends(identity_web)]


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_expires_in: int


def _tokens(pair: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        refresh_expires_in=pair.refresh_expires_in,
    )


class UserOut(BaseModel):
    id: UUID
    email: str
    display_name: str
    role: Role
    status: UserStatus
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            status=user.status,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


# The password policy answers outside these lengths with its own reason (weak-password); the
# document states them so a client can tell before it asks.
NewPassword = Annotated[
    str,
    Field(max_length=1024, json_schema_extra={"minLength": MIN_LENGTH, "maxLength": MAX_LENGTH}),
]


def _any_case(name: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else f"[{c}]" for c in name)


# The address validator refuses special-use domains (a@shop.test, a@localhost); JSON Schema's
# "email" format alone allows them, so the document names them.
_SPECIAL_USE = "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
RegistrationEmail = Annotated[
    EmailStr,
    Field(max_length=254, json_schema_extra={"not": {"pattern": f"[.@]({_SPECIAL_USE})$"}}),
]


class RegisterIn(StrictModel):
    email: RegistrationEmail
    password: NewPassword
    display_name: SingleLine = Field(min_length=1, max_length=100)


class RegisterOut(BaseModel):
    user: UserOut
    tokens: TokenOut


class LoginIn(StrictModel):
    # Not EmailStr: signing in only compares the address with stored ones, and full
    # syntax validation would cost every login (including floods) for nothing.
    email: SingleLine = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(StrictModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class PasswordIn(StrictModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: NewPassword


class ProfilePatch(StrictModel):
    """The only fields a user may change on their own profile."""

    display_name: SingleLine | None = Field(default=None, min_length=1, max_length=100)


class RoleIn(StrictModel):
    role: Role


class UserPageOut(BaseModel):
    items: list[UserOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


DEVICE_COOKIE = "impextech_device"

auth = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=StrictJsonRoute)
users = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=StrictJsonRoute)


@auth.post(
    "/register",
    status_code=201,
    response_model=RegisterOut,
    responses=problem_responses(400, 404, 409, 429, body=True),
    summary="Create a shopper account in this marketplace and sign in",
)
async def register(
    body: RegisterIn, request: Request, tenant: AnonymousTenant, web: Web
) -> RegisterOut:
    user, pair = await web.auth.register(
        tenant.id, body.email, body.password, body.display_name, client_address(request)
    )
    return RegisterOut(user=UserOut.of(user), tokens=_tokens(pair))


@auth.post(
    "/login",
    response_model=TokenOut,
    responses=problem_responses(400, 401, 404, 429, body=True),
    summary="Exchange email and password for an access and a refresh token",
)
async def login(
    body: LoginIn, request: Request, response: Response, tenant: AnonymousTenant, web: Web
) -> TokenOut:
    signed_in = await web.auth.login(
        tenant.id,
        body.email,
        body.password,
        client_address(request),
        request.cookies.get(DEVICE_COOKIE),
    )
    if signed_in.device_token is not None:
        # Unreadable by scripts and never sent cross-site: it only vouches for this browser
        # at its next sign-in (docs/sign-in-limits.md).
        response.set_cookie(
            DEVICE_COOKIE,
            signed_in.device_token,
            max_age=signed_in.device_expires_in,
            path="/api/v1/auth/login",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
    return _tokens(signed_in.tokens)


@auth.post(
    "/refresh",
    response_model=TokenOut,
    responses=problem_responses(401, body=True),
    summary="Rotate a refresh token: each one works once; reuse revokes the whole session",
)
async def refresh(body: RefreshIn, web: Web, slug: NamedSlug) -> TokenOut:
    # Check the named marketplace before rotating: a refused request must not use up the token.
    try:
        tenant = await web.tenants.by_id(tenant_of_refresh_token(body.refresh_token))
    except UnknownTenant:
        raise InvalidToken("unknown or revoked refresh token") from None
    if slug is not None and slug != tenant.slug:
        raise TenantMismatch()
    _, pair = await web.auth.refresh(body.refresh_token)
    return _tokens(pair)


@auth.post(
    "/logout",
    status_code=204,
    responses=problem_responses(401),
    summary="End this session (its refresh tokens stop working)",
)
async def logout(principal: CurrentPrincipal, web: Web) -> Response:
    await web.auth.logout(principal)
    return Response(status_code=204)


@auth.post(
    "/logout-all",
    status_code=204,
    responses=problem_responses(401),
    summary="End every session of this account",
)
async def logout_all(principal: CurrentPrincipal, web: Web) -> Response:
    await web.auth.logout_all(principal)
    return Response(status_code=204)


@auth.post(
    "/password",
    response_model=TokenOut,
    responses=problem_responses(401, 429, body=True),
    summary="Change the password; every session ends and a new one starts for this client",
)
async def change_password(
    body: PasswordIn, request: Request, principal: CurrentPrincipal, web: Web
) -> TokenOut:
    pair = await web.auth.change_password(
        principal, body.current_password, body.new_password, client_address(request)
    )
    return _tokens(pair)


@users.get(
    "/me", response_model=UserOut, responses=problem_responses(401), summary="Your own profile"
)
async def get_me(principal: CurrentPrincipal, web: Web) -> UserOut:
    return UserOut.of(await web.users.me(principal))


@users.patch(
    "/me",
    response_model=UserOut,
    responses=problem_responses(401, body=True),
    summary="Edit your own profile (display_name only; other fields are refused)",
)
async def patch_me(body: ProfilePatch, principal: CurrentPrincipal, web: Web) -> UserOut:
    return UserOut.of(await web.users.update_me(principal, display_name=body.display_name))


_USER_SHAPE = "users:created"


@users.get(
    "",
    response_model=UserPageOut,
    responses=problem_responses(401, 403),
    summary="List this marketplace's users (admin)",
)
async def list_users(
    principal: CurrentPrincipal,
    web: Web,
    role: Role | None = None,
    status: UserStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    tenant_id = principal.tenant_id
    after = after_cursor(web.cursors, cursor, tenant_id, _USER_SHAPE, time_position_from_json)
    page = await web.users.list(principal, role=role, status=status, after=after, limit=limit)
    items = [UserOut.of(u) for u in page.items]
    return page_response(
        web.cursors, tenant_id, _USER_SHAPE, items, page.next_position, position_to_json
    )


@users.get(
    "/{user_id}",
    response_model=UserOut,
    responses=problem_responses(401, 404),
    summary="Get a user: yourself, or anyone in your marketplace if you are an admin",
)
async def get_user(user_id: UUID, principal: CurrentPrincipal, web: Web) -> UserOut:
    return UserOut.of(await web.users.get(principal, user_id))


@users.put(
    "/{user_id}/role",
    response_model=UserOut,
    responses=problem_responses(401, 403, 404, 409, body=True),
    summary="Change a user's role (admin)",
)
async def change_role(
    user_id: UUID, body: RoleIn, principal: CurrentPrincipal, web: Web
) -> UserOut:
    return UserOut.of(await web.users.change_role(principal, user_id, body.role))


@users.post(
    "/{user_id}/deactivate",
    response_model=UserOut,
    responses=problem_responses(401, 403, 404, 409),
    summary="Deactivate a user and end all their sessions (admin)",
)
async def deactivate(user_id: UUID, principal: CurrentPrincipal, web: Web) -> UserOut:
    return UserOut.of(await web.users.deactivate(principal, user_id))
