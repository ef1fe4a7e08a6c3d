"""`impextech sandbox erp`: the sandbox ERP on 127.0.0.1, faults set by flags."""

from __future__ import annotations

from typing import Annotated

import typer


class SandboxError(typer.TyperException):
    """A one-line failure the platform's ``main()`` prints as ``impextech: error: …``."""

    exit_code = 1

    def format_message(self) -> str:
        return str(self)


_FLAG_OF = {
    "latency": "--latency",
    "error_rate": "--error-rate",
    "timeout_rate": "--timeout-rate",
    "drop_rate": "--drop-rate",
    "hold": "--hold",
}


def register(app: typer.Typer) -> None:
    """Add the `sandbox` commands to the platform's command line."""
    sandbox = typer.Typer(
        help="Local servers that play outside partners, for tests, demos and benchmarks.",
        no_args_is_help=True,
    )

    @sandbox.command("erp")
    def erp(
        port: Annotated[
            int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
        ] = 8100,
        latency: Annotated[
            str, typer.Option(help="Seconds before each answer: N, or MIN-MAX for uniform.")
        ] = "0",
        error_rate: Annotated[
            float, typer.Option(help="Share of requests answered 503 (0..1).")
        ] = 0.0,
        timeout_rate: Annotated[
            float, typer.Option(help="Share of requests held --hold seconds, then 504 (0..1).")
        ] = 0.0,
        drop_rate: Annotated[
            float, typer.Option(help="Share of requests whose connection is closed unanswered.")
        ] = 0.0,
        hold: Annotated[
            float, typer.Option(help="How long a timed-out request is held, in seconds.")
        ] = 300.0,
        seed: Annotated[
            int | None, typer.Option(help="Seed of the fault generator, for repeatable runs.")
        ] = None,
    ) -> None:
        """Play a tenant's ERP: PUT product records, with latency and faults on demand.

        Faults can be changed while it runs with POST /_control; counters are at GET /_stats.
        See docs/sandbox.md.
        """
        # Imported here so that the rest of the command line starts without a web stack.
        from impextech.sandbox.erp import ErpState, FaultError, Faults, create_app, parse_latency
        from impextech.sandbox.server import HOST, bind, run

        try:
            low, high = parse_latency(latency)
            faults = Faults(
                latency_min=low,
                latency_max=high,
                error_rate=error_rate,
                timeout_rate=timeout_rate,
                drop_rate=drop_rate,
                hold=hold,
            )
        except FaultError as exc:
            raise typer.BadParameter(exc.message, param_hint=f"'{_FLAG_OF[exc.field]}'") from None
        state = ErpState(faults=faults)
        state.reseed(seed)
        try:
            sock = bind(port)
        except OSError as exc:
            raise SandboxError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
        bound = sock.getsockname()[1]
        seed_text = "random" if seed is None else str(seed)
        typer.echo(
            f"sandbox erp listening on http://{HOST}:{bound} ({faults.describe()}, seed "
            f"{seed_text}); Ctrl+C stops it",
        )
        run(create_app(state), sock)

    app.add_typer(sandbox, name="sandbox")
