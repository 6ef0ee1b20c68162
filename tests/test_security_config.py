"""The security floor's config keys: defaults, and every rule with its failing case and exact message."""

from __future__ import annotations

import copy

import pytest

from infra.config import ConfigError, parse
from ops import stackfile


def problems(stack: str, **sections: dict) -> list[str]:
    values = copy.deepcopy(stackfile.read_values(stack))
    for section, fields in sections.items():
        values[f"refarch:{section}"] = {**values.get(f"refarch:{section}", {}), **fields}  # type: ignore[dict-item]
    try:
        parse(values, stack, f"stacks/Pulumi.{stack}.yaml")
    except ConfigError as exc:
        return exc.lines
    return []


def test_defaults_are_the_production_safe_choice(config_of) -> None:
    prod = config_of("prod")
    assert prod.database.app_username == "app_rw"
    assert prod.database.monitoring_interval == 60
    assert prod.monitoring.audit_log_retention_days == 365
    assert prod.delivery.permissions_boundary is True
    assert (prod.cache.engine, prod.cache.engine_version) == ("valkey", "8.0")


def test_prod_keeps_audit_logs_a_year() -> None:
    assert problems("prod", monitoring={"audit_log_retention_days": 180}) == [
        "stacks/Pulumi.prod.yaml: refarch:monitoring.audit_log_retention_days: prod keeps audit logs at least "
        "365 days (got 180)"]
    assert problems("prod", monitoring={"audit_log_retention_days": 400}) == []
    assert problems("dev", monitoring={"audit_log_retention_days": 30}) == []


def test_audit_retention_must_be_a_cloudwatch_period() -> None:
    [line] = problems("dev", monitoring={"audit_log_retention_days": 366})
    assert line.startswith("stacks/Pulumi.dev.yaml: refarch:monitoring.audit_log_retention_days: "
                           "366 is not a CloudWatch Logs retention period")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_need_enhanced_monitoring(stack: str) -> None:
    assert problems(stack, database={"monitoring_interval": 0}) == [
        f"stacks/Pulumi.{stack}.yaml: refarch:database.monitoring_interval: {stack} needs enhanced monitoring "
        "(1, 5, 10, 15, 30 or 60 seconds)"]
    assert problems("dev", database={"monitoring_interval": 0}) == []


def test_monitoring_interval_is_one_rds_accepts() -> None:
    [line] = problems("dev", database={"monitoring_interval": 20})
    assert line.startswith("stacks/Pulumi.dev.yaml: refarch:database.monitoring_interval: Input should be 0, 1, 5")


def test_the_application_never_connects_as_the_master_user() -> None:
    assert problems("dev", database={"app_username": "app"}) == [
        "stacks/Pulumi.dev.yaml: refarch:database: app_username 'app' must differ from the master username"]
    [line] = problems("dev", database={"app_username": "App-RW"})
    assert line.startswith("stacks/Pulumi.dev.yaml: refarch:database.app_username: String should match pattern")


@pytest.mark.parametrize(("engine", "version", "floor"), [("redis", "6.0", "7.0"), ("redis", "6.2", "7.0")])
def test_cache_engine_must_support_iam_authentication(engine: str, version: str, floor: str) -> None:
    assert problems("dev", cache={"engine": engine, "engine_version": version}) == [
        f"stacks/Pulumi.dev.yaml: refarch:cache: engine_version {version} of {engine} has no IAM authentication: "
        f"use {floor} or later"]
    assert problems("dev", cache={"engine": engine, "engine_version": floor}) == []


def test_permissions_boundary_is_a_boolean() -> None:
    [line] = problems("dev", delivery={"permissions_boundary": "sometimes"})
    assert line.startswith("stacks/Pulumi.dev.yaml: refarch:delivery.permissions_boundary: Input should be a valid boolean")
