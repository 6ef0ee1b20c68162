"""What every local container shares: hardening, labels, secrets mounts and network attachment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.local.network import container_labels
from infra.local.secrets import LocalSecrets

LOOPBACK = "127.0.0.1"


def seconds(value: int) -> str:
    return f"{value}s"


def healthcheck(command: list[str], *, interval: int, timeout: int, retries: int,
                start_period: int) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=command, interval=seconds(interval), timeout=seconds(timeout), retries=retries,
        start_period=seconds(start_period))


def secret_mounts(secrets: LocalSecrets, names: list[str]) -> list[docker.ContainerMountArgs]:
    """Each secret file bind-mounted read-only at /run/secrets/<name>: the path, never the value."""
    return [docker.ContainerMountArgs(type="bind", source=secrets.host_path(name),
                                      target=secrets.container_path(name), read_only=True)
            for name in names]


def attach(networks: Mapping[str, pulumi.Input[str]], aliases: list[str]) -> list[docker.ContainerNetworksAdvancedArgs]:
    return [docker.ContainerNetworksAdvancedArgs(name=net, aliases=aliases) for _, net in sorted(networks.items())]


def published(internal: int, external: int) -> docker.ContainerPortArgs:
    # Loopback only: the local stack is never reachable from another machine.
    return docker.ContainerPortArgs(internal=internal, external=external, ip=LOOPBACK, protocol="tcp")


def hardened(**overrides: Any) -> dict[str, Any]:
    """Container arguments every local container starts from: no privilege, no new privileges."""
    base: dict[str, Any] = {
        "privileged": False,
        "security_opts": ["no-new-privileges:true"],
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        "restart": "unless-stopped",
        "log_driver": "json-file",
        "log_opts": {"max-size": "10m", "max-file": "3"},
    }
    return base | overrides


def labels(layer: str, stack: str, extra: dict[str, str] | None = None) -> list[docker.ContainerLabelArgs]:
    return container_labels({"layer": layer, "stack": stack, **(extra or {})})
