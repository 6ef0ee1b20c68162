"""The local gateway layer: HAProxy applying the stack's routes exactly as the ALB listener does.

Published on 127.0.0.1 only; attached to the edge network (its published port) and the app network
(the services), never to the data network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.config import ServiceConfig
from infra.local import containers, haproxy

# The root file system is read-only and the engine refuses to copy into one, so the configuration
# travels in the environment (it holds no secret) and is written to the tmpfs before HAProxy starts.
CONFIG_ENV = "HAPROXY_CONFIG"
CONFIG_PATH = "/tmp/haproxy.cfg"
COMMAND = ["/bin/sh", "-c", f'printf "%s" "${CONFIG_ENV}" > {CONFIG_PATH} && exec haproxy -W -db -f {CONFIG_PATH}']


@dataclass
class LocalGatewayArgs:
    services: list[ServiceConfig]
    hosts: dict[str, str]
    image: str
    name_prefix: str
    stack: str
    port: int
    networks: Mapping[str, pulumi.Input[str]]


class LocalGateway(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:gateway:LocalGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(f"{name}-image", name=args.image, keep_locally=True, opts=child)
        self.config_text = haproxy.render(args.services, args.hosts)
        self.container = docker.Container(
            name,
            **containers.hardened(read_only=True, user="99:99"),
            name=f"{args.name_prefix}-gateway",
            image=image.image_id,
            command=COMMAND,
            envs=[f"{CONFIG_ENV}={self.config_text}"],
            tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
            ports=[containers.published(haproxy.LISTEN_PORT, args.port)],
            networks_advanced=containers.attach(
                {"edge": args.networks["edge"], "app": args.networks["app"]}, ["gateway"]),
            labels=containers.labels("gateway", args.stack),
            opts=child,
        )
        self.url = f"http://{containers.LOOPBACK}:{args.port}"
        self.register_outputs({"url": self.url})
