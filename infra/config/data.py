"""`refarch:database` and `refarch:cache`: the data tier."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from infra.config.base import Strict


class DatabaseConfig(Strict):
    # A major version alone lets RDS apply minor upgrades without the next `up` reverting them.
    engine_version: Annotated[str, Field(pattern=r"^\d{2}(\.\d+)?$")] = "16"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.medium"
    allocated_storage: Annotated[int, Field(ge=20, le=65536)] = 50
    max_allocated_storage: Annotated[int, Field(ge=20, le=65536)] = 200
    db_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "app"
    username: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")] = "app"
    # The application's own PostgreSQL role (IAM authentication, contract C2); the master user
    # above is for migrations only.
    app_username: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "app_rw"
    multi_az: bool = True
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 14
    deletion_protection: bool = True
    performance_insights: bool = True
    # Seconds between enhanced-monitoring (OS) samples; 0 switches it off (required on in staging and prod).
    monitoring_interval: Literal[0, 1, 5, 10, 15, 30, 60] = 60

    @model_validator(mode="after")
    def _storage(self) -> DatabaseConfig:
        if self.max_allocated_storage < self.allocated_storage:
            raise ValueError("max_allocated_storage must be >= allocated_storage")
        if self.app_username == self.username:
            raise ValueError(f"app_username {self.app_username!r} must differ from the master username")
        return self

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]


# ElastiCache IAM authentication (contract C2) starts with these engine versions.
IAM_AUTH_MIN_VERSION = {"valkey": (7, 2), "redis": (7, 0)}


class CacheConfig(Strict):
    engine: Literal["redis", "valkey"] = "valkey"
    engine_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "8.0"
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.small"
    replicas: Annotated[int, Field(ge=0, le=5)] = 1
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7

    @model_validator(mode="after")
    def _iam_authentication(self) -> CacheConfig:
        major, minor = (int(part) for part in self.engine_version.split("."))
        floor = IAM_AUTH_MIN_VERSION[self.engine]
        if (major, minor) < floor:
            raise ValueError(f"engine_version {self.engine_version} of {self.engine} has no IAM authentication: "
                             f"use {floor[0]}.{floor[1]} or later")
        return self

    @property
    def failover(self) -> bool:
        return self.replicas >= 1
