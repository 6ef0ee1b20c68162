"""HTTP API against a real PostgreSQL and a real Redis."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from products.app import create_app
from products.cache import product_key
from products.config import Settings


def create(client: TestClient, name: str = "Coffee mug", price: object = "12.50") -> dict:
    response = client.post("/products", json={"name": name, "price": price})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_then_read(client: TestClient) -> None:
    before = datetime.now(UTC)
    response = client.post("/products", json={"name": "  Coffee mug ", "price": 12.5})
    assert response.status_code == 201, response.text
    product = response.json()

    assert set(product) == {"id", "name", "price", "createdAt"}
    assert uuid.UUID(product["id"]).version == 4
    assert product["name"] == "Coffee mug"  # surrounding whitespace is trimmed
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
        (0, "0.00"),
        ("0", "0.00"),
        (7, "7.00"),
        ("19.9", "19.90"),
        (0.1, "0.10"),
        ("9999999999.99", "9999999999.99"),
        (-0.0, "0.00"),
    ],
)
def test_price_is_normalised_to_two_decimals(
    client: TestClient, price: object, expected: str
) -> None:
    assert create(client, price=price)["price"] == expected


def test_name_of_exactly_200_characters_is_accepted(client: TestClient) -> None:
    assert create(client, name="x" * 200)["name"] == "x" * 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price": "1.00"}, "name"),
        ({"name": "", "price": "1.00"}, "name"),
        ({"name": "   ", "price": "1.00"}, "name"),
        ({"name": "x" * 201, "price": "1.00"}, "name"),
        ({"name": 42, "price": "1.00"}, "name"),
        ({"name": None, "price": "1.00"}, "name"),
        ({"name": "Mug"}, "price"),
        ({"name": "Mug", "price": -0.01}, "price"),
        ({"name": "Mug", "price": "1.234"}, "price"),
        ({"name": "Mug", "price": "abc"}, "price"),
        ({"name": "Mug", "price": "NaN"}, "price"),
        ({"name": "Mug", "price": "Infinity"}, "price"),
        ({"name": "Mug", "price": True}, "price"),
        ({"name": "Mug", "price": None}, "price"),
        ({"name": "Mug", "price": "10000000000.00"}, "price"),
        ({"name": "Mug", "price": "1.00", "id": str(uuid.uuid4())}, "id"),
        ({"name": "Mug", "price": "1.00", "createdAt": "2024-01-01T00:00:00Z"}, "createdAt"),
    ],
)
def test_invalid_body_is_rejected_with_422(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/products", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(err["loc"] == ["body", field] for err in errors), errors
    assert all(err["msg"] and err["type"] for err in errors)
    assert "input" not in errors[0]  # the client's input is not echoed back


@pytest.mark.parametrize(
    "content", [b"{not json", b"[]", b'"a string"', b"", b'{"name": "Mug", "price": NaN}']
)
def test_malformed_body_is_rejected_with_422(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/products", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_nothing_is_stored_on_validation_error(client: TestClient, db) -> None:
    marker = f"never-stored-{uuid.uuid4()}"
    assert client.post("/products", json={"name": marker, "price": -1}).status_code == 422
    assert db.execute("SELECT count(*) FROM products WHERE name = %s", (marker,)).fetchone() == (0,)


def test_unknown_product_is_404(client: TestClient, cache) -> None:
    missing = uuid.uuid4()
    response = client.get(f"/products/{missing}")
    assert response.status_code == 404
    assert response.json() == {"detail": "product not found"}
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


def test_health_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_health_503_when_redis_goes_down_and_reads_fall_back_to_database(
    settings: Settings, redis_factory
) -> None:
    own_redis = redis_factory()
    app_settings = Settings(
        database=settings.database,
        cache=own_redis.cache_settings(timeout_seconds=0.2),
        health_timeout_seconds=1.0,
    )
    with TestClient(create_app(app_settings)) as client:
        assert client.get("/health").status_code == 200
        product = create(client)

        own_redis.stop()

        response = client.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "database": "ok", "cache": "error"}
        # The cache is an optimisation: reads and writes keep working without it.
        fetched = client.get(f"/products/{product['id']}")
        assert fetched.status_code == 200
        assert fetched.headers["x-cache"] == "miss"
        assert fetched.json() == product
        assert create(client, name="created while the cache is down")["name"]


def test_health_503_when_database_is_down(
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
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "error", "database": "error", "cache": "ok"}
        # Requests that need the database answer 503 (retryable), not 500.
        created = client.post("/products", json={"name": "Mug", "price": "1.00"})
        assert created.status_code == 503
        assert created.json() == {"detail": "database unavailable"}
        assert created.headers["retry-after"] == "5"
        assert client.get(f"/products/{uuid.uuid4()}").status_code == 503
        # Secrets never reach the logs, even when connections fail.
        assert settings.database.password not in caplog.text
        assert settings.cache.auth_token not in caplog.text


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
        assert client.get("/health").json() == {"status": "ok", "database": "ok", "cache": "ok"}
        assert client.get(f"/products/{create(client)['id']}").status_code == 200


def test_recent_products_are_listed_newest_first_and_limited(client: TestClient) -> None:
    created = [client.post("/products", json={"name": f"item {i}", "price": i}) for i in range(3)]
    ids = [response.json()["id"] for response in created]
    listed = client.get("/products", params={"limit": 2})
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == ids[::-1][:2]
    assert client.get("/products", params={"limit": 0}).status_code == 422
