"""The embedded PostgreSQL cluster's users, and stopping it when the last of them ends.

pgserver lists the processes that use a cluster in ``<pgdata>/.handle_pids.json`` and, from an
atexit hook, stops the cluster in the last of them. That leaves it running in three cases:
SIGTERM's default action ends a process without running atexit hooks; a pid left in the list by
a process that was killed counts as a user for ever after, so no later process is ever the last;
and a process that deletes the directory first finds no list at exit. Here a process that attaches:

- records its pid and its start time beside pgserver's list, so a pid whose process is gone, or
  now names another process, is dropped from the list instead of keeping the cluster alive;
- leaves the list when it exits (or when `release` is called) and, when no live user is left,
  stops the cluster with ``pg_ctl stop -m fast`` (signalling the postmaster if that fails).

`exit_on_sigterm` makes SIGTERM end a command the way Ctrl+C does, through the exit hooks.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

USERS_FILE = ".handle_pids.json"  # pgserver's list of pids
STARTS_FILE = ".handle_starts.json"  # ours: pid -> its process's start time
STOP_SECONDS = 30
# The exit code of a process ended by SIGTERM, as shells report it.
SIGTERM_EXIT = 128 + signal.SIGTERM

# pgserver's own dependency, and how pgserver itself tells processes apart; it has no type stubs.
psutil: Any = importlib.import_module("psutil")

# The clusters this process uses, each with its postmaster's pid when it attached.
_attached: dict[Path, int | None] = {}
_hook_registered = False


class EmbeddedStartError(Exception):
    """The cluster could not be started; the message says why."""


def attach(pgdata: Path) -> str:
    """Start (or join) the cluster in ``pgdata`` as one of its users; its superuser conninfo."""
    server_class = _pgserver().PostgresServer
    pgdata = pgdata.expanduser().resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    global _hook_registered
    if not _hook_registered:
        # Registered before the start, so a process stopped while starting still cleans up.
        atexit.register(release_all)
        _hook_registered = True
    with _signals_held(), server_class._lock:  # a half-written list would lose its users
        _forget_stale_users(pgdata)
        _forget_stale_postmaster(pgdata)
    _attached[pgdata] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _pgserver().get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        raise EmbeddedStartError(str(exc) or type(exc).__name__) from exc
    # Leaving is ours to do (see release): pgserver's own hook would leave the list a second time.
    atexit.unregister(server._cleanup)
    with _signals_held(), server_class._lock:
        _record_start(pgdata, os.getpid())
    _attached[pgdata] = postmaster_pid(pgdata)
    uri: str = server.get_uri()
    return uri


def release(pgdata: Path) -> None:
    """Leave the cluster's users; stop the cluster when no live user is left."""
    pgdata = pgdata.expanduser().resolve()
    if pgdata not in _attached:
        return
    postmaster = _attached.pop(pgdata)
    server_class = _pgserver().PostgresServer
    server_class._instances.pop(pgdata, None)  # a later attach must start it again
    with _signals_held(), server_class._lock:
        if not pgdata.is_dir():
            # Deleted under a running cluster: no list is left to share it by, and nothing
            # could use it any more; stop the postmaster this process knew, if it still runs.
            if postmaster is not None and _serves(postmaster, pgdata):
                log.warning("embedded PostgreSQL directory %s is gone; stopping it", pgdata)
                _signal_until_gone(postmaster, pgdata)
            return
        users = _forget_stale_users(pgdata, leaving=os.getpid())
        if users:
            log.debug("embedded PostgreSQL in %s stays up for %s", pgdata, users)
            return
        stop(pgdata)


def release_all() -> None:
    for pgdata in list(_attached):
        try:
            release(pgdata)
        except Exception:  # an exit hook must not hide the others
            log.exception("could not stop the embedded PostgreSQL in %s", pgdata)


