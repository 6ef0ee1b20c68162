"""Feature flags: a real local HTTP server plays the AppConfig agent; then no agent at all."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from products.app import create_app
from products.config import Settings
from products.flags import METRIC_NAME, Flags, FlagSettings

PATH = "/applications/refarch-dev/environments/dev/configurations/flags"
SORT = "catalog-sort-by-price"


class Agent:
    """What the agent answers: the profile's values (`{"<flag>": {"enabled": ..., <attrs>}}`)."""

    def __init__(self) -> None:
        self.values: dict = {SORT: {"enabled": True, "page-size": 20}}
        self.status, self.delay, self.raw = 200, 0.0, None
        self.requests: list[str] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                agent.requests.append(self.path)
                time.sleep(agent.delay)
                if self.path != PATH:
                    self.send_error(404)
                    return
                body = agent.raw if agent.raw is not None else json.dumps(agent.values).encode()
                self.send_response(agent.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"


@pytest.fixture
def agent() -> Iterator[Agent]:
    fake = Agent()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def read(flags: Flags, name: str = SORT):
    return asyncio.run(flags.get(name))


def test_values_come_from_the_agent_and_are_cached_for_the_ttl(agent: Agent) -> None:
    clock = Clock()
    flags = Flags(FlagSettings(url=agent.url, defaults={SORT: False}, ttl_seconds=5), clock=clock)
    value = read(flags)
    assert (value.enabled, value.source, dict(value.attributes)) == (
        True,
        "agent",
        {"page-size": 20},
    )
    agent.values = {SORT: {"enabled": False}}
    clock.now += 4.9
    assert read(flags).enabled is True  # still the cached snapshot
    assert len(agent.requests) == 1
    clock.now += 0.2
    assert (read(flags).enabled, read(flags).source) == (False, "agent")
    assert len(agent.requests) == 2
    assert flags.defaults_served == 0


def test_a_flag_missing_from_the_answer_is_its_declared_default(agent: Agent) -> None:
    flags = Flags(FlagSettings(url=agent.url, defaults={"other": True}))
    value = read(flags, "other")
    assert (value.enabled, value.source) == (True, "default")
    assert (read(flags, "undeclared").enabled, flags.defaults_served) == (False, 2)


def test_no_agent_serves_defaults_warns_once_and_counts(unused_port: int, caplog) -> None:
    clock, out = Clock(), io.StringIO()
    url = f"http://127.0.0.1:{unused_port}{PATH}"
    flags = Flags(
        FlagSettings(url=url, defaults={SORT: True}, ttl_seconds=1), clock=clock, metrics_out=out
    )
    with caplog.at_level(logging.WARNING, logger="products.flags"):
        for _ in range(30):
            value = read(flags)
            assert (value.enabled, value.source) == (True, "default")
            clock.now += 0.5  # a refetch attempt every other read: the outage continues
    warnings = [r.getMessage() for r in caplog.records]
    assert (
        len(warnings) == 1
        and "agent unavailable" in warnings[0]
        and "Connection refused" in warnings[0]
    )
    assert flags.defaults_served == 30
    flags.flush()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sum(r[METRIC_NAME] for r in records) == 30
    assert records[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": METRIC_NAME, "Unit": "Count"}
    ]


def test_metric_records_are_at_most_one_a_minute(unused_port: int) -> None:
    clock, out = Clock(), io.StringIO()
    flags = Flags(
        FlagSettings(url=f"http://127.0.0.1:{unused_port}{PATH}", ttl_seconds=60),
        clock=clock,
        metrics_out=out,
    )
    for _ in range(100):
        read(flags)
        clock.now += 1.5  # 150 s of reads
    assert (
        len(out.getvalue().splitlines()) == 2
    )  # at 60 s and 120 s; the rest waits for the next flush


def test_an_outage_ends_with_one_more_line_and_agent_values_again(agent: Agent, caplog) -> None:
    clock = Clock()
    flags = Flags(FlagSettings(url=agent.url, defaults={SORT: False}, ttl_seconds=1), clock=clock)
    agent.status, agent.raw = 500, b"oops"
    with caplog.at_level(logging.WARNING, logger="products.flags"):
        assert read(flags).source == "default"
        clock.now += 2
        assert read(flags).source == "default"
        agent.status, agent.raw = 200, None
        clock.now += 2
        assert (read(flags).enabled, read(flags).source) == (True, "agent")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "feature flags: agent unavailable",
        "feature flags: agent answering again after an outage",
    ]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]"])
