"""The local services layer: each service of the stack as a container, after its migration.

From the same ServiceConfig as the ECS task definition: image, port, environment, secrets (as files),
CPU and memory limits, the non-root user, the read-only root file system and the container health
check. The migration runs first as a one-shot container; the service is created only after it exited 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.config import ServiceConfig
from infra.config.services import IMAGE_USER
from infra.local import containers, flags
from infra.local.cache import LocalCache
from infra.local.database import LocalDatabase
from infra.local.secrets import CACHE_APP, DATABASE_APP, DATABASE_MASTER, LocalSecrets

COLLECTOR_HOST = "collector"
OTLP_ENDPOINT = f"http://{COLLECTOR_HOST}:4317"
# Fargate's cpu units: 1024 = one vCPU.
CPU_UNITS = 1024


def local_image(prefix: str, svc: ServiceConfig, images: dict[str, str]) -> str:
    """The image a local service runs: the engine's id written by `invoke build --stack local`, the
    stack's own `image`, or the tag the local build gives it."""
    return images.get(svc.name) or svc.image or f"{prefix}/{svc.name}:local"


def migration_succeeded(service: str):
    def check(code: int | None) -> str:
        if code not in (None, 0):  # None: a preview, where the migration has not run
            raise pulumi.RunError(f"services.{service}: the migration exited {code}; the service was not started")
        return str(code or 0)
    return check


def container_name(prefix: str, svc: ServiceConfig) -> str:
    return f"{prefix}-{svc.name}"


@dataclass
class LocalServicesArgs:
    services: list[ServiceConfig]
    images: dict[str, str]
    name_prefix: str
    stack: str
    environment: str
    networks: Mapping[str, pulumi.Input[str]]
    database: LocalDatabase
    cache: LocalCache
    secrets: LocalSecrets
    tracing: bool
    # The flags file (infra/local/flags.py) and the declared defaults; None: no flags declared.
    flags_file: str | None = None
    flag_defaults: str = "{}"


@dataclass
class LocalService:
    container: docker.Container
    migration: docker.Container | None
    host: str


