"""The local network layer: one bridge network per tier, as the VPC has one subnet tier each.

edge (the gateway's published port), app (gateway -> services -> collector) and data (services ->
PostgreSQL and Valkey). The data network is internal: no route out and nothing published, so only
containers attached to it reach the database, as only the isolated subnets' security groups do in AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

TIERS = ("edge", "app", "data")


@dataclass
class LocalNetworkArgs:
    name_prefix: str
    labels: dict[str, str]


class LocalNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:network:LocalNetwork", name, None, opts)
        self.networks: dict[str, docker.Network] = {
            tier: docker.Network(
                f"{name}-{tier}",
                name=f"{args.name_prefix}-{tier}",
                driver="bridge",
                internal=tier == "data",
                labels=labels(args.labels | {"tier": tier}),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for tier in TIERS
        }
        self.network_names = {tier: net.name for tier, net in self.networks.items()}
        self.register_outputs({"network_names": self.network_names})


def labels(values: dict[str, str]) -> list[docker.NetworkLabelArgs]:
    return [docker.NetworkLabelArgs(label=f"refarch.{k}", value=v) for k, v in sorted(values.items())]


def container_labels(values: dict[str, str]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=f"refarch.{k}", value=v) for k, v in sorted(values.items())]


def volume_labels(values: dict[str, str]) -> list[docker.VolumeLabelArgs]:
    return [docker.VolumeLabelArgs(label=f"refarch.{k}", value=v) for k, v in sorted(values.items())]
