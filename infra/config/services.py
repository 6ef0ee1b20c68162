"""`refarch:services[]`: each service's container, health check, routes and data access."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import ENV_NAME, FARGATE_SIZES, RESERVED_ENV, SECRET_LOOKING, Strict
from infra.config.gateway import Route

HEALTH_PATH = "/health/ready"  # contract C3: DB reachable; the load balancer's and the smoke's check
ALB_HEALTH_PATH_MAX = 1024
# The numeric USER the service images are built with (services/products/Dockerfile); both targets
# run their containers as it.
IMAGE_USER = "10001"
ROUTES_PER_SERVICE = 10  # listener rule priorities are spaced this far apart per service
RULE_PRIORITY_BASE = 100


def rule_priorities(service_index: int, routes: int) -> list[int]:
    """The gateway rule priority of each route of the service at `service_index`: stable, unique,
    readable (base + 10 x service index + route index). Both targets' gateways evaluate in this order."""
    return [RULE_PRIORITY_BASE + ROUTES_PER_SERVICE * service_index + j for j in range(routes)]
# ECS refuses a task definition whose container definitions exceed 64 KiB (RegisterTaskDefinition).
CONTAINER_DEFINITIONS_MAX = 65536
# What the platform adds to a service's own environment, secrets and commands: its environment
# (DATABASE_*, CACHE_*, OTEL_*), log configuration, mounts and the collector container. Measured
# at about 3 KiB on the shipped stacks (tests/config/test_values.py keeps this an upper bound).
PLATFORM_DEFINITION_BYTES = 8192
DIGEST_PINNED = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


def url_path_problem(what: str, value: str) -> str | None:
    if not value.startswith("/"):
        return f"{what} {value!r} must start with '/'"
    if len(value) > ALB_HEALTH_PATH_MAX:
        return f"{what} is {len(value)} characters, at most {ALB_HEALTH_PATH_MAX}"
    if any(ch.isspace() for ch in value):
        return f"{what} {value!r} may not contain whitespace"
    return None


