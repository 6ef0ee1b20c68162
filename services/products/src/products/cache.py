"""Redis / Valkey cache for products (cache-aside).

The cache is an optimisation, never a source of truth: every operation here
raises ``CacheUnavailable`` on connection trouble and the caller falls back to
the database. Keys carry a format version (``products:v1:``) so that a new
release that changes the cached shape uses new keys while the old release,
still running during a rolling deploy, keeps reading the old ones.

Each new connection asks ``CacheSettings.credential()`` for its AUTH token (an ElastiCache
IAM token re-signed before its 15 minutes run out, or a password file re-read), so a
rotation needs no restart. A circuit breaker makes a dead or frozen cache cost nothing:
after one failure, calls raise ``CacheUnavailable`` at once until a background PING works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import RedisError

from products.breaker import CircuitBreaker
from products.config import CacheSettings
from products.credentials import CredentialError
from products.models import Product

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_PREFIX = "products:v1:product:"


def product_key(product_id: UUID) -> str:
    return f"{KEY_PREFIX}{product_id}"


class CacheUnavailable(Exception):
    """The cache could not be reached (timeouts, refused connections, auth failures)."""


class _Credentials(CredentialProvider):
    """Asked by redis-py on every new connection (AUTH [user] token)."""

    def __init__(self, user: str | None, token: Callable[[], str]) -> None:
        self.user = user
        self.token = token

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        try:
            token = self.token()
        except CredentialError as exc:
            raise ConnectionError(str(exc)) from exc
        return (self.user, token) if self.user else (token,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return await asyncio.to_thread(self.get_credentials)


class Cache:
    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        token = settings.credential()
        self.breaker = CircuitBreaker(
            "cache",
            self._ping,
            reset_seconds=settings.breaker_reset_seconds,
            probe_timeout=settings.timeout_seconds * 2,
        )
        self.client = Redis(
            host=settings.host,
            port=settings.port,
            ssl=settings.tls,
            credential_provider=None if token is None else _Credentials(settings.user, token),
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
            # One quick retry absorbs a stale pooled connection (e.g. after a
            # failover) without stalling requests when the cache is really down.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
            health_check_interval=30,
            client_name="products",
            decode_responses=True,
        )

    async def close(self) -> None:
        await self.breaker.close()
        await self.client.aclose()

    async def _ping(self) -> None:
        await self.client.ping()

    async def _call(self, operation: Awaitable[T]) -> T:
        if self.breaker.is_open:
            close_unawaited(operation)
            raise CacheUnavailable("circuit open")
        try:
            # Bounded even if a frozen server accepted the connection but never answers AUTH.
            result = await asyncio.wait_for(operation, timeout=self.settings.timeout_seconds * 2)
        except (RedisError, ConnectionError, OSError, TimeoutError) as exc:
            self.breaker.record_failure(type(exc).__name__)
            raise CacheUnavailable(type(exc).__name__) from exc
        return result

    async def ping(self) -> None:
        await self._call(self.client.ping())

    async def get_product(self, product_id: UUID) -> Product | None:
        raw = await self._call(self.client.get(product_key(product_id)))
        if raw is None:
            return None
        try:
            return Product.from_json(raw)
        except ValidationError:
            log.warning("ignoring unreadable cache entry for product %s", product_id)
            return None

    async def set_product(self, product: Product) -> None:
        await self._call(
            self.client.set(
                product_key(product.id), product.to_json(), ex=self.settings.ttl_seconds
            )
        )


def close_unawaited(operation: Awaitable[object]) -> None:
    # A coroutine that will not run must be closed, or Python warns it was never awaited.
    close = getattr(operation, "close", None)
    if close is not None:
        close()
