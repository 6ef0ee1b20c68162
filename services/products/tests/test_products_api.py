"""HTTP API against a real PostgreSQL and a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from products.app import create_app
from products.cache import product_key
from products.config import CacheSettings, Settings
from products.db import Database, InvalidData
from products.errors import MAX_BODY_BYTES, MAX_ERRORS


def create(client: TestClient, name: str = "Coffee mug", price: str = "12.50") -> dict:
    response = client.post("/products", json={"name": name, "price": price})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_then_read(client: TestClient) -> None:
    before = datetime.now(UTC)
    response = client.post("/products", json={"name": "Coffee mug", "price": "12.5"})
    assert response.status_code == 201, response.text
    product = response.json()

    assert set(product) == {"id", "name", "price", "createdAt"}
    assert uuid.UUID(product["id"]).version == 4
    assert product["name"] == "Coffee mug"
    assert product["price"] == "12.50"  # exact decimal, always two places
    assert product["createdAt"].endswith("Z")
    created_at = datetime.fromisoformat(product["createdAt"])
    assert created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert response.headers["location"] == f"/products/{product['id']}"

    fetched = client.get(f"/products/{product['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == product


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("0", "0.00"),
        ("7", "7.00"),
        ("19.9", "19.90"),
        ("0.1", "0.10"),
        ("0.05", "0.05"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_price_is_normalised_to_two_decimals(
    client: TestClient, price: object, expected: str
) -> None:
    assert create(client, price=price)["price"] == expected


def test_names_up_to_200_characters_of_any_script_are_accepted(client: TestClient) -> None:
    assert create(client, name="x" * 200)["name"] == "x" * 200
    assert create(client, name="Tasse \u00e0 caf\u00e9 \u2615 \U0001f600")["name"].endswith(
        "\U0001f600"
    )


@pytest.mark.parametrize(
    ("body", "field", "type_"),
    [
        ({"price": "1.00"}, "name", "missing"),
        ({"name": "", "price": "1.00"}, "name", "string_too_short"),
        ({"name": "   ", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": " Mug", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": "Mug ", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": "x" * 201, "price": "1.00"}, "name", "string_too_long"),
        ({"name": "Mu\x00g", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": "Mu\x1bg", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": "Mu\x85g", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": "Mug\n", "price": "1.00"}, "name", "string_pattern_mismatch"),
        ({"name": 42, "price": "1.00"}, "name", "string_type"),
        ({"name": None, "price": "1.00"}, "name", "string_type"),
        ({"name": "Mug"}, "price", "missing"),
        ({"name": "Mug", "price": ""}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "-0.01"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "1.234"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "abc"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "1e11"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "NaN"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": " 1.00"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "01.00"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": "10000000000"}, "price", "string_pattern_mismatch"),
        ({"name": "Mug", "price": 12.5}, "price", "string_type"),
        ({"name": "Mug", "price": True}, "price", "string_type"),
        ({"name": "Mug", "price": None}, "price", "string_type"),
        ({"name": "Mug", "price": "1.00", "id": str(uuid.uuid4())}, "id", "extra_forbidden"),
        ({"name": "Mug", "price": "1", "createdAt": "2024-01-01T00:00:00Z"}, "createdAt", None),
    ],
)
def test_invalid_body_is_rejected_with_422(
    client: TestClient, body: dict, field: str, type_: str | None
) -> None:
    response = client.post("/products", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    (error,) = [err for err in errors if err["loc"] == ["body", field]]
    assert type_ is None or error["type"] == type_
    assert set(error) == {"loc", "msg", "type"}  # the client's input is not echoed back
    if error["type"] == "string_pattern_mismatch":
        assert "pattern" not in error["msg"] and "\\x" not in error["msg"]  # words, not a regex


@pytest.mark.parametrize(
    "content", [b"{not json", b"[]", b'"a string"', b"", b'{"name": "Mug", "price": NaN}']
)
def test_malformed_body_is_rejected_with_422(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/products", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_body_that_is_not_utf8_is_422_in_the_error_shape(client: TestClient) -> None:
    response = client.post(
        "/products",
        content='{"name": "caf\u00e9", "price": "1"}'.encode("latin-1"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"] and error["type"] == "json_invalid"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_body_that_is_not_declared_json_is_415(client: TestClient, content_type) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/products", content=b'{"name": "Mug", "price": "1"}', headers=headers)
    assert response.status_code == 415, response.text
    assert response.json() == {
        "detail": [
            {
                "loc": ["header", "Content-Type"],
                "msg": "must be application/json",
                "type": "unsupported_media_type",
            }
        ]
    }


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_parameters_and_case_are_accepted(client: TestClient, content_type):
    response = client.post(
        "/products",
        content=b'{"name": "Mug", "price": "1"}',
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 201, response.text


def test_body_over_the_cap_is_413_without_parsing(client: TestClient) -> None:
    huge = json.dumps({"name": "Mug", "price": "1", **{f"k{i}": i for i in range(100_000)}})
    started = time.perf_counter()
    response = client.post("/products", content=huge, headers={"Content-Type": "application/json"})
    assert time.perf_counter() - started < 0.5
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert response.json()["detail"][0]["type"] == "body_too_large"
    assert str(MAX_BODY_BYTES) in response.json()["detail"][0]["msg"]

    def chunks():  # no Content-Length: the cap holds for a streamed body too
        for _ in range(10):
            yield b" " * 1000

    streamed = client.post(
        "/products", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_errors_reported_are_capped(client: TestClient) -> None:
    body = {f"k{i}": i for i in range(300)}
    response = client.post("/products", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert len(errors) == MAX_ERRORS
    assert errors[-1]["type"] == "too_many_errors"
    assert errors[-1]["msg"] == f"{302 - (MAX_ERRORS - 1)} more errors not shown"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/products", "GET, POST, HEAD, OPTIONS"),
        ("/products/6b0f7a52-0000-4000-8000-000000000000", "GET, HEAD, OPTIONS"),
        ("/health/live", "GET, HEAD, OPTIONS"),
    ],
)
def test_options_head_and_405_state_the_allowed_methods(client: TestClient, path, allow) -> None:
    options = client.options(path)
    assert options.status_code == 204 and options.headers["allow"] == allow
    head, get = client.head(path), client.get(path)
    assert head.status_code == get.status_code and head.content == b""
    refused = client.delete(path)
    assert refused.status_code == 405
    assert sorted(refused.headers["allow"].split(", ")) == sorted(allow.split(", "))
    assert refused.json()["detail"][0]["type"] == "method_not_allowed"


def test_nothing_is_stored_on_validation_error(client: TestClient, db) -> None:
    marker = f"never-stored-{uuid.uuid4()}"
    assert client.post("/products", json={"name": marker, "price": "-1"}).status_code == 422
    assert db.execute("SELECT count(*) FROM products WHERE name = %s", (marker,)).fetchone() == (0,)


def test_unknown_product_is_404(client: TestClient, cache) -> None:
    missing = uuid.uuid4()
    response = client.get(f"/products/{missing}")
    assert response.status_code == 404
    assert response.json() == {
        "detail": [{"loc": ["path", "product_id"], "msg": "product not found", "type": "not_found"}]
    }
    assert cache.get(product_key(missing)) is None  # absence is not cached


def test_malformed_id_is_422(client: TestClient) -> None:
    response = client.get("/products/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "product_id"]


def test_cache_aside_serves_hits_from_redis_without_the_database(
    client: TestClient, db, cache, settings: Settings
) -> None:
    product = create(client)
    key = product_key(uuid.UUID(product["id"]))
    assert cache.get(key) is None  # POST does not populate the cache

    miss = client.get(f"/products/{product['id']}")
    assert miss.status_code == 200
    assert miss.headers["x-cache"] == "miss"
    assert cache.get(key) is not None  # the miss filled the cache...
    assert 0 < cache.ttl(key) <= settings.cache.ttl_seconds  # ...with a TTL

    # Remove the row behind the cache's back: a hit must not touch the database.
    db.execute("DELETE FROM products WHERE id = %s", (product["id"],))
    hit = client.get(f"/products/{product['id']}")
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "hit"
    assert hit.json() == product

    # Once the entry is gone (TTL expiry), the next read goes to the database again.
    cache.delete(key)
    assert client.get(f"/products/{product['id']}").status_code == 404


def test_unreadable_cache_entry_falls_back_to_database(client: TestClient, cache) -> None:
    product = create(client)
    cache.set(product_key(uuid.UUID(product["id"])), "{garbage", ex=60)
    response = client.get(f"/products/{product['id']}")
    assert response.status_code == 200
    assert response.headers["x-cache"] == "miss"
    assert response.json() == product


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_ready_ok(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_live_never_touches_the_database_or_cache(
    settings: Settings, postgres_server, unused_port: int
) -> None:
    nothing = Settings(
        database=postgres_server.database_settings(settings.database.name, port=unused_port),
        cache=CacheSettings(host="127.0.0.1", port=unused_port, tls=False),
    )
    with TestClient(create_app(nothing)) as client:
        started = time.perf_counter()
        live = client.get("/health/live")
        assert time.perf_counter() - started < 0.2
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        assert client.get("/health/ready").status_code == 503


def test_cache_down_is_degraded_not_unready_and_reads_fall_back_to_database(
    settings: Settings, redis_factory
) -> None:
    own_redis = redis_factory()
    app_settings = Settings(
        database=settings.database,
        cache=own_redis.cache_settings(timeout_seconds=0.2),
        health_timeout_seconds=1.0,
    )
    with TestClient(create_app(app_settings)) as client:
        assert client.get("/health/ready").status_code == 200
        product = create(client)

        own_redis.stop()

        for path in ("/health", "/health/ready"):
            response = client.get(path)
            assert response.status_code == 200  # the load balancer keeps the task
            assert response.json() == {"status": "degraded", "database": "ok", "cache": "degraded"}
        # The cache is an optimisation: reads and writes keep working without it.
        fetched = client.get(f"/products/{product['id']}")
        assert fetched.status_code == 200
        assert fetched.headers["x-cache"] == "miss"
        assert fetched.json() == product
        assert create(client, name="created while the cache is down")["name"]


def test_unready_when_database_is_down(
    settings: Settings, postgres_server, unused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    down = Settings(
        database=postgres_server.database_settings(
            settings.database.name, port=unused_port, connect_timeout=1, pool_timeout=0.2
        ),
        cache=settings.cache,
        health_timeout_seconds=0.3,
    )
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(down)) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "database": "error", "cache": "ok"}
        assert client.get("/health/live").status_code == 200
        # Requests that need the database answer 503 (retryable), not 500.
        created = client.post("/products", json={"name": "Mug", "price": "1.00"})
        assert created.status_code == 503
        assert created.json() == {
            "detail": [{"loc": [], "msg": "database unavailable", "type": "database_unavailable"}]
        }
        assert created.headers["retry-after"] == "5"
        assert client.get(f"/products/{uuid.uuid4()}").status_code == 503
        # Secrets never reach the logs, even when connections fail.
        assert settings.database.password not in caplog.text
        assert settings.cache.auth_token not in caplog.text


def test_database_data_errors_are_invalid_data_not_500(settings: Settings) -> None:
    async def scenario() -> None:
        database = Database(settings.database)
        await database.open()
        try:
            with pytest.raises(InvalidData, match="NUL"):
                await database.insert_product("a\x00b", Decimal("1.00"))
            with pytest.raises(InvalidData, match="products_name_length"):
                await database.insert_product("x" * 201, Decimal("1.00"))
            # Neither opened the breaker: the client's bad data says nothing about the database.
            assert not database.breaker.is_open
            assert (await database.insert_product("ok", Decimal("1.00"))).name == "ok"
        finally:
            await database.close()

    asyncio.run(scenario())


def test_app_reads_its_configuration_from_the_environment(
    postgres_server, redis_server, app_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = postgres_server.env(app_database) | {
        "CACHE_HOST": redis_server.host,
        "CACHE_PORT": str(redis_server.port),
        "CACHE_TLS": "false",
        "CACHE_AUTH_TOKEN": redis_server.password,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app()) as client:
        assert client.get("/health/ready").json() == {
            "status": "ok",
            "database": "ok",
            "cache": "ok",
        }
        assert client.get(f"/products/{create(client)['id']}").status_code == 200


def test_recent_products_are_listed_newest_first_and_limited(client: TestClient) -> None:
    created = [
        client.post("/products", json={"name": f"item {i}", "price": str(i)}) for i in range(3)
    ]
    ids = [response.json()["id"] for response in created]
    listed = client.get("/products", params={"limit": 2})
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == ids[::-1][:2]
    assert client.get("/products", params={"limit": 0}).status_code == 422
