"""Static checks of what ships: the Dockerfile, .dockerignore and the dependency lock.

No Docker engine is needed; these guard the properties the platform relies on.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SERVICE = Path(__file__).resolve().parents[1]
DOCKERFILE = (SERVICE / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(keyword: str) -> list[str]:
    return [line for line in INSTRUCTIONS if line.split()[0].upper() == keyword]


def test_base_image_is_pinned_to_an_exact_slim_version_and_digest() -> None:
    (default,) = [line for line in instructions("ARG") if line.startswith("ARG BASE_IMAGE=")]
    pinned = r"ARG BASE_IMAGE=python:\d+\.\d+\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}"
    assert re.fullmatch(pinned, default), default
    froms = instructions("FROM")
    assert len(froms) >= 2  # multi-stage
    assert all(line.startswith("FROM ${BASE_IMAGE} AS ") for line in froms)


def test_runtime_stage_is_non_root_with_healthcheck_and_port() -> None:
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    (user,) = [line for line in instructions("USER")]
    uid, _, gid = user.split()[1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (gid == "" or int(gid) > 0)
    assert "USER " in runtime
    assert instructions("EXPOSE") == ["EXPOSE 8080"]
    (healthcheck,) = instructions("HEALTHCHECK")
    assert '"python", "-m", "products.healthcheck"' in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert instructions("CMD")[-1] == 'CMD ["python", "-m", "products"]'
    for label in ("version", "revision", "created", "source"):
        assert f"org.opencontainers.image.{label}=" in DOCKERFILE


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    lines = (SERVICE / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"  # allow-list
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "requirements.lock", "src", "migrations"}
    copied = {
        part.rstrip("/")
        for line in instructions("COPY")
        if "--from" not in line
        for part in line.split()[1:-1]
    }
    assert copied <= allowed


def test_lock_pins_every_dependency_within_its_range() -> None:
    project = tomllib.loads((SERVICE / "pyproject.toml").read_text())["project"]
    pins: dict[str, str] = {}
    for line in (SERVICE / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing from requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} not in {spec}"
        if "binary" in requirement.extras:
            assert canonicalize_name(f"{name}-binary") in pins
