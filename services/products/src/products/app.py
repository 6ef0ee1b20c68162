"""HTTP API: ``POST /products``, ``GET /products``, ``GET /products/{id}``, ``GET /health``.

Paths are the ones the ALB forwards unchanged (listener rule ``/products*``;
``/health`` is the target group's health-check path).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from fastapi import FastAPI, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from products import __version__
from products.cache import Cache, CacheUnavailable
from products.config import Settings
from products.db import Database, DatabaseUnavailable
from products.models import Product, ProductCreate

log = logging.getLogger(__name__)

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No product with this id"},
    422: {"description": "Invalid request"},
    503: {"description": "Database unavailable"},
}


def _product_response(
    product: Product, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=product.to_json(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


async def _check(name: str, probe: Awaitable[None], timeout: float) -> str:
    try:
        await asyncio.wait_for(probe, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure makes the dependency unhealthy
        log.warning("health check: %s failed (%s)", name, type(exc).__name__)
        return "error"
    return "ok"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application. With no argument the settings are read from the environment."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database)
        cache = Cache(settings.cache)
        await database.open()
        log.info("cache client for %s", settings.cache.describe())
        app.state.database = database
        app.state.cache = cache
        try:
            yield
        finally:
            await cache.close()
            await database.close()

    app = FastAPI(
        title="Products",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The client's input is not echoed back: only where and why it was rejected.
        errors = [
            {
                "loc": list(err.get("loc", ())),
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.error("database unavailable during %s %s (%s)", request.method, request.url.path, exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "database unavailable"},
            headers={"Retry-After": "5"},
        )

    @app.post(
        "/products",
        status_code=status.HTTP_201_CREATED,
        response_model=Product,
        responses=_ERROR_RESPONSES,
    )
    async def create_product(body: ProductCreate, request: Request) -> Response:
        database: Database = request.app.state.database
        product = await database.insert_product(body.name, body.price)
        return _product_response(product, 201, {"Location": f"/products/{product.id}"})

    # The newest products, straight from the database: the deploy's smoke check GETs this
    # through the gateway, so a 200 proves routing, the app and its database path at once.
    @app.get("/products", responses={503: {"description": "Database unavailable"}})
    async def recent_products(request: Request, limit: int = Query(20, ge=1, le=100)) -> Response:
        database: Database = request.app.state.database
        products = await database.recent_products(limit)
        body = "[" + ",".join(product.to_json() for product in products) + "]"
        return Response(content=body, media_type="application/json")

    @app.get("/products/{product_id}", response_model=Product, responses=_ERROR_RESPONSES)
    async def get_product(product_id: UUID, request: Request) -> Response:
        database: Database = request.app.state.database
        cache: Cache = request.app.state.cache
        cache_ok = True
        try:
            cached = await cache.get_product(product_id)
        except CacheUnavailable as exc:
            log.warning("cache read failed, reading from database (%s)", exc)
            cached, cache_ok = None, False
        if cached is not None:
            return _product_response(cached, headers={"X-Cache": "hit"})

        product = await database.get_product(product_id)
        if product is None:
            return JSONResponse(status_code=404, content={"detail": "product not found"})
        if cache_ok:
            try:
                await cache.set_product(product)
            except CacheUnavailable as exc:
                log.warning("cache write failed (%s)", exc)
        return _product_response(product, headers={"X-Cache": "miss"})

    @app.get("/health", responses={503: {"description": "A dependency is unavailable"}})
    async def health(request: Request) -> JSONResponse:
        database: Database = request.app.state.database
        cache: Cache = request.app.state.cache
        timeout = settings.health_timeout_seconds
        db_status, cache_status = await asyncio.gather(
            _check("database", database.ping(timeout), timeout),
            _check("cache", cache.ping(), timeout),
        )
        healthy = db_status == "ok" and cache_status == "ok"
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={
                "status": "ok" if healthy else "error",
                "database": db_status,
                "cache": cache_status,
            },
            headers={"Cache-Control": "no-store"},
        )

    return app
