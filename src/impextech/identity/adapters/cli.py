"""`impextech tenants …` and `impextech users …`: the operator's registry commands."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
from impextech.identity.domain.model import validate_slug
from impextech.identity.service.accounts import AccountAdmin
from impextech.identity.service.tenants import TenantAdmin
from impextech.kernel.contexts import CommandHost


def register(app: typer.Typer, host: CommandHost) -> None:
    tenants_app = typer.Typer(help="Marketplace (tenant) registry.", no_args_is_help=True)
    users_app = typer.Typer(help="User administration.", no_args_is_help=True)
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(users_app, name="users")

    @tenants_app.command("create")
    def tenants_create(
        slug: Annotated[str, typer.Argument(help="Lowercase id used in X-Tenant and subdomains")],
        name: Annotated[str, typer.Option("--name", help="Display name")],
    ) -> None:
        """Create a marketplace."""
        validate_slug(slug)

        async def create() -> None:
            # The registry is global and only the schema owner may write it.
            async with host.owner_database() as owner, host.assembled() as assembly:
                tenant = await TenantAdmin(SqlTenantStore(owner), assembly.clock).create(slug, name)
            host.console.print(f"created tenant [bold]{tenant.slug}[/bold] ({tenant.id})")

        asyncio.run(create())

    @tenants_app.command("list")
    def tenants_list() -> None:
        """List marketplaces."""

        async def listed() -> None:
            async with host.owner_database() as owner:
                found = await SqlTenantStore(owner).list_all()
            table = Table("slug", "name", "status", "id")
            for tenant in found:
                table.add_row(tenant.slug, tenant.name, tenant.status.value, str(tenant.id))
            host.console.print(table)

        asyncio.run(listed())

    @users_app.command("create-admin")
    def users_create_admin(
        tenant: Annotated[str, typer.Option("--tenant", help="The marketplace's slug")],
        email: Annotated[str, typer.Option("--email")],
        name: Annotated[str, typer.Option("--name", help="Display name")] = "Admin",
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from standard input")
        ] = False,
    ) -> None:
        """Create an admin account in a marketplace (asks for the password)."""
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                raise host.fail("the passwords differ")

        async def create() -> None:
            async with host.assembled() as assembly:
                database = assembly.database
                hasher = Argon2PasswordHasher(1)
                try:
                    user = await AccountAdmin(
                        lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id),
                        SqlTenantStore(database),
                        hasher,
                        assembly.clock,
                    ).create_admin(tenant, email, password, name)
                finally:
                    hasher.close()
            host.console.print(f"created admin [bold]{user.email}[/bold] in {tenant} ({user.id})")

        asyncio.run(create())
