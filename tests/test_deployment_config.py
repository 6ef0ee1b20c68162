"""`refarch:delivery.deployment`: the strategy per stack, and every rule with its exact message."""

from __future__ import annotations

import copy

import pytest

from infra.config import ConfigError, DeploymentConfig, parse
from infra.config.deployment import (
    ALARM_WINDOW_SECONDS,
    MIN_BAKE_MINUTES,
    TRAFFIC_DETECTION_SECONDS,
)
from ops import stackfile

SRC = "stacks/Pulumi.prod.yaml"
DELIVERY = "refarch:delivery"


def problems(stack: str = "prod", deployment: dict | None = None, services: list | None = None, **delivery) -> list[str]:
    values = copy.deepcopy(stackfile.read_values(stack))
    section = dict(values.get(DELIVERY) or {})  # type: ignore[call-overload]
    section.update(delivery)
    if deployment is not None:
        section["deployment"] = deployment
    values[DELIVERY] = section
    if services is not None:
        values["refarch:services"] = services
    try:
        parse(values, stack, f"stacks/Pulumi.{stack}.yaml")
    except ConfigError as exc:
        return exc.lines
    return []


def strategy(stack: str) -> DeploymentConfig:
    return stackfile.load(stack).delivery.deployment


def test_shipped_strategies_dev_rolling_staging_and_prod_canary():
    assert strategy("dev").strategy == "rolling"
    assert strategy("staging") == strategy("prod") == DeploymentConfig()  # production's default
    assert DeploymentConfig().strategy == "canary"


def test_the_floor_of_every_bake_is_what_the_slowest_deployment_alarm_needs():
    # 3 one-minute datapoints (the task alarm) + 2 minutes of evaluation delay; 2 + 2 for traffic.
    assert (ALARM_WINDOW_SECONDS, TRAFFIC_DETECTION_SECONDS, MIN_BAKE_MINUTES) == (300, 240, 5)


@pytest.mark.parametrize("field", ["bake_minutes", "canary_bake_minutes"])
def test_a_canary_bake_shorter_than_the_alarms_is_refused(field):
    assert problems(deployment={field: 3}) == [
        f"{SRC}: {DELIVERY}.deployment: {field} 3 is shorter than the deployment alarms need to fire "
        "(300 s: 3 one-minute datapoints + 120 s evaluation delay): use at least 5"]


def test_linear_step_bake_is_checked_and_bakes_stay_within_what_ecs_accepts():
    assert problems(deployment={"strategy": "linear", "linear_step_bake_minutes": 1})[0].endswith(
        "linear_step_bake_minutes 1 is shorter than the deployment alarms need to fire (300 s: 3 one-minute "
        "datapoints + 120 s evaluation delay): use at least 5")
    assert problems(deployment={"bake_minutes": 1441}) == [
        f"{SRC}: {DELIVERY}.deployment.bake_minutes: Input should be less than or equal to 1440 (got 1441)"]


@pytest.mark.parametrize(("field", "value", "low"), [
    ("canary_percent", 0.05, 0.1), ("canary_percent", 12.34, 0.1), ("canary_percent", 100.1, 0.1)])
def test_canary_percent_is_a_tenth_between_what_ecs_accepts(field, value, low):
    assert problems(deployment={field: value}) == [
        f"{SRC}: {DELIVERY}.deployment.{field}: {field} {value} is not a multiple of 0.1 between {low} and 100 "
        "(what ECS accepts)"]


def test_linear_step_is_at_least_three_percent():
    assert problems(deployment={"strategy": "linear", "linear_step_percent": 2.5}) == [
        f"{SRC}: {DELIVERY}.deployment.linear_step_percent: linear_step_percent 2.5 is not a multiple of 0.1 "
        "between 3.0 and 100 (what ECS accepts)"]
    assert problems(deployment={"strategy": "linear", "linear_step_percent": 12.5}) == []


def test_settings_of_another_strategy_are_refused():
    assert problems(deployment={"strategy": "blue_green", "canary_percent": 5}) == [
        f"{SRC}: {DELIVERY}.deployment: canary_percent does not apply to strategy blue_green"]
    assert problems("dev", deployment={"strategy": "rolling", "bake_minutes": 10}) == [
        "stacks/Pulumi.dev.yaml: refarch:delivery.deployment: bake_minutes does not apply to strategy rolling "
        "(ECS derives a rolling bake from the deployment alarms)"]


def test_the_pipeline_bake_is_off_or_as_long_as_the_alarms():
    assert problems(bake_seconds=120) == [
        f"{SRC}: {DELIVERY}.bake_seconds: 120 s is shorter than the deployment alarms need to fire (300 s): "
        "use 0 (off) or at least 300"]
    assert problems(bake_seconds=0) == []


def test_traffic_shifting_needs_every_route_in_one_rule():
    two_hosts = [{"name": "web", "build": "services/products", "routes": [{"path": "/a*", "host": "a.example.com"},
                                                                {"path": "/b*", "host": "b.example.com"}]}]
    assert problems(services=two_hosts) == [
        f"{SRC}: refarch:services[0].routes: strategy canary shifts one listener rule per service, so every "
        "route needs the same host (got ['a.example.com', 'b.example.com'])"]
    many = [{"name": "web", "build": "services/products", "routes": [{"path": f"/{p}*"} for p in "abcd"]}]
    assert problems(services=many) == [
        f"{SRC}: refarch:services[0].routes: strategy canary puts every route, the test header and the health path "
        "in one listener rule, which holds 5 condition values; this service needs 6: use at most 3 routes"]
    # Rolling keeps one rule per route: any routing the ALB allows.
    assert problems("dev", services=two_hosts) == []


def test_timing_of_one_deployment_per_strategy():
    canary = DeploymentConfig()
    assert (canary.shifts, canary.shifting_minutes, canary.total_bake_minutes) == (1, 5, 10)
    linear = DeploymentConfig(strategy="linear", linear_step_percent=25.0)
    assert (linear.shifts, linear.shifting_minutes, linear.total_bake_minutes) == (3, 15, 20)
    assert DeploymentConfig(strategy="blue_green").total_bake_minutes == 5
    assert DeploymentConfig(strategy="rolling").total_bake_minutes == MIN_BAKE_MINUTES
