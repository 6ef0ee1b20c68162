"""The local stack rehearsed on the real engine: what its synth registers, created and exercised.

The telemetry images (the OpenTelemetry collector, Jaeger) cannot be built from Debian packages, so
the rehearsal runs the stack with `local.telemetry: false`; their containers are covered under the
mock runtime (tests/local/test_local_target.py).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra.config import parse
from infra.local import flags as local_flags
from infra.local import secrets as local_secrets
from ops import stackfile
from ops.synth import run
from tests.delivery.conftest import free_port
from tests.engine.conftest import built, engine  # noqa: F401 - the engine tests' own fixtures
from tests.local.rehearsal import Rehearsal

pytestmark = pytest.mark.engine
IMAGES = Path(__file__).parent / "images"
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def stand_ins(engine):  # noqa: F811
    """The platform images the local stack pins, rebuilt from Debian packages (nothing can be pulled)."""
    tags = {}
    for name in ("postgres", "valkey", "haproxy"):
        tag = f"refarch-rehearsal/{name}:local"
        engine.images.build(path=str(IMAGES / name), tag=tag, rm=True)
        tags[name] = tag
    return tags


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The rehearsal's own project root: its secrets and flags files live here."""
    return tmp_path_factory.mktemp("local-stack")


@pytest.fixture(scope="module")
def stack(engine, built, stand_ins, root):  # noqa: F811
    import infra.local.program as program

    values = stackfile.read_values("local")
    values["refarch:local"] = {**values["refarch:local"], "telemetry": False}
    values["refarch:images"] = {"products": built.ref}
    config = parse(values, "local", "stacks/Pulumi.local.yaml")
    local_secrets.ensure(root / config.local_target.secrets_dir, "app", [])
    local_flags.ensure(local_flags.host_file(root, "local"), config.flags)  # what `invoke up` writes
    original = program.ROOT
    program.ROOT = root  # the secrets' host paths point into this test's own directory
    try:
        synth = run(config, "local")
    finally:
        program.ROOT = original
    gateway_port = free_port()
    images = {"database": stand_ins["postgres"], "cache": stand_ins["valkey"], "gateway": stand_ins["haproxy"],
              "products-migrate": built.ref, "products-service": built.ref}
    rehearsal = Rehearsal(engine, synth, images, uuid.uuid4().hex[:6], {config.local_target.gateway_port: gateway_port})
    try:
        rehearsal.up()
        yield rehearsal, f"http://127.0.0.1:{gateway_port}"
    finally:
        rehearsal.down()
        left = [c.name for c in engine.containers.list(all=True) if c.name.endswith(rehearsal.suffix)]
        assert left == [], f"the rehearsal left {left}"


