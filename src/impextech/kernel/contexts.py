"""What a bounded context brings to the running platform, declared in one place.

Every context has a module ``<context>/context.py`` with one ``Context`` value: its settings
section, the global tables it owns (each with its reason), its migrations, and an ``install``
function that receives the ``Assembly`` of the process being built (web server, worker or a
command) and adds to it: shared services other contexts may ``require``, routers, job kinds and
handlers (through the jobs context's registry), metrics collectors, console pages, things to close
at shutdown. Its command-line group comes through ``cli``. The composition root
(``impextech.platform.contexts``) only lists the contexts, in dependency order: adding a context is
one line there.

This is the shape Django's ``AppConfig`` and Litestar's init plugins have: the project lists its
parts, each part says what it contributes.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar, cast

import typer
from fastapi import APIRouter
from prometheus_client.registry import Collector
from rich.console import Console

from impextech.kernel.cursors import CursorCodec
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import Clock
from impextech.kernel.settings import SettingsSection

T = TypeVar("T")
S = TypeVar("S", bound=SettingsSection)


class Process(enum.StrEnum):
    """Which kind of process is being assembled: contexts build only what it needs."""

    WEB = "web"
    WORKER = "worker"
    COMMAND = "command"


class SettingsView(Protocol):
    """The platform's one settings object, as contexts see it."""

    @property
    def secret_key(self) -> bytes: ...

    @property
    def data_dir(self) -> Path:
        """Where this installation keeps local state (the embedded cluster, the mail outbox)."""
        ...

    def section(self, kind: type[S]) -> S: ...


class AssemblyError(Exception):
    """The list of contexts is wired wrongly (a missing or doubled service): a programming error."""


class Key(Generic[T]):
    """Names a service one context provides and others require, with its type.

    The context that offers the service declares the key in its facade (``api.py``), or the
    kernel does for the few services any context may offer (``GATE``, ``TENANT_ROSTER``).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


@dataclass(frozen=True, slots=True)
class ConsolePage:
    """A page of the operators' console: static files shipped in ``package``.

    The page is served at ``/console/<path>`` and its assets at ``/console/assets/<name>``
    (``assets`` maps each file name to its media type). The pages drive the public API from the
    admin's browser; they hold no data and no secrets of their own.
    """

    path: str
    package: str
    filename: str
    assets: Mapping[str, str] = field(default_factory=dict)


class Assembly:
    """The platform under construction, handed to each context's ``install`` in list order."""

    def __init__(
        self,
        process: Process,
        settings: SettingsView,
        database: Database,
        clock: Clock,
        cursors: CursorCodec,
    ) -> None:
        self.process = process
        self.settings = settings
        self.database = database
        self.clock = clock
        self.cursors = cursors
        self.routers: list[APIRouter] = []
        self.state: dict[str, object] = {}
        self.collectors: list[Collector] = []
        self.scrape_hooks: list[Callable[[], Awaitable[None]]] = []
        self.console_pages: list[ConsolePage] = []
        self.raw_body_prefixes: list[str] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self._services: dict[Key[object], object] = {}

    # -- services shared between contexts --------------------------------------------------------

    def provide(self, key: Key[T], value: T) -> None:
        if key in self._services:
            raise AssemblyError(f"{key.name} is provided twice")
        self._services[cast(Key[object], key)] = value

    def require(self, key: Key[T]) -> T:
        """A service an earlier context provided; list the provider first in the contexts."""
        try:
            return cast(T, self._services[cast(Key[object], key)])
        except KeyError:
            raise AssemblyError(
                f"nothing provides {key.name}: list its context before this one"
            ) from None

    # -- what the web process serves -------------------------------------------------------------

    def add_router(self, router: APIRouter, *, state: tuple[str, object] | None = None) -> None:
        """A router, and optionally the object its routes read from ``app.state``."""
        self.routers.append(router)
        if state is not None:
            name, value = state
            self.set_state(name, value)

    def set_state(self, name: str, value: object) -> None:
        if self.state.get(name, value) is not value:
            raise AssemblyError(f"app.state.{name} is set twice")
        self.state[name] = value

    def add_console_page(self, page: ConsolePage) -> None:
        self.console_pages.append(page)

    def accept_raw_body(self, prefix: str) -> None:
        """Exempt a path prefix from the JSON-only body rule (its route checks the body itself)."""
        self.raw_body_prefixes.append(prefix)

    # -- operations --------------------------------------------------------------------------------

    def add_collector(
        self, collector: Collector, *, refresh: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """A metrics collector; ``refresh`` (if any) runs before each scrape of /metrics."""
        self.collectors.append(collector)
        if refresh is not None:
            self.scrape_hooks.append(refresh)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Something to release when the process stops (clients, pools)."""
        self.closers.append(closer)

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()


class CommandHost(Protocol):
    """What the platform's command line offers a context's commands."""

    console: Console

    def fail(self, message: str) -> Exception:
        """An exception that ends the command with ``message`` on one line and exit 1."""
        ...

    def settings(self) -> SettingsView: ...

    def assembled(
        self, process: Process = Process.COMMAND
    ) -> AbstractAsyncContextManager[Assembly]:
        """Every context installed, over the current schema; closed when the block ends."""
        ...

    def owner_database(self) -> AbstractAsyncContextManager[Database]:
        """The schema owner's connection (for the operator's registry commands)."""
        ...


@dataclass(frozen=True)
class Context:
    """One bounded context's contribution to the platform."""

    name: str
    install: Callable[[Assembly], None] | None = None
    settings: type[SettingsSection] | None = None
    commands: Callable[[typer.Typer, CommandHost], None] | None = None
    global_tables: Mapping[str, str] = field(default_factory=dict)
    migrations: str | None = None  # a package holding Alembic revision files