def test_an_answer_that_is_not_a_flag_object_is_an_outage(agent: Agent, raw: bytes) -> None:
    agent.raw = raw
    flags = Flags(FlagSettings(url=agent.url, defaults={SORT: True}))
    assert (read(flags).enabled, read(flags).source) == (True, "default")


def test_a_slow_agent_costs_the_request_at_most_the_timeout(agent: Agent) -> None:
    agent.delay = 2.0
    flags = Flags(FlagSettings(url=agent.url, timeout_seconds=0.2))
    start = time.monotonic()
    assert read(flags).source == "default"
    assert time.monotonic() - start < 1.0


def test_environment_gives_url_and_defaults() -> None:
    env = {
        "DATABASE_HOST": "db",
        "DATABASE_NAME": "p",
        "DATABASE_USER": "u",
        "DATABASE_PASSWORD": "x",
        "CACHE_HOST": "c",
        "FLAGS_URL": "http://localhost:2772" + PATH,
        "FLAGS_DEFAULTS": json.dumps({SORT: True}),
    }
    flags = Settings.from_env(env).flags
    assert (flags.url, dict(flags.defaults)) == ("http://localhost:2772" + PATH, {SORT: True})
    with pytest.raises(
        ValueError, match="FLAGS_DEFAULTS must be a JSON object of flag name -> true/false"
    ):
        Settings.from_env({**env, "FLAGS_DEFAULTS": '{"a": "yes"}'})


def _names(client: TestClient, prefix: str) -> tuple[list[str], str]:
    response = client.get("/products?limit=100")
    assert response.status_code == 200
    return [p["name"] for p in response.json() if p["name"].startswith(prefix)], response.headers[
        "X-Flag-Sort-By-Price"
    ]


@pytest.fixture
def priced(client: TestClient) -> str:
    prefix = f"flag-{uuid.uuid4().hex[:8]}-"
    for name, price in (("b", "30.00"), ("a", "10.00"), ("c", "20.00")):  # created in this order
        assert (
            client.post("/products", json={"name": prefix + name, "price": price}).status_code
            == 201
        )
    return prefix


def test_the_flag_orders_the_listing_by_price(
    settings: Settings, agent: Agent, priced: str
) -> None:
    with TestClient(
        create_app(dataclasses.replace(settings, flags=FlagSettings(url=agent.url)))
    ) as client:
        assert _names(client, priced) == (
            [priced + "a", priced + "c", priced + "b"],
            "on; source=agent",
        )
    agent.values = {SORT: {"enabled": False}}
    with TestClient(
        create_app(dataclasses.replace(settings, flags=FlagSettings(url=agent.url)))
    ) as client:
        assert _names(client, priced) == (
            [priced + "c", priced + "a", priced + "b"],
            "off; source=agent",
        )


def test_with_no_agent_the_listing_still_answers_with_the_default(
    settings: Settings, unused_port: int, priced: str
) -> None:
    flags = FlagSettings(url=f"http://127.0.0.1:{unused_port}{PATH}", defaults={SORT: True})
    with TestClient(create_app(dataclasses.replace(settings, flags=flags))) as client:
        for _ in range(3):
            assert _names(client, priced) == (
                [priced + "a", priced + "c", priced + "b"],
                "on; source=default",
            )
