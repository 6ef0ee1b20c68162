"""`refarch:database` and `refarch:cache`: the data tier."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.config import catalog
from infra.config.base import Strict


def _reserved_role(value: str) -> str:
    if value in catalog.RESERVED_DB_USERS or value in catalog.SQL_RESERVED:
        raise ValueError(f"{value!r} is a name PostgreSQL or RDS reserves for itself: choose another")
    if value.startswith(catalog.RESERVED_ROLE_PREFIXES):
        raise ValueError(f"{value!r}: role names starting with {' or '.join(catalog.RESERVED_ROLE_PREFIXES)} "
                         f"are reserved by PostgreSQL and RDS")
    return value


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

    @field_validator("engine_version")
    @classmethod
    def _major(cls, value: str) -> str:
        major = value.split(".")[0]
        if major not in catalog.POSTGRES_MAJORS:
            raise ValueError(f"PostgreSQL {major} is not a major RDS creates: use one of "
                             f"{', '.join(catalog.POSTGRES_MAJORS)}")
        return value

    @field_validator("instance_class")
    @classmethod
    def _instance_class(cls, value: str) -> str:
        if not catalog.in_table(value, catalog.RDS_POSTGRES_CLASSES):
            raise ValueError(f"{value} is not an RDS for PostgreSQL instance class "
                             f"(families: {catalog.families(catalog.RDS_POSTGRES_CLASSES)})")
        return value

    @field_validator("db_name")
    @classmethod
    def _db_name(cls, value: str) -> str:
        if value in catalog.RESERVED_DB_NAMES or value in catalog.SQL_RESERVED:
            raise ValueError(f"{value!r} is a database name PostgreSQL or RDS reserves: choose another")
        return value

    @field_validator("username", "app_username")
    @classmethod
    def _users(cls, value: str) -> str:
        return _reserved_role(value)

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

    @property
    def parameter_group_family(self) -> str:
        return catalog.postgres_family(self.major_version)


# ElastiCache IAM authentication (contract C2) starts with these engine versions.
IAM_AUTH_MIN_VERSION = {"valkey": (7, 2), "redis": (7, 0)}


class CacheConfig(Strict):
    engine: Literal["redis", "valkey"] = "valkey"
    engine_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "8.0"
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.small"
    replicas: Annotated[int, Field(ge=0, le=5)] = 1
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7

    @field_validator("node_type")
    @classmethod
    def _node_type(cls, value: str) -> str:
        if not catalog.in_table(value, catalog.CACHE_NODE_TYPES):
            raise ValueError(f"{value} is not an ElastiCache node type "
                             f"(families: {catalog.families(catalog.CACHE_NODE_TYPES)})")
        return value

    @model_validator(mode="after")
    def _iam_authentication(self) -> CacheConfig:
        versions = catalog.CACHE_VERSIONS[self.engine]
        if self.engine_version not in versions:
            name = "Redis OSS" if self.engine == "redis" else "Valkey"
            hint = " (Redis OSS stops at 7.1: newer is engine valkey)" if self.engine == "redis" else ""
            raise ValueError(f"{name} {self.engine_version} is not an ElastiCache engine version: "
                             f"use one of {', '.join(versions)}{hint}")
        major, minor = (int(part) for part in self.engine_version.split("."))
        floor = IAM_AUTH_MIN_VERSION[self.engine]
        if (major, minor) < floor:
            raise ValueError(f"engine_version {self.engine_version} of {self.engine} has no IAM authentication: "
                             f"use {floor[0]}.{floor[1]} or later")
        return self

    @property
    def failover(self) -> bool:
        return self.replicas >= 1
