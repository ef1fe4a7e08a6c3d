"""The platform's bounded contexts, in dependency order: adding a context is one line here.

Each entry is the ``CONTEXT`` its package declares in ``<context>/context.py`` (what it brings:
settings, services, routes, jobs, commands, metrics, console pages, global tables, migrations).
A context may ``require`` only what a context above it ``provide``s.

``vet`` and ``sandbox`` stand alone on purpose (an inspection tool that could ship on its own, and
stand-ins for outside partners that share no code with the platform they imitate), so they bring
only a command group, declared here in their one line.
"""

from __future__ import annotations

from impextech.catalog.context import CONTEXT as CATALOG
from impextech.identity.context import CONTEXT as IDENTITY
from impextech.jobs.context import CONTEXT as JOBS
from impextech.kernel.contexts import Context
from impextech.sandbox import cli as sandbox_cli
from impextech.vet import cli as vet_cli

CONTEXTS: tuple[Context, ...] = (
    JOBS,
    IDENTITY,
    CATALOG,
    Context("vet", commands=lambda app, host: vet_cli.register(app)),
    Context("sandbox", commands=lambda app, host: sandbox_cli.register(app)),
)