class HealthCheck(Strict):
    path: str = HEALTH_PATH
    interval: Annotated[int, Field(ge=5, le=300)] = 10
    timeout: Annotated[int, Field(ge=2, le=120)] = 5
    healthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    unhealthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    # Seconds the ALB keeps draining a deregistered task: AWS's default is 300.
    deregistration_delay: Annotated[int, Field(ge=0, le=3600)] = 15
    grace_period: Annotated[int, Field(ge=0, le=3600)] = 30
    # Container-level check (ECS does not read the image's HEALTHCHECK); None: the ALB check only.
    command: list[str] | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        problem = url_path_problem("health check path", value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheck:
        if self.timeout >= self.interval:
            raise ValueError(f"timeout ({self.timeout}s) must be shorter than interval ({self.interval}s)")
        return self

    @property
    def rollout_lower_bound(self) -> int:
        """Seconds a rolling deployment cannot beat: new targets healthy, old ones drained."""
        return self.healthy_threshold * self.interval + self.deregistration_delay


class ServiceConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,23}$")]
    # Exactly one: an image reference to run as is, or a build context the pipeline builds.
    image: str | None = None
    build: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    cpu: int = 256
    memory: int = 512
    architecture: Literal["ARM64", "X86_64"] = "ARM64"
    desired_count: Annotated[int, Field(ge=0, le=1000)] = 2
    min_count: Annotated[int, Field(ge=0, le=1000)] = 2
    max_count: Annotated[int, Field(ge=1, le=1000)] = 10
    health_check: HealthCheck = HealthCheck()
    routes: Annotated[list[Route], Field(min_length=1)] = [Route()]
    # Path the deploy smoke check GETs through the gateway (expects < 400); default: first route's prefix.
    smoke_path: str | None = None
    environment: dict[str, str] = {}
    # Env var name -> Secrets Manager secret ARN (optionally ":json-key::" suffixed).
    secrets: dict[str, str] = {}
    uses_database: bool = False
    uses_cache: bool = False
    # Command run as a one-off task before a deploy switches traffic (schema migrations).
    migrate_command: list[str] | None = None
    spot_share: Annotated[int, Field(ge=0, le=100)] = 0  # percent of tasks on FARGATE_SPOT
    read_only_root_filesystem: bool = True
    # Carried as an AWS tag value, hence the character set.
    writable_root_reason: Annotated[str, Field(pattern=r"^[A-Za-z0-9 _.:/=+\-@]+$", min_length=3, max_length=256)] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # The name is an ECR repository path component, an ECS service name and part of IAM role names.
        if value.endswith("-") or "--" in value:
            raise ValueError(f"{value!r}: a service name may not end with '-' or hold '--' (ECR repository rules)")
        return value

    @field_validator("smoke_path")
    @classmethod
    def _smoke(cls, value: str | None) -> str | None:
        problem = value is not None and url_path_problem("smoke path", value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("routes")
    @classmethod
    def _route_count(cls, value: list[Route]) -> list[Route]:
        if len(value) > ROUTES_PER_SERVICE:
            raise ValueError(f"{len(value)} routes: at most {ROUTES_PER_SERVICE} per service "
                             f"(listener rule priorities are spaced {ROUTES_PER_SERVICE} apart)")
        return value

    @field_validator("environment", "secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if RESERVED_ENV.match(key):
                raise ValueError(f"{key!r} is reserved: the platform injects DATABASE_*, CACHE_*, OTEL_*, AWS_*, ECS_*")
        return value

    @field_validator("environment")
    @classmethod
    def _no_plain_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if SECRET_LOOKING.search(key):
                raise ValueError(f"{key!r} looks like a secret: move it to `secrets` (a Secrets Manager reference)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_refs(cls, value: dict[str, str]) -> dict[str, str]:
        for key, ref in value.items():
            if not re.match(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:", ref):
                raise ValueError(f"{key}: {ref!r} is not a Secrets Manager secret ARN")
        return value

    @property
    def smoke_url_path(self) -> str:
        return self.smoke_path or self.routes[0].prefix() or "/"

    @model_validator(mode="after")
    def _checks(self) -> ServiceConfig:
        if (self.image is None) == (self.build is None):
            raise ValueError("set exactly one of `image` (run as is) or `build` (context to build)")
        if self.memory not in FARGATE_SIZES.get(self.cpu, ()):
            if self.cpu not in FARGATE_SIZES:
                raise ValueError(f"cpu {self.cpu} is not a Fargate size: use one of {sorted(FARGATE_SIZES)}")
            allowed = FARGATE_SIZES[self.cpu]
            raise ValueError(
                f"Fargate does not accept cpu {self.cpu} with memory {self.memory}: "
                f"use memory {allowed[0]}..{allowed[-1]} in steps of {allowed[1] - allowed[0] if len(allowed) > 1 else allowed[0]}"
            )
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError(
                f"counts must satisfy min_count <= desired_count <= max_count "
                f"(got {self.min_count} <= {self.desired_count} <= {self.max_count})"
            )
        overlap = set(self.environment) & set(self.secrets)
        if overlap:
            raise ValueError(f"{sorted(overlap)} set in both environment and secrets")
        if not self.read_only_root_filesystem and not self.writable_root_reason:
            raise ValueError("read_only_root_filesystem: false needs writable_root_reason")
        size = self.definition_bytes()
        if size > CONTAINER_DEFINITIONS_MAX:
            raise ValueError(f"its container definitions would be about {size} bytes, ECS allows "
                             f"{CONTAINER_DEFINITIONS_MAX}: move large values out of `environment`")
        return self

    def definition_bytes(self) -> int:
        """An upper bound of the JSON size of this service's container definitions."""
        import json

        own = [
            [{"name": k, "value": v} for k, v in self.environment.items()],
            [{"name": k, "valueFrom": v} for k, v in self.secrets.items()],
            self.health_check.command or [], self.migrate_command or [], self.image or "",
        ]
        return len(json.dumps(own)) + PLATFORM_DEFINITION_BYTES
