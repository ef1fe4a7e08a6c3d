"""Building one process of the platform: the shared parts, then every context in list order."""

from __future__ import annotations

from impextech.kernel.contexts import Assembly, Process
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import Clock, SystemClock
from impextech.platform.contexts import CONTEXTS
from impextech.platform.settings import Settings


def assemble(
    process: Process,
    settings: Settings,
    app_conninfo: str,
    *,
    clock: Clock | None = None,
    pool_size: int | None = None,
) -> Assembly:
    """Every context installed over one database handle; nothing connects until first use.

    The caller closes the assembly (``await assembly.close()``) when the process stops: that
    releases what the contexts registered, then the database pool.
    """
    database = Database.connect(app_conninfo, size=pool_size or settings.platform.db_pool_size)
    assembly = Assembly(
        process, settings, database, clock or SystemClock(), CursorCodec(settings.secret_key)
    )
    assembly.on_close(database.dispose)  # closers run in reverse: the pool goes last
    for context in CONTEXTS:
        if context.install is not None:
            context.install(assembly)
    return assembly
