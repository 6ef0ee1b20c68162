"""PostgreSQL access through a psycopg 3 async connection pool.

Failure is fast and bounded:

* every new connection asks ``DatabaseSettings.credential()`` for its password (an RDS IAM
  token, or a password file re-read), so a rotated credential needs no restart;
* every query runs under the server's ``statement_timeout`` and a client-side deadline
  a little longer (a frozen server cannot enforce its own timeout);
* a refused connection or a missed deadline opens a circuit breaker: requests then get
  ``DatabaseUnavailable`` at once, and a background probe closes the breaker when the
  database answers again.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from products.breaker import CircuitBreaker
from products.config import DatabaseSettings
from products.credentials import CredentialError
from products.models import Product

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = psycopg.AsyncConnection[dict[str, Any]]

_INSERT = """
    INSERT INTO products (id, name, price)
    VALUES (gen_random_uuid(), %(name)s, %(price)s)
    RETURNING id, name, price, created_at
"""
_SELECT = "SELECT id, name, price, created_at FROM products WHERE id = %(id)s"
_RECENT = (
    "SELECT id, name, price, created_at FROM products ORDER BY created_at DESC, id LIMIT %(limit)s"
)
# The client waits this much longer than statement_timeout, so a live server always
# answers first (QueryCanceled) and only a frozen or partitioned one hits the deadline.
DEADLINE_MARGIN_SECONDS = 0.5
BREAKER_RESET_SECONDS = 1.0


class DatabaseUnavailable(Exception):
    """The database could not be reached, did not answer in time, or the pool was exhausted."""


class InvalidData(Exception):
    """The database refused the values (a data or constraint error): the client's fault."""


