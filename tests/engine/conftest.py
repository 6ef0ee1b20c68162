"""The real container engine: dockerd on the local socket, a registry on 127.0.0.1:5000, base images.

`.ci/run` starts all of it (`bash .ci/engine.sh up DIR`). Every test here carries the `engine`
marker: under CI=true a missing engine fails the run; locally the tests skip, saying how to start one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("REFARCH_TEST_REGISTRY", "127.0.0.1:5000")
ENGINE_DIR = Path(os.environ.get("REFARCH_ENGINE_DIR", "/tmp/refarch-engine"))
START = "bash .ci/engine.sh up /tmp/refarch-engine"
BASE_IMAGES = {"python": "local/python:3.11-bookworm", "postgres": "local/postgres:15", "redis": "local/redis:7"}
# Registry traffic stays on 127.0.0.1: never through a proxy a machine may have configured.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {why}: .ci/run starts the engine ({START})", pytrace=False)
    pytest.skip(f"{why}: start one with `{START}`")


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """A docker SDK client on the local socket, with buildx, the registry and the base images there."""
    import docker

    plugin = ENGINE_DIR / "docker-config" / "cli-plugins" / "docker-buildx"
    if "DOCKER_CONFIG" not in os.environ and plugin.is_file():
        # The CLI (and so the adapter's `docker buildx`) finds the engine's buildx plugin there.
        os.environ["DOCKER_CONFIG"] = str(plugin.parents[1])
    try:
        client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=120)
        client.ping()
    except Exception:  # the SDK raises several kinds for a missing or dead socket
        _unavailable("no container engine answers on /var/run/docker.sock")
    if subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode != 0:
        _unavailable("docker buildx is not installed")
    missing = [tag for tag in BASE_IMAGES.values() if not client.images.list(name=tag)]
    if missing:
        _unavailable(f"the engine has no base image {', '.join(missing)}")
    try:
        registry_digest(f"{REGISTRY}/none/none", "none")
    except OSError:
        _unavailable(f"no registry answers on {REGISTRY}")
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _needs_engine(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("engine"):
        request.getfixturevalue("engine")


def registry_digest(repository: str, reference: str) -> str | None:
    """What the registry itself says: the Docker-Content-Digest of repository:reference, checked
    against the sha256 of the manifest bytes it serves (None: no such manifest)."""
    host, _, name = repository.partition("/")
    request = urllib.request.Request(f"http://{host}/v2/{name}/manifests/{reference}",
                                     headers={"Accept": _MANIFEST_TYPES})
    try:
        with _direct.open(request, timeout=10) as response:
            body, header = response.read(), response.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    assert header == computed, f"registry header {header} != sha256 of its manifest {computed}"
    return str(header)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Built:
    repository: str
    tag: str
    digest: str
    git_sha: str

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


def build_products(repository: str, *, push: bool = True) -> str | None:
    """`invoke build`'s own adapter call for services/products, on the local base image."""
    from ops.delivery.docker_adapter import Docker
    from ops.delivery.git import Git

    git = Git(ROOT)
    return Docker().buildx_build(
        context="services/products", repository=repository, git_sha=git.sha(), architecture="X86_64",
        source_url="https://github.com/acme/refarch", created="2026-11-27T18:30:00Z", push=push,
        base_image=BASE_IMAGES["python"], source_date_epoch=git.commit_time())


@pytest.fixture(scope="session")
def built(engine: Any) -> Built:
    """services/products built once per worker and pushed to a repository of its own."""
    from ops.delivery.git import Git

    repository = f"{REGISTRY}/{unique('refarch-dev')}/products"
    digest = build_products(repository)
    assert digest is not None
    # The run tests start exactly what the registry holds, by digest.
    engine.images.pull(f"{repository}@{digest}")
    return Built(repository, Git(ROOT).sha(), digest, Git(ROOT).sha())


@pytest.fixture
def network(engine: Any) -> Iterator[Any]:
    """A user-defined bridge network of this test's own (DNS by container name)."""
    net = engine.networks.create(unique("refarch-test"), driver="bridge")
    try:
        yield net
    finally:
        for container in engine.containers.list(all=True, filters={"network": net.name}):
            container.remove(force=True)
        net.remove()


@dataclass(frozen=True)
class Postgres:
    container: Any
    host: str
    password: str

    def psql(self, sql: str) -> str:
        code, out = self.container.exec_run(["psql", "-U", "postgres", "-tAX", "-c", sql])
        assert code == 0, out.decode()
        return str(out.decode().strip())


def wait_for(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.3)


@pytest.fixture
def postgres(engine: Any, network: Any) -> Postgres:
    password = uuid.uuid4().hex
    name = unique("pg")
    container = engine.containers.run(BASE_IMAGES["postgres"], name=name, detach=True, network=network.name,
                                      environment={"POSTGRES_PASSWORD": password})
    wait_for(lambda: container.exec_run(["pg_isready", "-h", "127.0.0.1", "-q"]).exit_code == 0,
             timeout=60, what="PostgreSQL ready")
    return Postgres(container, name, password)


@pytest.fixture
def redis(engine: Any, network: Any) -> str:
    name = unique("redis")
    container = engine.containers.run(BASE_IMAGES["redis"], name=name, detach=True, network=network.name)
    wait_for(lambda: container.exec_run(["redis-cli", "ping"]).output.strip() == b"PONG",
             timeout=30, what="Redis ready")
    return name


def service_env(pg: Postgres, cache_host: str | None = None) -> dict[str, str]:
    """The env the platform gives the service, in password mode (C2: local and tests)."""
    env = {"DATABASE_HOST": pg.host, "DATABASE_PORT": "5432", "DATABASE_NAME": "postgres",
           "DATABASE_USER": "postgres", "DATABASE_AUTH": "password", "DATABASE_PASSWORD": pg.password,
           "DATABASE_SSLMODE": "disable"}
    if cache_host:
        env |= {"CACHE_HOST": cache_host, "CACHE_PORT": "6379", "CACHE_AUTH": "none", "CACHE_TLS": "false"}
    return env


def manifest_json(repository: str, reference: str) -> dict[str, Any]:
    host, _, name = repository.partition("/")
    request = urllib.request.Request(f"http://{host}/v2/{name}/manifests/{reference}",
                                     headers={"Accept": _MANIFEST_TYPES})
    with _direct.open(request, timeout=10) as response:
        return dict(json.loads(response.read()))
