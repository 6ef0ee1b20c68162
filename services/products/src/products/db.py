"""PostgreSQL access through a psycopg 3 async connection pool."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from products.config import DatabaseSettings
from products.models import Product

log = logging.getLogger(__name__)

_INSERT = """
    INSERT INTO products (id, name, price)
    VALUES (gen_random_uuid(), %(name)s, %(price)s)
    RETURNING id, name, price, created_at
"""
_SELECT = "SELECT id, name, price, created_at FROM products WHERE id = %(id)s"
_RECENT = (
    "SELECT id, name, price, created_at FROM products ORDER BY created_at DESC, id LIMIT %(limit)s"
)


class DatabaseUnavailable(Exception):
    """The database could not be reached or the pool had no free connection in time."""


class Database:
    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.pool = AsyncConnectionPool(
            settings.conninfo(),
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            # Validate a connection before handing it out: after an RDS failover
            # or an idle-connection reset the pool replaces it instead of failing a request.
            check=AsyncConnectionPool.check_connection,
            timeout=settings.pool_timeout,  # max wait for a free connection
            max_idle=300,
            name="products-db",
            open=False,
        )

    async def open(self) -> None:
        # wait=False: the app starts even while the database is unreachable, and
        # /health reports it, instead of crash-looping the task.
        await self.pool.open(wait=False)
        log.info("database pool opened for %s", self.settings.describe())

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self, timeout: float) -> None:
        async with self.pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")

    async def insert_product(self, name: str, price: Decimal) -> Product:
        row = await self._fetch_one(_INSERT, {"name": name, "price": price})
        assert row is not None  # INSERT ... RETURNING always returns the row
        return Product.from_row(row)

    async def get_product(self, product_id: UUID) -> Product | None:
        row = await self._fetch_one(_SELECT, {"id": product_id})
        return None if row is None else Product.from_row(row)

    async def recent_products(self, limit: int) -> list[Product]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(_RECENT, {"limit": limit})
                return [Product.from_row(row) for row in await cur.fetchall()]
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc

    async def _fetch_one(self, query: str, params: dict[str, object]) -> dict[str, Any] | None:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(query, params)  # type: ignore[arg-type]
                return cast("dict[str, Any] | None", await cur.fetchone())
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc
