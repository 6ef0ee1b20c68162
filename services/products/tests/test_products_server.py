"""The real server process (``python -m products``, the image's CMD) and its HEALTHCHECK probe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import serving

from products.__main__ import main as server_main
from products.db import Database


def _probe(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "products.healthcheck"],
        env=os.environ | {"PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_server_serves_the_api_and_stops_gracefully_on_sigterm(
    postgres_server, redis_server, app_database: str, unused_port: int, tmp_path: Path
) -> None:
    env = (
        os.environ
        | postgres_server.env(app_database)
        | {
            "CACHE_HOST": redis_server.host,
            "CACHE_PORT": str(redis_server.port),
            "CACHE_TLS": "false",
            "CACHE_AUTH_TOKEN": redis_server.password,
            "PORT": str(unused_port),
            "HOST": "127.0.0.1",
        }
    )
    log_path = tmp_path / "server.log"
    base = f"http://127.0.0.1:{unused_port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "products"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)

        created = httpx.post(f"{base}/products", json={"name": "Teapot", "price": "30"}, timeout=5)
        assert created.status_code == 201
        fetched = httpx.get(f"{base}/products/{created.json()['id']}", timeout=5)
        assert fetched.json() == created.json()
        assert "server" not in fetched.headers  # no server banner

        assert _probe(unused_port).returncode == 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            returncode = server.wait(timeout=25)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    # uvicorn finishes in-flight work, then re-raises the signal (exit by SIGTERM).
    assert returncode in (0, -signal.SIGTERM), log_path.read_text()
    assert "Application shutdown complete." in log_path.read_text()

    probe = _probe(unused_port)
    assert probe.returncode == 1 and "healthcheck failed" in probe.stderr

    output = log_path.read_text()
    assert postgres_server.password not in output
    assert redis_server.password not in output
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    messages = " ".join(record["message"] for record in records)
    assert "starting on 127.0.0.1" in messages
    assert "POST /products" in messages  # access log, as JSON
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)


def test_server_refuses_to_start_without_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_HOST", "DATABASE_PASSWORD", "CACHE_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert server_main() == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "DATABASE_HOST" in err and "CACHE_HOST" in err


def test_an_unhandled_error_says_connection_close_and_the_next_request_works(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self, name, price):  # a bug, not a database outage
        raise RuntimeError("boom")

    monkeypatch.setattr(Database, "insert_product", broken)
    with serving(settings) as base, httpx.Client(base_url=base, timeout=5) as client:
        failed = client.post("/products", json={"name": "Mug", "price": "1.00"})
        assert failed.status_code == 500
        assert failed.headers["connection"] == "close"
        assert failed.json() == {
            "detail": [{"loc": [], "msg": "internal error", "type": "internal_error"}]
        }
        # Same client: it must not reuse the closed connection for an unrelated request.
        assert client.get("/health/live").status_code == 200


def test_head_and_options_over_real_http(settings) -> None:
    with serving(settings) as base, httpx.Client(base_url=base, timeout=5) as client:
        get, head = client.get("/health/live"), client.head("/health/live")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
        options = client.options("/products")
        assert options.status_code == 204 and options.headers["allow"] == "GET, POST, HEAD, OPTIONS"
        too_big = client.post(
            "/products", content=b"x" * 10_000, headers={"Content-Type": "application/json"}
        )
        assert too_big.status_code == 413 and too_big.headers["connection"] == "close"
        assert client.get("/health/live").status_code == 200
