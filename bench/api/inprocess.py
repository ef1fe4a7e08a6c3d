"""CPU per request of the product list and of a sign-in, in one process, without a network.

    .venv/bin/python bench/api/inprocess.py                  # this checkout
    .venv/bin/python bench/api/inprocess.py --tree ../other  # another checkout, same measure

The app is served through httpx's ASGI transport (no sockets, no load generator competing for the
two cores) over a private embedded PostgreSQL with one seeded marketplace and 40 products; after a
warm-up, each round sends N requests one after another and divides the process's CPU time by N
(client and server share the process, so the figure is an upper bound of the server's, and the
same for every tree). Sign-ins use the real argon2id hasher, whose thread's CPU counts too. Use it
to compare two trees in the same session: run it on both, twice, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path


async def measure(rounds: int, per_round: int) -> dict[str, list[float]]:
    import httpx
    from tests.conftest import make_settings
    from tests.support.pg import APP_ROLE, test_database
    from tests.support.world import PASSWORD, insert_product, make_tenant

    from impextech.platform import database
    from impextech.platform.app import create_app
    from impextech.platform.logs import configure_logging

    # As `impextech serve` runs with IMPEXTECH_LOG_LEVEL=error: no access-log line per request.
    configure_logging("json", "error")
    work = Path(tempfile.mkdtemp(prefix="impextech-inprocess-"))
    with test_database(work) as infos:
        database.upgrade(infos.owner, APP_ROLE)
        tenant = make_tenant(infos.owner, "acme")
        for n in range(40):
            insert_product(infos.owner, tenant, f"SKU-{n}")
        app = create_app(make_settings(work, IMPEXTECH_LOG_LEVEL="error"), infos.app)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        acme = {"X-Tenant": "acme"}
        login = {"email": tenant["seller"].email, "password": PASSWORD}
        figures: dict[str, list[float]] = {"list": [], "login": []}
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                for _ in range(200):
                    assert (await c.get("/api/v1/products", headers=acme)).status_code == 200
                for _ in range(10):
                    response = await c.post("/api/v1/auth/login", json=login, headers=acme)
                    assert response.status_code == 200, response.text
                for _ in range(rounds):
                    began = time.process_time()
                    for _ in range(per_round):
                        await c.get("/api/v1/products", headers=acme)
                    figures["list"].append((time.process_time() - began) / per_round * 1000)
                    began = time.process_time()
                    for _ in range(per_round // 15):
                        await c.post("/api/v1/auth/login", json=login, headers=acme)
                    figures["login"].append(
                        (time.process_time() - began) / (per_round // 15) * 1000
                    )
        finally:
            await app.state.database.dispose()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=600)
    args = ap.parse_args()
    tree = args.tree.resolve()
    sys.path[:0] = [str(tree), str(tree / "src")]
    figures = asyncio.run(measure(args.rounds, args.per_round))
    for name, values in figures.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"{tree}: {name}: CPU ms/request median {statistics.median(values):.2f} ({shown})")


if __name__ == "__main__":
    main()
