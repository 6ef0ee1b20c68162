"""The local database layer: PostgreSQL of the RDS config's major version, on the data network only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.config import DatabaseConfig
from infra.local import containers
from infra.local.network import volume_labels
from infra.local.secrets import DATABASE_MASTER, LocalSecrets

PORT = 5432
HOST = "database"  # its alias on the data network


@dataclass
class LocalDatabaseArgs:
    config: DatabaseConfig
    image: str
    name_prefix: str
    stack: str
    data_network: pulumi.Input[str]
    secrets: LocalSecrets


class LocalDatabase(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:database:LocalDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        image = docker.RemoteImage(f"{name}-image", name=args.image, keep_locally=True, opts=child)
        volume = docker.Volume(f"{name}-data", name=f"{args.name_prefix}-database",
                               labels=volume_labels({"layer": "database", "stack": args.stack}), opts=child)
        self.container = docker.Container(
            name,
            **containers.hardened(
                # PostgreSQL's entrypoint switches to the postgres user itself; it needs these to do so.
                capabilities=docker.ContainerCapabilitiesArgs(
                    drops=["ALL"], adds=["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]),
            ),
            name=f"{args.name_prefix}-database",
            image=image.image_id,
            envs=[f"POSTGRES_DB={cfg.db_name}", f"POSTGRES_USER={cfg.username}",
                  f"POSTGRES_PASSWORD_FILE={args.secrets.container_path(DATABASE_MASTER)}"],
            mounts=containers.secret_mounts(args.secrets, [DATABASE_MASTER]),
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/var/lib/postgresql/data")],
            networks_advanced=containers.attach({"data": args.data_network}, [HOST]),
            healthcheck=containers.healthcheck(
                ["CMD", "pg_isready", "-U", cfg.username, "-d", cfg.db_name],
                interval=5, timeout=3, retries=10, start_period=10),
            # `up` waits for a healthy database before the migrations that depend on it.
            wait=True, wait_timeout=120,
            labels=containers.labels("database", args.stack),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[volume]),
        )
        self.host = HOST
        self.port = PORT
        self.db_name = cfg.db_name
        self.username = cfg.username
        self.app_username = cfg.app_username
        self.register_outputs({"host": self.host, "port": self.port})
