"""The ceiling for ``GET /api/v1/products``: a bare Starlette app doing the same database work.

It runs the statement the product store runs (``build_search``), in one transaction that
first sets the tenant with ``set_config('app.tenant_id', …, true)`` and then rolls back (as the
app's read-only unit of work does), as the unprivileged app role, over a fixed pool of psycopg
async connections; then it serialises the rows (and the same signed next-page cursor) to JSON.
No ORM, no validation, no middleware: what is left is the cost of the work itself on this
machine, so the app's throughput can be read as a fraction of it.

Kept only in the benchmark. Served by one uvicorn worker, like ``impextech serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from impextech.catalog.adapters.sql import build_search
from impextech.catalog.service.ports import ProductQuery
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.pagination import position_to_json

LIMIT = 20
SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


def to_psycopg(sql: str) -> str:
    """SQLAlchemy's ``:name`` placeholders as psycopg's ``%(name)s``."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


class Pool:
    """A fixed set of connections handed out in turn (psycopg_pool is not a dependency)."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._size = size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self._size):
            self._idle.put_nowait(await psycopg.AsyncConnection.connect(self._conninfo))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._idle.get()
        try:
            yield conn
        finally:
            if conn.closed:
                conn = await psycopg.AsyncConnection.connect(self._conninfo)
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


def _row_json(row: tuple[Any, ...]) -> dict[str, Any]:
    (pid, _tenant, seller, sku, name, desc, category, amount, currency, stock, status, version,
     created, updated) = row  # fmt: skip
    return {
        "id": str(pid),
        "seller_id": str(seller),
        "sku": sku,
        "name": name,
        "description": desc,
        "category": category,
        "price": {"amount": amount, "currency": currency},
        "stock": stock,
        "status": status,
        "version": version,
        "created_at": created.isoformat(),
        "updated_at": updated.isoformat(),
    }


def create_app(conninfo: str, pool_size: int, secret: bytes) -> Starlette:
    pool = Pool(conninfo, pool_size)
    cursors = CursorCodec(secret)
    tenants: dict[str, UUID] = {}
    query = ProductQuery(limit=LIMIT)
    shape = f"products:{query.sort.value}"

    async def products(request: Request) -> Response:
        slug = (request.headers.get("x-tenant") or "").strip().lower()
        tenant_id = tenants.get(slug)
        if tenant_id is None:
            return Response(b'{"title":"no such marketplace"}', 404)
        sql, params = build_search(tenant_id, query)
        async with pool.connection() as conn:
            await conn.execute(SET_TENANT, (str(tenant_id),))
            rows = await (await conn.execute(to_psycopg(sql), params)).fetchall()
            await conn.rollback()
        items = rows[:LIMIT]
        next_cursor = None
        if len(rows) > LIMIT:
            last = items[-1]
            position = position_to_json((last[12], last[0]))
            next_cursor = cursors.encode(tenant_id, shape, position)
        body = json.dumps({"items": [_row_json(r) for r in items], "next_cursor": next_cursor})
        return Response(body.encode(), media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open()
        async with pool.connection() as conn:
            # Tenants are read once, as the app role, like the app's tenant cache would.
            cur = await conn.execute("SELECT slug, id FROM tenants")
            tenants.update(dict(await cur.fetchall()))
            await conn.rollback()
        yield
        await pool.close()

    return Starlette(routes=[Route("/api/v1/products", products)], lifespan=lifespan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--conninfo", required=True, help="libpq conninfo of the app role")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pool-size", type=int, default=20)
    ap.add_argument("--secret-file", type=Path, required=True, help="the app's secret-key file")
    args = ap.parse_args()
    app = create_app(args.conninfo, args.pool_size, args.secret_file.read_text().strip().encode())
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