def _tracking_connection_class(breaker: CircuitBreaker) -> type[psycopg.AsyncConnection[Any]]:
    """A connection class that tells the breaker whether the pool's connect attempts work."""

    class TrackedConnection(psycopg.AsyncConnection[Any]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> TrackedConnection:  # type: ignore[override]
            try:
                conn = await super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                breaker.record_failure(f"connect: {type(exc).__name__}")
                raise
            return conn

    return TrackedConnection


def _why(exc: psycopg.Error) -> str:
    # Server messages may quote the value; the constraint name or SQLSTATE never does.
    if exc.diag.constraint_name:
        return f"violates constraint {exc.diag.constraint_name}"
    if exc.sqlstate is None:  # raised by psycopg itself, e.g. a NUL byte in a string
        return str(exc)
    return f"data error (SQLSTATE {exc.sqlstate})"


def _consume(task: asyncio.Task[Any]) -> None:
    # An abandoned query's outcome is never read; retrieve it so asyncio does not log it.
    if not task.cancelled():
        task.exception()


class Database:
    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._credential = settings.credential()
        self._conninfo = settings.conninfo()
        self.deadline = settings.statement_timeout_ms / 1000 + DEADLINE_MARGIN_SECONDS
        self.breaker = CircuitBreaker(
            "database",
            self._probe,
            reset_seconds=BREAKER_RESET_SECONDS,
            probe_timeout=settings.connect_timeout + self.deadline,
        )
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._conninfo,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            kwargs=self._connect_kwargs,  # called for every new connection
            connection_class=_tracking_connection_class(self.breaker),
            # No pool-level check: its retry backs off 1 s, 2 s, ... per broken connection
            # (after a failover every pooled one is). _with_connection checks instead.
            timeout=settings.pool_timeout,  # max wait for a free connection
            max_idle=300,
            name="products-db",
            open=False,
        )

    async def _connect_kwargs(self) -> dict[str, Any]:
        try:
            # In a thread: resolving AWS credentials may call the container endpoint.
            password = await asyncio.to_thread(self._credential)
        except CredentialError as exc:
            self.breaker.record_failure(str(exc))
            raise psycopg.OperationalError(str(exc)) from exc
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if password:
            kwargs["password"] = password
        return kwargs

    async def _probe(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, **await self._connect_kwargs())
        async with conn:
            await conn.execute("SELECT 1")

    async def open(self) -> None:
        # Don't block startup on the database: the pool connects in the background
        # and readiness reports the database until it is reachable.
        await self.pool.open(wait=False)
        log.info("database pool opened for %s", self.settings.describe())

    async def close(self) -> None:
        await self.breaker.close()
        await self.pool.close()

    async def ping(self, timeout: float) -> None:
        async def select_one(conn: Conn) -> None:
            await conn.execute("SELECT 1")

        await self._run(select_one, deadline=min(timeout, self.deadline))

    async def insert_product(self, name: str, price: Decimal) -> Product:
        row = await self._fetch_one(_INSERT, {"name": name, "price": price})
        assert row is not None  # INSERT ... RETURNING always returns the row
        return Product.from_row(row)

    async def get_product(self, product_id: UUID) -> Product | None:
        row = await self._fetch_one(_SELECT, {"id": product_id})
        return None if row is None else Product.from_row(row)

    async def recent_products(self, limit: int) -> list[Product]:
        async def fetch(conn: Conn) -> list[Product]:
            cur = await conn.execute(_RECENT, {"limit": limit})
            return [Product.from_row(row) for row in await cur.fetchall()]

        return await self._run(fetch)

    async def _fetch_one(self, query: str, params: dict[str, object]) -> dict[str, Any] | None:
        async def fetch(conn: Conn) -> dict[str, Any] | None:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            return await cur.fetchone()

        return await self._run(fetch)

    async def _with_connection(
        self, operation: Callable[[Conn], Awaitable[T]], acquired: asyncio.Event
    ) -> T:
        # Validate a connection before using it: after a failover, a restart or an idle
        # reset, a broken one goes back to the pool (which discards and replaces it) and the
        # next is tried at once. The operation itself is never retried (an INSERT must not
        # run twice).
        for _ in range(self.settings.pool_max_size):
            async with self.pool.connection() as conn:
                try:
                    await conn.execute("")
                except psycopg.OperationalError:
                    continue
                acquired.set()
                return await operation(conn)
        async with self.pool.connection() as conn:
            acquired.set()
            return await operation(conn)

    async def _run(
        self, operation: Callable[[Conn], Awaitable[T]], deadline: float | None = None
    ) -> T:
        if self.breaker.is_open:
            raise DatabaseUnavailable("circuit open")
        acquired = asyncio.Event()
        task = asyncio.ensure_future(self._with_connection(operation, acquired))
        opened = asyncio.ensure_future(self.breaker.opened.wait())
        try:
            done, _ = await asyncio.wait(
                {task, opened}, timeout=deadline or self.deadline, return_when=FIRST_COMPLETED
            )
            if task not in done and opened in done and acquired.is_set():
                # The query is under way on a connection that may be fine: give it the
                # rest of its deadline rather than leave its outcome unknown.
                done, _ = await asyncio.wait({task}, timeout=deadline or self.deadline)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            opened.cancel()
        if task not in done:
            # Cancelling makes psycopg cancel the query and the pool discard the connection;
            # that may take a while against a frozen server, so it happens in the background.
            task.cancel()
            task.add_done_callback(_consume)
            if self.breaker.is_open:  # still waiting for a connection: none is coming
                raise DatabaseUnavailable("circuit open")
            self.breaker.record_failure("no answer before the deadline")
            raise DatabaseUnavailable("no answer before the deadline")
        try:
            result = task.result()
        except PoolTimeout as exc:  # every connection busy: shed load, the database is fine
            raise DatabaseUnavailable(type(exc).__name__) from exc
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            raise InvalidData(_why(exc)) from exc
        except psycopg.OperationalError as exc:
            self.breaker.record_failure(type(exc).__name__)
            raise DatabaseUnavailable(type(exc).__name__) from exc
        return result
