"""Redis / Valkey cache for products (cache-aside).

The cache is an optimisation, never a source of truth: every operation here
raises ``CacheUnavailable`` on connection trouble and the caller falls back to
the database. Keys carry a format version (``products:v1:``) so that a new
release that changes the cached shape uses new keys while the old release,
still running during a rolling deploy, keeps reading the old ones.
"""

from __future__ import annotations

import logging
from uuid import UUID

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from products.config import CacheSettings
from products.models import Product

log = logging.getLogger(__name__)

KEY_PREFIX = "products:v1:product:"


def product_key(product_id: UUID) -> str:
    return f"{KEY_PREFIX}{product_id}"


class CacheUnavailable(Exception):
    """The cache could not be reached (timeouts, refused connections, auth failures)."""


class Cache:
    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self.client = Redis(
            host=settings.host,
            port=settings.port,
            ssl=settings.tls,
            password=settings.auth_token,
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
        await self.client.aclose()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except RedisError as exc:
            raise CacheUnavailable(type(exc).__name__) from exc

    async def get_product(self, product_id: UUID) -> Product | None:
        try:
            raw = await self.client.get(product_key(product_id))
        except RedisError as exc:
            raise CacheUnavailable(type(exc).__name__) from exc
        if raw is None:
            return None
        try:
            return Product.from_json(raw)
        except ValidationError:
            log.warning("ignoring unreadable cache entry for product %s", product_id)
            return None

    async def set_product(self, product: Product) -> None:
        try:
            await self.client.set(
                product_key(product.id), product.to_json(), ex=self.settings.ttl_seconds
            )
        except RedisError as exc:
            raise CacheUnavailable(type(exc).__name__) from exc