class LocalServices(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:services:LocalServices", name, None, opts)
        self._args = args
        self.deployed = {svc.name: self._service(svc) for svc in args.services}
        self.register_outputs({"hosts": {n: s.host for n, s in self.deployed.items()}})

    def _environment(self, svc: ServiceConfig) -> tuple[dict[str, str], list[str]]:
        """The service's variables and the secret files they point at: the AWS names, local values."""
        args = self._args
        env = {**svc.environment, "PORT": str(svc.port)}
        files: list[str] = []
        if svc.uses_database:
            db = args.database
            env |= {"DATABASE_HOST": db.host, "DATABASE_PORT": str(db.port), "DATABASE_NAME": db.db_name,
                    "DATABASE_USER": db.app_username, "DATABASE_AUTH": "password",
                    "DATABASE_PASSWORD_FILE": args.secrets.container_path(DATABASE_APP),
                    "DATABASE_SSLMODE": "disable"}  # the data network never leaves this machine
            files.append(DATABASE_APP)
        if svc.uses_cache:
            cache = args.cache
            env |= {"CACHE_HOST": cache.host, "CACHE_PORT": str(cache.port), "CACHE_TLS": "false",
                    "CACHE_AUTH": "password", "CACHE_USER": cache.user_name,
                    "CACHE_AUTH_TOKEN_FILE": args.secrets.container_path(CACHE_APP)}
            files.append(CACHE_APP)
        if args.tracing:
            env |= {"OTEL_SERVICE_NAME": svc.name, "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_PROPAGATORS": "tracecontext,baggage",
                    "OTEL_RESOURCE_ATTRIBUTES": f"deployment.environment={args.environment}"}
        if args.flags_file:
            env |= {"FLAGS_URL": flags.URL, "FLAGS_DEFAULTS": args.flag_defaults}
        # `services[].secrets` (Secrets Manager in AWS): one file each, `<NAME>_FILE` to the app.
        for key in sorted(svc.secrets):
            env[f"{key}_FILE"] = args.secrets.container_path(key)
            files.append(key)
        return env, files

    def _base(self, svc: ServiceConfig, image: str, env: dict[str, str], files: list[str]) -> dict[str, Any]:
        return containers.hardened(
            image=image,
            user=IMAGE_USER,
            read_only=svc.read_only_root_filesystem,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"} if svc.read_only_root_filesystem else None,
            envs=[f"{k}={env[k]}" for k in sorted(env)],
            mounts=containers.secret_mounts(self._args.secrets, files),
            memory=svc.memory,
            cpus=f"{svc.cpu / CPU_UNITS:g}",
            labels=containers.labels("services", self._args.stack, {"service": svc.name}),
        )

    def _service(self, svc: ServiceConfig) -> LocalService:
        args = self._args
        image = local_image(args.name_prefix, svc, args.images)
        env, files = self._environment(svc)
        data = {"data": args.networks["data"]} if svc.uses_database or svc.uses_cache else {}
        depends: list[pulumi.Resource] = []
        if svc.uses_database:
            depends.append(args.database.container)
        if svc.uses_cache:
            depends.append(args.cache.container)
        migration = None
        if svc.migrate_command:
            migration = self._migration(svc, image, env, files, data, depends)
            depends = [migration]
        name = container_name(args.name_prefix, svc)
        base = self._base(svc, image, env, files)
        if args.flags_file:  # the service only: the migration reads no flags
            base["mounts"] = [*base["mounts"], docker.ContainerMountArgs(
                type="bind", source=args.flags_file, target=flags.MOUNT, read_only=True)]
        check = svc.health_check
        if check.command:
            base["healthcheck"] = containers.healthcheck(
                check.command, interval=check.interval, timeout=check.timeout,
                retries=check.unhealthy_threshold, start_period=check.grace_period)
            base["wait"] = True
            base["wait_timeout"] = check.grace_period + check.interval * (check.unhealthy_threshold + 1)
        if migration is not None:
            # The provider waits for an attached container but does not judge its exit code: the
            # service's labels take the checked code, so a failed migration stops `up` before it.
            base["labels"] = [*base["labels"], docker.ContainerLabelArgs(
                label="refarch.migration-exit-code", value=migration.exit_code.apply(migration_succeeded(svc.name)))]
        container = docker.Container(
            f"{svc.name}-service",
            **base,
            name=name,
            networks_advanced=containers.attach({"app": args.networks["app"], **data}, [svc.name]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        return LocalService(container=container, migration=migration, host=svc.name)

    def _migration(self, svc: ServiceConfig, image: str, env: dict[str, str], files: list[str],
                   data: dict[str, pulumi.Input[str]], depends: list[pulumi.Resource]) -> docker.Container:
        """The one-shot migration: as the master user (C2), creating the application's role."""
        args = self._args
        plain = {k: v for k, v in env.items() if not k.startswith(("OTEL_", "FLAGS_"))} | {"OTEL_SDK_DISABLED": "true"}
        files = [f for f in files if f != DATABASE_APP]
        if svc.uses_database:
            plain |= {"DATABASE_AUTH": "password", "DATABASE_USER": args.database.username,
                      "DATABASE_APP_USER": args.database.app_username,
                      "DATABASE_PASSWORD_FILE": args.secrets.container_path(DATABASE_MASTER),
                      # The app role logs in with a password here (IAM tokens in AWS): the migration sets it.
                      "DATABASE_APP_PASSWORD_FILE": args.secrets.container_path(DATABASE_APP)}
            files += [DATABASE_MASTER, DATABASE_APP]
        base = self._base(svc, image, plain, files) | {"restart": "no"}
        return docker.Container(
            f"{svc.name}-migrate",
            **base,
            name=f"{container_name(args.name_prefix, svc)}-migrate",
            command=list(svc.migrate_command or []),
            # Attached: `up` waits for it to exit, and `exit_code` records how; the service depends on it.
            must_run=False, attach=True, logs=True,
            networks_advanced=containers.attach(data, []),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
