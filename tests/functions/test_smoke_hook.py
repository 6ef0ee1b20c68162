"""The smoke-hook Lambda's code, run for real against a local HTTP server standing in for the gateway.

Events are the payloads the ECS developer guide documents ("Lambda hooks for Amazon ECS service
deployments" > "Lifecycle payloads"); answers are checked against its `hookStatus` contract.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "smoke_hook" / "handler.py"
TOKEN = "products-s3cr3tvalue"
GREEN = "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/9313423515462893900"
BLUE = "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/1920498462936580504"


def load_handler():
    spec = importlib.util.spec_from_file_location("smoke_hook_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Gateway:
    url: str = ""
    statuses: dict[str, int] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state = Gateway()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.requests.append({"path": self.path, "headers": dict(self.headers)})
            time.sleep(state.delays.get(self.path, 0))
            status = state.statuses.get(self.path, 200)
            body = b"ok"
            try:
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def hook(monkeypatch):
    # What infra/aws/deployment.py puts in the function's environment.
    monkeypatch.setenv("TEST_HEADER", "X-Refarch-Test-Route")
    monkeypatch.setenv("TEST_ROUTES", json.dumps({"products": TOKEN}))
    monkeypatch.setenv("ATTEMPTS", "3")
    monkeypatch.setenv("RETRY_SECONDS", "15")
    return load_handler()


def event(gateway: Gateway, stage: str = "POST_TEST_TRAFFIC_SHIFT", **details: Any) -> dict[str, Any]:
    """The documented POST_TEST_TRAFFIC_SHIFT payload with the service's hookDetails."""
    hook_details = {"service": "products", "url": gateway.url, "paths": ["/products", "/health/ready"],
                    "timeoutSeconds": 2, **details}
    return {
        "executionId": "3a0345ba-b029-404b-890d-7da2a4b266aa",
        "lifecycleStage": stage,
        "resourceArn": "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5RNVLH6PPzHXINuP28",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service",
            "targetServiceRevisionArn": GREEN,
            "testTrafficWeights": {},
            "productionTrafficWeights": {},
        },
        "hookDetails": hook_details,
    }


def test_healthy_revision_passes_after_calling_both_paths_through_the_test_rule(hook, gateway, capsys):
    assert hook.handler(event(gateway)) == {"hookStatus": "SUCCEEDED"}
    assert [r["path"] for r in gateway.requests] == ["/products", "/health/ready"]
    for request in gateway.requests:
        assert request["headers"]["X-Refarch-Test-Route"] == TOKEN  # what the test rule matches
        assert request["headers"]["User-Agent"] == "refarch-smoke-hook/1"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert logged[-1]["event"] == "passed" and logged[-1]["revision"] == GREEN
    assert TOKEN not in json.dumps(logged), "the routing key is never logged"


def test_a_failing_path_is_retried_then_fails_the_deployment(hook, gateway, capsys):
    gateway.statuses["/products"] = 500
    first = hook.handler(event(gateway))
    assert first == {"hookStatus": "IN_PROGRESS", "callBackDelay": 15, "hookDetails": {"attempt": 1}}
    # ECS merges the returned hookDetails into the next invocation's.
    second = hook.handler(event(gateway, attempt=1))
    assert second["hookStatus"] == "IN_PROGRESS" and second["hookDetails"] == {"attempt": 2}
    assert hook.handler(event(gateway, attempt=2)) == {"hookStatus": "FAILED"}
    failed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert failed["event"] == "failed" and failed["failures"][0].startswith("GET /products -> 500 in ")


def test_an_unready_revision_fails_on_its_health_path(hook, gateway):
    gateway.statuses["/health/ready"] = 503  # C3: readiness answers 503 when the database does not
    assert hook.handler(event(gateway, attempt=2))["hookStatus"] == "FAILED"


def test_a_revision_that_does_not_answer_in_time_fails(hook, gateway, capsys):
    gateway.delays["/products"] = 1.5
    started = time.monotonic()
    answer = hook.handler(event(gateway, timeoutSeconds=0.3, attempt=2))
    assert answer == {"hookStatus": "FAILED"}
    assert time.monotonic() - started < 1.4, "the request timeout bounds the hook, not the slow server"
    failures = json.loads(capsys.readouterr().out.splitlines()[-1])["failures"]
    assert failures[0].startswith("GET /products: ") and "timed out" in failures[0]


def test_an_unreachable_gateway_fails(hook, gateway):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert hook.handler(event(gateway, url=dead, attempt=2)) == {"hookStatus": "FAILED"}


def test_redirects_count_as_answers_and_are_not_followed(hook, gateway):
    gateway.statuses["/products"] = 302
    assert hook.handler(event(gateway)) == {"hookStatus": "SUCCEEDED"}
    assert [r["path"] for r in gateway.requests] == ["/products", "/health/ready"]


def test_host_based_routes_send_the_route_host(hook, gateway):
    assert hook.handler(event(gateway, host="api.example.com"))["hookStatus"] == "SUCCEEDED"
    assert {r["headers"]["Host"] for r in gateway.requests} == {"api.example.com"}


def test_hook_details_as_the_json_document_ecs_stores(hook, gateway):
    payload = event(gateway)
    payload["hookDetails"] = json.dumps(payload["hookDetails"])
    assert hook.handler(payload) == {"hookStatus": "SUCCEEDED"}


@pytest.mark.parametrize("broken", [{"service": "orders"}, {"url": "ftp://x"}, {"paths": []}, {"paths": None}])
def test_a_hook_that_cannot_test_fails_the_deployment_instead_of_passing_it(hook, gateway, broken):
    assert hook.handler(event(gateway, **broken)) == {"hookStatus": "FAILED"}
    assert gateway.requests == []


def test_other_stages_are_not_tested(hook, gateway):
    # The documented rollback payload: PRODUCTION_TRAFFIC_SHIFT with the blue revision back at 100 %.
    payload = event(gateway, stage="PRODUCTION_TRAFFIC_SHIFT")
    payload["executionDetails"]["productionTrafficWeights"] = {GREEN: 0, BLUE: 100}
    assert hook.handler(payload) == {"hookStatus": "SUCCEEDED"}
    assert gateway.requests == []