def stop(pgdata: Path) -> None:
    """Stop the cluster in ``pgdata`` now, whoever uses it (fast shutdown, then signals)."""
    pid = postmaster_pid(pgdata)
    if pid is None:
        return
    command = [str(_pg_bin() / "pg_ctl"), "-D", str(pgdata), "-w", "-t", str(STOP_SECONDS)]
    command += ["-m", "fast", "stop"]
    try:
        # Its own session: a second Ctrl+C on the terminal must not cut the stop short.
        subprocess.run(  # noqa: S603
            command,
            check=True,
            capture_output=True,
            timeout=STOP_SECONDS + 5,
            start_new_session=True,
            user=_system_user(),
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log.warning("pg_ctl could not stop %s (%s); signalling the postmaster", pgdata, exc)
        _signal_until_gone(pid, pgdata)
    else:
        _wait_gone(pid, pgdata, 5.0)


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster running on ``pgdata``, by its postmaster.pid, or None."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _serves(pid, pgdata) else None


def exit_on_sigterm() -> None:
    """From now on SIGTERM ends this process like an exit: `finally` blocks and exit hooks run.

    Leaves a handler someone else installed alone, and does nothing off the main thread (where
    Python cannot install one). Servers that catch SIGTERM themselves (uvicorn) restore this
    handler and raise the signal again once they have shut down, so it also ends the process.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(SIGTERM_EXIT)


def _forget_stale_users(pgdata: Path, leaving: int | None = None) -> list[int]:
    """Drop the users whose process is gone (and ``leaving``) from the lists; the live ones.

    Called with pgserver's lock held.
    """
    users_path, starts_path = pgdata / USERS_FILE, pgdata / STARTS_FILE
    users = [int(p) for p in _read_json(users_path, [])]
    starts = {int(p): float(t) for p, t in _read_json(starts_path, {}).items()}
    live = [pid for pid in users if pid != leaving and _is_user(pid, starts.get(pid))]
    if live != users:
        users_path.write_text(json.dumps(live))
    kept = {str(pid): starts[pid] for pid in live if pid in starts}
    if len(kept) != len(starts):
        starts_path.write_text(json.dumps(kept))
    return live


def _record_start(pgdata: Path, pid: int) -> None:
    starts_path = pgdata / STARTS_FILE
    starts: dict[str, float] = _read_json(starts_path, {})
    starts[str(pid)] = psutil.Process(pid).create_time()
    starts_path.write_text(json.dumps(starts))


def _forget_stale_postmaster(pgdata: Path) -> None:
    """Remove a postmaster.pid whose pid now names a process that is not PostgreSQL.

    PostgreSQL itself replaces a lock file whose pid is dead, but refuses to start while the pid
    is alive, and pgserver would take that live stranger for the server.
    """
    lock_file = pgdata / "postmaster.pid"
    try:
        pid = int(lock_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if psutil.pid_exists(pid) and not _is_postgres(pid) and not _is_zombie(pid):
        log.warning("removing %s: its pid %s is not a PostgreSQL server", lock_file, pid)
        lock_file.unlink(missing_ok=True)


def _is_user(pid: int, started: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid reused by a later process is not the user that registered it.
        return started is None or abs(float(process.create_time()) - started) < 1.0
    except psutil.Error:
        return False


def _is_postgres(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres")
    except psutil.Error:
        return False


def _serves(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is a live PostgreSQL started on ``pgdata`` (a reused pid is not)."""
    try:
        argv = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return _is_postgres(pid) and str(pgdata) in argv


def _is_zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(pid: int, pgdata: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _serves(pid, pgdata):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal_until_gone(pid: int, pgdata: Path) -> None:
    # SIGINT is PostgreSQL's fast shutdown, SIGQUIT its immediate one; SIGKILL is the last resort.
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if not _serves(pid, pgdata):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_gone(pid, pgdata, wait):
            return


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore Ctrl+C and SIGTERM for a step that must not be cut short (a write, the stop)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _system_user() -> str | None:
    # pgserver runs PostgreSQL as its own system user when we are root (PostgreSQL refuses root).
    return "pgserver" if os.geteuid() == 0 else None


def _pg_bin() -> Path:
    _pgserver()
    path: Path = importlib.import_module("pgserver._commands").POSTGRES_BIN_PATH
    return path


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers; pgserver does not need it.
        warnings.simplefilter("ignore")
        import pgserver  # heavy import, only when the embedded default is used

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver
