"""The local cache layer: Valkey of the ElastiCache config's version, on the data network only.

Its users come from an ACL file (default user off, the application's user with its password), as
ElastiCache's user group does; the password lives in the local secrets directory, never in state.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.config import CacheConfig
from infra.local import containers
from infra.local.network import volume_labels
from infra.local.secrets import CACHE_ACL, CACHE_APP, CACHE_USER, LocalSecrets

PORT = 6379
HOST = "cache"
DATA_DIR = "/data"  # the official image's, owned by its valkey user (999)


@dataclass
class LocalCacheArgs:
    config: CacheConfig
    image: str
    name_prefix: str
    stack: str
    data_network: pulumi.Input[str]
    secrets: LocalSecrets


class LocalCache(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:cache:LocalCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(f"{name}-image", name=args.image, keep_locally=True, opts=child)
        acl = args.secrets.container_path(CACHE_ACL)
        password = args.secrets.container_path(CACHE_APP)
        volume = docker.Volume(f"{name}-data", name=f"{args.name_prefix}-cache",
                               labels=volume_labels({"layer": "cache", "stack": args.stack}), opts=child)
        # Snapshots as the ElastiCache config keeps them: hourly to the volume when it keeps any.
        save = ["--save", "3600 1"] if args.config.snapshot_retention_days > 0 else ["--save", ""]
        self.container = docker.Container(
            name,
            **containers.hardened(read_only=True, user="999:999"),
            name=f"{args.name_prefix}-cache",
            image=image.image_id,
            command=["valkey-server", "--aclfile", acl, *save, "--appendonly", "no", "--dir", DATA_DIR],
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=DATA_DIR)],
            mounts=containers.secret_mounts(args.secrets, [CACHE_ACL, CACHE_APP]),
            networks_advanced=containers.attach({"data": args.data_network}, [HOST]),
            healthcheck=containers.healthcheck(
                ["CMD-SHELL", f'valkey-cli --no-auth-warning --user {CACHE_USER} --pass "$(cat {password})" ping'
                              " | grep -q PONG"],
                interval=5, timeout=3, retries=10, start_period=5),
            wait=True, wait_timeout=60,
            labels=containers.labels("cache", args.stack),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[volume]),
        )
        self.host = HOST
        self.port = PORT
        self.user_name = CACHE_USER
        self.register_outputs({"host": self.host, "port": self.port})
