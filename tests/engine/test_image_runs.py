"""The built image run for real: non-root on a read-only root file system, its migration command
against a real PostgreSQL, and its own HEALTHCHECK going healthy next to PostgreSQL and Redis."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from tests.delivery.conftest import free_port
from tests.engine.conftest import Built, Postgres, service_env, wait_for

pytestmark = pytest.mark.engine
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _run(engine: Any, image: str, **kwargs: Any) -> tuple[int, str]:
    container = engine.containers.run(image, detach=True, read_only=True, **kwargs)
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_runs_as_non_root_on_a_read_only_root_file_system(engine: Any, built: Built) -> None:
    config = engine.images.get(built.ref).attrs["Config"]
    assert config["User"] == "10001:10001"
    probe = ("import os\nprint(os.getuid(), os.getgid())\n"
             "try:\n open('/app/written', 'w')\nexcept OSError as e:\n print(e.strerror)")
    code, out = _run(engine, built.ref, command=["python", "-c", probe])
    assert code == 0, out
    assert out.split("\n")[:2] == ["10001 10001", "Read-only file system"]


def test_migration_command_migrates_a_real_postgres(engine: Any, built: Built, postgres: Postgres, network) -> None:
    code, out = _run(engine, built.ref, command=["python", "-m", "products.migrate"],
                     environment=service_env(postgres), network=network.name)
    assert code == 0, out
    assert postgres.psql("SELECT version FROM schema_migrations ORDER BY version") == "0001"
    assert postgres.psql("SELECT to_regclass('public.products') IS NOT NULL") == "t"
    # A second run finds nothing to apply and still succeeds.
    code, out = _run(engine, built.ref, command=["python", "-m", "products.migrate"],
                     environment=service_env(postgres), network=network.name)
    assert code == 0, out
    assert postgres.psql("SELECT count(*) FROM schema_migrations") == "1"


def test_healthcheck_goes_healthy_against_postgres_and_redis(engine: Any, built: Built, postgres: Postgres,
                                                             redis: str, network) -> None:
    healthcheck = engine.images.get(built.ref).attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", "python", "-m", "products.healthcheck"]
    code, out = _run(engine, built.ref, command=["python", "-m", "products.migrate"],
                     environment=service_env(postgres), network=network.name)
    assert code == 0, out
    port = free_port()
    # Only the interval is shortened (the image's 30 s would make the test wait); the probe itself,
    # its timeout and retries are the image's own.
    app = engine.containers.run(built.ref, detach=True, read_only=True, network=network.name,
                                environment=service_env(postgres, cache_host=redis),
                                ports={"8080/tcp": ("127.0.0.1", port)},
                                healthcheck={"interval": 1_000_000_000, "start_period": 30_000_000_000})
    try:
        def state() -> str | None:
            app.reload()
            status = app.attrs["State"].get("Health", {}).get("Status")
            if app.attrs["State"]["Status"] == "exited":
                raise AssertionError(f"the service exited: {app.logs().decode()[-2000:]}")
            return status if status in ("healthy", "unhealthy") else None

        assert wait_for(state, timeout=60, what="a health status") == "healthy", app.logs().decode()[-2000:]
        assert app.attrs["HostConfig"]["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1",
                                                                       "HostPort": str(port)}]
        with _direct.open(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
    finally:
        app.remove(force=True)
