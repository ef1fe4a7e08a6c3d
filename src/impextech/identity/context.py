"""What the identity context brings: the Identity facade (the kernel's gate and tenant roster),
the auth, users and password-reset routes, e-mail and session upkeep jobs, and the registry
commands."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from impextech.identity.adapters import cli
from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.device_tokens import HmacDeviceTokenCodec
from impextech.identity.adapters.http import auth as auth_router
from impextech.identity.adapters.http import users as users_router
from impextech.identity.adapters.jwt_tokens import JwtAccessTokenCodec
from impextech.identity.adapters.mail_job import SEND_MAIL, send_mail_handler
from impextech.identity.adapters.mailers import make_mailer
from impextech.identity.adapters.password_reset_http import router as password_reset_router
from impextech.identity.adapters.password_reset_sql import SqlPasswordResetUnitOfWork
from impextech.identity.adapters.rate_limit import attempt_key
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
from impextech.identity.adapters.upkeep_job import (
    SESSION_PURGE,
    SESSION_PURGE_CRON,
    session_purge_handler,
)
from impextech.identity.adapters.web_context import IdentityWeb
from impextech.identity.service.accounts import AccountAdmin
from impextech.identity.service.auth import AuthPolicy, AuthService, RateLimit, SignInBackoff
from impextech.identity.service.directory import UserDirectory
from impextech.identity.service.facade import Identity
from impextech.identity.service.password_reset import PasswordResetMail, PasswordResetService
from impextech.identity.service.sessions import SessionUpkeep
from impextech.identity.service.tenants import TenantDirectory
from impextech.identity.service.users import UserService
from impextech.identity.settings import IdentitySettings
from impextech.jobs.api import JOB_REGISTRY, JOB_SCHEDULING
from impextech.kernel.callers import GATE
from impextech.kernel.contexts import Assembly, ConsolePage, Context, Key, Process
from impextech.kernel.tenants import TENANT_ROSTER

IDENTITY: Key[Identity] = Key("identity")
ACCOUNT_ADMIN: Key[AccountAdmin] = Key("account admin")

# The page a password-reset e-mail links to (IMPEXTECH_PASSWORD_RESET_URL's default).
RESET_PAGE = ConsolePage(
    "reset-password",
    "impextech.identity.adapters.console",
    "reset-password.html",
    {"reset-password.js": "text/javascript; charset=utf-8"},
)


def auth_policy(settings: IdentitySettings) -> AuthPolicy:
    return AuthPolicy(
        refresh_lifetime=timedelta(days=settings.refresh_token_days),
        session_lifetime=timedelta(days=settings.session_days),
        per_address=RateLimit(*settings.sign_in_failures_per_address),
        per_account=RateLimit(*settings.sign_in_failures_per_account),
        per_device=RateLimit(*settings.sign_in_failures_per_device),
        backoff=SignInBackoff(
            free=settings.sign_in_backoff_after,
            max_seconds=settings.sign_in_backoff_max_seconds,
        ),
        device_lifetime=timedelta(days=settings.device_cookie_days),
        sign_ups_per_address=RateLimit(*settings.sign_ups_per_address),
        password_failures=RateLimit(*settings.password_change_failures),
    )


def install(assembly: Assembly) -> None:
    settings = assembly.settings.section(IdentitySettings)
    database, clock, secret = assembly.database, assembly.clock, assembly.settings.secret_key
    counter_key = attempt_key(secret)

    def uow(tenant_id: UUID) -> SqlIdentityUnitOfWork:
        return SqlIdentityUnitOfWork(database, tenant_id, counter_key)

    hasher = Argon2PasswordHasher(settings.hash_concurrency)

    async def close_hasher() -> None:
        hasher.close()

    assembly.on_close(close_hasher)
    auth = AuthService(
        uow=uow,
        hasher=hasher,
        tokens=JwtAccessTokenCodec(secret, settings.access_token_seconds),
        clock=clock,
        policy=auth_policy(settings),
        rotation_key=secret,
        devices=HmacDeviceTokenCodec(secret),
    )
    registry = SqlTenantStore(database)
    tenants = TenantDirectory(registry, ttl_seconds=settings.tenant_cache_seconds)
    identity = Identity(auth, tenants, registry, UserDirectory(uow), settings.base_domains)
    assembly.provide(IDENTITY, identity)
    assembly.provide(GATE, identity)
    assembly.provide(TENANT_ROSTER, identity)
    assembly.provide(ACCOUNT_ADMIN, AccountAdmin(uow, registry, hasher, clock))

    scheduling = assembly.require(JOB_SCHEDULING)
    jobs = assembly.require(JOB_REGISTRY)
    if assembly.process is Process.WORKER:
        mail = PasswordResetMail(
            lambda tenant_id: SqlPasswordResetUnitOfWork(database, tenant_id, scheduling),
            make_mailer(
                settings.mail_url,
                data_dir=assembly.settings.data_dir,
                sender=settings.mail_from,
                timeout=settings.mail_timeout,
            ),
            clock,
            secret,
            settings.password_reset_url,
        )
        jobs.declare(SEND_MAIL, send_mail_handler(mail))
        jobs.declare(SESSION_PURGE, session_purge_handler(SessionUpkeep(uow, clock)))
    else:
        jobs.declare(SEND_MAIL)
        jobs.declare(SESSION_PURGE)
    jobs.every(SESSION_PURGE, SESSION_PURGE_CRON)

    if assembly.process is Process.WEB:
        assembly.set_state("gate", identity)
        web = IdentityWeb(auth, UserService(uow, clock), tenants, assembly.cursors)
        assembly.add_router(auth_router, state=("identity", web))
        assembly.add_router(users_router)
        resets = PasswordResetService(
            lambda tenant_id: SqlPasswordResetUnitOfWork(database, tenant_id, scheduling),
            hasher,
            clock,
            secret,
        )
        assembly.add_router(password_reset_router, state=("password_reset", resets))
        assembly.add_console_page(RESET_PAGE)


CONTEXT = Context(
    "identity",
    install=install,
    settings=IdentitySettings,
    commands=cli.register,
    migrations="impextech.identity.migrations",
    global_tables={
        "tenants": "the tenant registry itself",
        "rate_limit_counters": (
            "keys are keyed digests of client addresses and accounts; no tenant data"
        ),
    },
)