def call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with _direct.open(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


def eventually(url: str, status: int, timeout: float = 30) -> tuple[int, dict[str, str], str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = call(url)
            if got[0] == status or time.monotonic() > deadline:
                return got
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_local_stack_starts_in_dependency_order(stack):
    rehearsal, _ = stack
    order = rehearsal.order
    assert order.index("database") < order.index("products-migrate") < order.index("products-service")
    assert order.index("cache") < order.index("products-migrate")


def test_local_products_through_the_gateway_come_from_postgres_then_the_cache(stack):
    _, base = stack
    assert eventually(f"{base}/products", 200)[0] == 200  # the gateway's health check saw the service up
    status, _, body = call(f"{base}/products", "POST", {"name": "rehearsal lamp", "price": "12.50"})
    assert status == 201, body
    product = json.loads(body)
    status, headers, body = call(f"{base}/products/{product['id']}")
    assert (status, headers.get("x-cache"), json.loads(body)["name"]) == (200, "miss", "rehearsal lamp")
    status, headers, _ = call(f"{base}/products/{product['id']}")
    assert (status, headers.get("x-cache")) == (200, "hit")
    status, _, body = call(f"{base}/products")
    assert status == 200 and "rehearsal lamp" in body


def test_local_flag_flipped_in_its_file_changes_what_the_service_serves(stack, root):
    _, base = stack
    flags_file = local_flags.host_file(root, "local")
    assert eventually(f"{base}/products", 200)[0] == 200
    for price in ("30.00", "10.00", "20.00"):
        assert call(f"{base}/products", "POST", {"name": f"flag lamp {price}", "price": price})[0] == 201
    assert call(f"{base}/products")[1].get("x-flag-sort-by-price") == "off; source=agent"
    document = json.loads(flags_file.read_text())
    document["catalog-sort-by-price"]["enabled"] = True
    flags_file.write_text(json.dumps(document))
    deadline = time.monotonic() + 30  # the service re-reads its flags every few seconds
    while time.monotonic() < deadline:
        _, headers, body = call(f"{base}/products")
        if headers.get("x-flag-sort-by-price") == "on; source=agent":
            break
        time.sleep(0.5)
    assert headers.get("x-flag-sort-by-price") == "on; source=agent"
    prices = [float(p["price"]) for p in json.loads(body)]
    assert prices == sorted(prices)


def test_local_gateway_answers_an_undeclared_path_with_the_fixed_404(stack):
    _, base = stack
    status, _, body = call(f"{base}/not-a-route")
    assert (status, body) == (404, "Not Found")


def test_local_gateway_cannot_reach_postgres_but_the_service_can(stack):
    rehearsal, _ = stack
    probe = "exec 3<>/dev/tcp/database/5432 && echo open"
    code, out = rehearsal.containers["gateway"].exec_run(["/bin/bash", "-c", probe])
    assert code != 0 and b"open" not in out, out
    service = rehearsal.containers["products-service"]
    code, out = service.exec_run(["python", "-c", "import socket; socket.create_connection(('database', 5432), 3)"])
    assert code == 0, out


def test_local_cache_stopped_degrades_as_the_service_documents(stack):
    rehearsal, base = stack
    rehearsal.containers["cache"].stop(timeout=5)
    try:
        status, _, body = call(f"{base}/products")
        assert status == 200, body
        # The ALB never routes /health either: ask the service itself, as its target group's check does.
        probe = ("import urllib.request as u; r = u.urlopen('http://127.0.0.1:8080/health/ready', timeout=5); "
                 "print(r.status, r.read().decode())")
        code, out = rehearsal.containers["products-service"].exec_run(["python", "-c", probe])
        assert code == 0 and out.decode().startswith("200 ") and "degraded" in out.decode(), out
    finally:
        rehearsal.containers["cache"].start()


def test_local_up_builds_each_service_into_the_engine_for_this_machine(engine):  # noqa: F811
    from ops import local
    from ops.delivery.docker_adapter import Docker
    from ops.delivery.git import Git
    from tests.engine.conftest import BASE_IMAGES, ROOT

    config = stackfile.load("local")
    images = local.build_images("local", config, Docker(), engine, Git(ROOT), base_image=BASE_IMAGES["python"])
    image = engine.images.get("refarch-local/products:local")
    assert images == {"products": image.id}
    assert image.attrs["Architecture"] == {"X86_64": "amd64", "ARM64": "arm64"}[local.host_architecture()]


def test_local_pin_resolves_what_the_registry_holds(engine, stand_ins):  # noqa: F811
    """The digest `invoke local-pin` writes is the registry's own, read from a real registry."""
    from ops import local
    from tests.engine.conftest import REGISTRY, registry_digest

    repository = f"{REGISTRY}/rehearsal-{uuid.uuid4().hex[:6]}/haproxy"
    image = engine.images.get(stand_ins["haproxy"])
    image.tag(repository, "3.2-bookworm")
    engine.images.push(repository, tag="3.2-bookworm")
    assert local.registry_digest(f"{repository}:3.2-bookworm") == registry_digest(repository, "3.2-bookworm")


def test_local_invoke_build_builds_into_the_engine_and_says_there_is_no_digest(engine, capsys):  # noqa: F811
    from ops.delivery import build, default_deps
    from tests.engine.conftest import BASE_IMAGES

    assert build.run("local", base_image=BASE_IMAGES["python"], deps=default_deps()) is None
    image = engine.images.get("refarch-local/products:local")
    assert f"products: {image.id} (in the local engine; no registry digest)" in capsys.readouterr().out
