"""HTTP API: products, and liveness/readiness for the platform.

Paths are the ones the ALB forwards unchanged (listener rule ``/products*``). The target
group checks ``/health/ready`` (``/health`` is its alias); the container HEALTHCHECK checks
``/health/live``. Every error answer has the one shape of ``products.errors``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from products import __version__, auth
from products.cache import Cache, CacheUnavailable
from products.config import Settings
from products.db import Database, DatabaseUnavailable, InvalidData
from products.errors import BodySizeLimit, capped, error_body
from products.events import Emitter, anonymous_id, product_event
from products.flags import Flags
from products.models import PATTERN_MESSAGES, Product, ProductCreate
from products.openapi import build_openapi

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
SORT_BY_PRICE = "catalog-sort-by-price"  # the sample flag (stacks/*.yaml, refarch:flags)
METHOD_ORDER = ("GET", "POST", "HEAD", "OPTIONS")


def _product_response(
    product: Product, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=product.to_json(),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def _errors(exc: ValidationError | RequestValidationError, prefix: tuple[str, ...] = ()) -> Any:
    # Where and why only: pydantic's "input" and "ctx" would echo the client's data back.
    errors = []
    for err in exc.errors():
        loc = [*prefix, *err.get("loc", ())]
        msg = err.get("msg", "")
        if err.get("type") == "string_pattern_mismatch" and loc:
            msg = PATTERN_MESSAGES.get(str(loc[-1]), msg)
        errors.append({"loc": loc, "msg": msg, "type": err.get("type", "")})
    return capped(errors)


def _unavailable(what: str) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content=error_body([], f"{what} unavailable", f"{what}_unavailable"),
        headers={"Retry-After": "5"},
    )


async def _check(name: str, probe: Callable[[], Awaitable[None]], timeout: float) -> bool:
    try:
        await asyncio.wait_for(probe(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure makes the dependency unhealthy
        log.warning("readiness: %s failed (%s)", name, type(exc).__name__)
        return False
    return True


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media, _, params = content_type.partition(";")
    if media.strip().lower() not in JSON_TYPES:
        return False
    charset = [
        p.split("=", 1)[1].strip().strip('"').lower()
        for p in params.split(";")
        if "=" in p and p.split("=", 1)[0].strip().lower() == "charset"
    ]
    return all(c in ("utf-8", "utf8") for c in charset)


def _allowed(request: Request) -> str:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE and isinstance(route, BaseRoute):
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(m for m in METHOD_ORDER if m in methods)


def _options(allow: str) -> Callable[[], Awaitable[Response]]:
    async def options() -> Response:
        return Response(status_code=204, headers={"Allow": allow})

    return options


def _emit(request: Request, name: str, product_id: str | None = None) -> None:
    """Hand a product event to the emitter: a queue put, never a wait (products.events)."""
    events: Emitter | None = getattr(request.app.state, "events", None)
    if events is None or request.method == "HEAD":  # HEAD shares the GET handler: no view
        return
    trace = request.headers.get("x-amzn-trace-id", "")
    request_id = trace.partition("Root=")[2].split(";")[0] or str(uuid4())
    events.emit(product_event(name, request_id=request_id, product_id=product_id,
                              session_id=anonymous_id(request.headers.get("x-session-id"))))


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
        app.state.flags = Flags(settings.flags)
        events = Emitter.from_settings(settings.analytics)
        events.start()
        app.state.events = events
        try:
            yield
        finally:
            app.state.flags.flush()
            # Off the event loop: delivering the last batch is a blocking call.
            await asyncio.to_thread(events.close)
            await cache.close()
            await database.close()

    app = FastAPI(
        title="Products",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit)
    auth.install(app)
    # Writes need a bearer token when the platform names an issuer (AUTH_ISSUER); reads never do.
    write_guard = auth.write_guard(settings.auth)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path has several.
            headers["Allow"] = _allowed(request)
        return JSONResponse(
            status_code=exc.status_code,
            content=error_body([], str(exc.detail), kinds.get(exc.status_code, "http_error")),
            headers=headers,
        )

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.error("database unavailable during %s %s (%s)", request.method, request.url.path, exc)
        return _unavailable("database")

    @app.exception_handler(InvalidData)
    async def invalid_data(request: Request, exc: InvalidData) -> JSONResponse:
        log.warning("database refused the values of %s %s", request.method, request.url.path)
        return JSONResponse(
            status_code=422,
            content=error_body(["body"], f"refused by the database: {exc}", "database_rejected"),
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # The server may close the connection after an unhandled error: say so, so that
        # a client (or the ALB) never reuses it and fails an unrelated request.
        log.exception("unhandled error during %s %s", request.method, request.url.path)
        return JSONResponse(
            status_code=500,
            content=error_body([], "internal error", "internal_error"),
            headers={"Connection": "close"},
        )

    async def create_product(request: Request) -> Response:
        if not _is_json(request.headers.get("content-type")):
            return JSONResponse(
                status_code=415,
                content=error_body(
                    ["header", "Content-Type"], "must be application/json", "unsupported_media_type"
                ),
            )
        try:
            body = ProductCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse(status_code=422, content=_errors(exc, ("body",)))
        database: Database = request.app.state.database
        product = await database.insert_product(body.name, body.price_value)
        _emit(request, "product_created", str(product.id))
        return _product_response(product, 201, {"Location": f"/products/{product.id}"})

    # The newest products, straight from the database: the deploy's smoke check GETs this
    # through the gateway, so a 200 proves routing, the app and its database path at once.
    async def recent_products(request: Request, limit: int = Query(20, ge=1, le=100)) -> Response:
        database: Database = request.app.state.database
        products = await database.recent_products(limit)
        # The flag reorders the page it returns: the same products, cheapest first.
        flag = await request.app.state.flags.get(SORT_BY_PRICE)
        if flag.enabled:
            products = sorted(products, key=lambda product: product.price)
        _emit(request, "product_listed")
        body = "[" + ",".join(product.to_json() for product in products) + "]"
        shown = f"{'on' if flag.enabled else 'off'}; source={flag.source}"
        return Response(
            content=body, media_type="application/json", headers={"X-Flag-Sort-By-Price": shown}
        )

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
            _emit(request, "product_viewed", str(product_id))
            return _product_response(cached, headers={"X-Cache": "hit"})

        product = await database.get_product(product_id)
        if product is None:
            return JSONResponse(
                status_code=404,
                content=error_body(["path", "product_id"], "product not found", "not_found"),
            )
        if cache_ok:
            try:
                await cache.set_product(product)
            except CacheUnavailable as exc:
                log.warning("cache write failed (%s)", exc)
        _emit(request, "product_viewed", str(product_id))
        return _product_response(product, headers={"X-Cache": "miss"})

    async def live() -> JSONResponse:
        # The process serves requests: nothing else. A database or cache outage must not
        # make ECS replace tasks that would serve again as soon as it is over.
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def ready(request: Request) -> JSONResponse:
        database: Database = request.app.state.database
        cache: Cache = request.app.state.cache
        timeout = settings.health_timeout_seconds
        db_ok, cache_ok = await asyncio.gather(
            _check("database", lambda: database.ping(timeout), timeout),
            _check("cache", cache.ping, timeout),
        )
        if not db_ok:
            status_code, overall = 503, "error"
        else:
            status_code, overall = 200, "ok" if cache_ok else "degraded"
        return JSONResponse(
            status_code=status_code,
            content={
                "status": overall,
                "database": "ok" if db_ok else "error",
                "cache": "ok" if cache_ok else "degraded",
            },
            headers={"Cache-Control": "no-store"},
        )

    routes: list[tuple[str, Callable[..., Awaitable[Response]], tuple[str, ...]]] = [
        ("/products", recent_products, ("GET", "POST")),
        ("/products/{product_id}", get_product, ("GET",)),
        ("/health/live", live, ("GET",)),
        ("/health/ready", ready, ("GET",)),
        ("/health", ready, ("GET",)),
    ]
    for path, endpoint, methods in routes:
        if "POST" in methods:
            app.add_api_route(
                path,
                create_product,
                methods=["POST"],
                name="createProduct",
                dependencies=write_guard,
            )
        app.add_api_route(path, endpoint, methods=["GET"], name=endpoint.__name__)
        # HEAD answers like GET without the body; OPTIONS lists what the path allows.
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)
        allow = ", ".join([*methods, "HEAD", "OPTIONS"])
        app.add_api_route(path, _options(allow), methods=["OPTIONS"], include_in_schema=False)

    app.openapi = lambda: build_openapi(app, secured=settings.auth is not None)  # type: ignore[method-assign]
    return app
