"""`refarch:delivery.deployment`: how ECS itself rolls a release out, judges it and rolls it back.

ECS does the progressive part (2025: native BLUE_GREEN, LINEAR and CANARY strategies with bake
times, a test listener rule and lifecycle hooks; deployment alarms with rollback for every
strategy), so a bad release is rolled back by ECS even when the pipeline that started it is gone.
This section picks the strategy per stack and says how long each phase bakes; the timing of the
deployment alarms that judge a bake lives here too, because a bake shorter than the time an alarm
needs to fire watches nothing (infra/aws/monitoring.py builds the alarms from these numbers).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import Strict

# --- the deployment alarms' timing (one-minute datapoints, as the ALB and ECS publish them) --------
ALARM_PERIOD_SECONDS = 60
# Traffic alarms (5xx rate, p99 latency, unhealthy hosts): 2 of 3 minutes.
TRAFFIC_ALARM_PERIODS, TRAFFIC_ALARM_DATAPOINTS = 3, 2
# Task alarms (running below desired, no healthy host): 3 of 3, since a scale-out legitimately
# runs below desired for a minute or two while new tasks start.
TASK_ALARM_PERIODS, TASK_ALARM_DATAPOINTS = 3, 3
# From the end of the last breaching minute to ECS acting on it: the ALB publishes a minute's
# datapoint about a minute later and CloudWatch evaluates alarms once a minute (60 s), and ECS
# polls its deployment alarms with DescribeAlarms (not documented; taken as at most 60 s).
EVALUATION_DELAY_SECONDS = 120

ECS_BAKE_MAX_MINUTES = 1440  # ECS accepts 0..1440 for every bake of the API
TEST_HEADER = "X-Refarch-Test-Route"  # the header that sends a request to the test listener rule


def detection_seconds(datapoints: int) -> int:
    """Worst case from a bad release reaching traffic to ECS starting the rollback.

    Its first datapoint may be partial, but a release's own target group only carries its own
    traffic, so a bad release breaches from its first minute: `datapoints` minutes of breaching
    data, then the evaluation delay.
    """
    return datapoints * ALARM_PERIOD_SECONDS + EVALUATION_DELAY_SECONDS


TRAFFIC_DETECTION_SECONDS = detection_seconds(TRAFFIC_ALARM_DATAPOINTS)
# The longest any deployment alarm needs: the floor of every bake.
ALARM_WINDOW_SECONDS = max(TRAFFIC_DETECTION_SECONDS, detection_seconds(TASK_ALARM_DATAPOINTS))
MIN_BAKE_MINUTES = math.ceil(ALARM_WINDOW_SECONDS / 60)

Strategy = Literal["rolling", "canary", "linear", "blue_green"]
# Which fields each strategy reads; setting another one is a mistake worth saying out loud.
_FIELDS: dict[str, set[str]] = {
    "rolling": set(),
    "blue_green": {"bake_minutes", "smoke_hook"},
    "canary": {"bake_minutes", "smoke_hook", "canary_percent", "canary_bake_minutes"},
    "linear": {"bake_minutes", "smoke_hook", "linear_step_percent", "linear_step_bake_minutes"},
}
Minutes = Annotated[int, Field(ge=0, le=ECS_BAKE_MAX_MINUTES)]


def _tenths(value: float, low: float, what: str) -> float:
    # ECS accepts "multiples of 0.1 from <low> to 100.0" (ECS API: CanaryConfiguration, LinearConfiguration).
    if not low <= value <= 100 or abs(value * 10 - round(value * 10)) > 1e-9:
        raise ValueError(f"{what} {value} is not a multiple of 0.1 between {low} and 100 (what ECS accepts)")
    return round(value, 1)


class DeploymentConfig(Strict):
    # Production's default: canary. dev says `rolling` (the 35 s rollout bound).
    strategy: Strategy = "canary"
    # After all production traffic is on the new revision the old one keeps running this long, its
    # alarms watched: a rollback in that window is a listener-rule flip back to warm tasks.
    bake_minutes: Minutes = 5
    canary_percent: float = 10.0
    canary_bake_minutes: Minutes = 5
    linear_step_percent: float = 25.0
    linear_step_bake_minutes: Minutes = 5
    # A lifecycle-hook Lambda calls the new revision through the test listener rule (smoke path and
    # health path) before any production traffic reaches it, and fails the deployment if it fails.
    smoke_hook: bool = True

    @field_validator("canary_percent")
    @classmethod
    def _canary(cls, value: float) -> float:
        return _tenths(value, 0.1, "canary_percent")

    @field_validator("linear_step_percent")
    @classmethod
    def _linear(cls, value: float) -> float:
        return _tenths(value, 3.0, "linear_step_percent")

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentConfig:
        # A field another strategy reads, set to anything but its default, is a misunderstanding
        # (compared with the default, not with "was set": a dumped and re-read config sets them all).
        stray = sorted(name for name in set(type(self).model_fields) - {"strategy"} - _FIELDS[self.strategy]
                       if getattr(self, name) != type(self).model_fields[name].default)
        if stray:
            raise ValueError(f"{', '.join(stray)} does not apply to strategy {self.strategy}"
                             + (" (ECS derives a rolling bake from the deployment alarms)" if self.rolling else ""))
        for name in sorted(_FIELDS[self.strategy]):
            if name.endswith("_minutes") and getattr(self, name) < MIN_BAKE_MINUTES:
                raise ValueError(
                    f"{name} {getattr(self, name)} is shorter than the deployment alarms need to fire "
                    f"({ALARM_WINDOW_SECONDS} s: {TASK_ALARM_DATAPOINTS} one-minute datapoints + "
                    f"{EVALUATION_DELAY_SECONDS} s evaluation delay): use at least {MIN_BAKE_MINUTES}")
        return self

    @property
    def rolling(self) -> bool:
        return self.strategy == "rolling"

    @property
    def shifts(self) -> int:
        """Production traffic shifts after the first one (canary: one more; linear: the remaining steps)."""
        if self.strategy == "canary":
            return 1
        if self.strategy == "linear":
            return math.ceil(100 / self.linear_step_percent) - 1
        return 0

    @property
    def shifting_minutes(self) -> int:
        """Minutes spent baking between production traffic shifts, before the final bake."""
        if self.strategy == "canary":
            return self.canary_bake_minutes
        if self.strategy == "linear":
            return self.shifts * self.linear_step_bake_minutes
        return 0

    @property
    def total_bake_minutes(self) -> int:
        """Every bake of one deployment (rolling: ECS's own, about one alarm window)."""
        if self.rolling:
            return MIN_BAKE_MINUTES
        return self.shifting_minutes + self.bake_minutes


def routing_problems(deployment: DeploymentConfig, services: list, prefix: str = "services") -> list[str]:
    """Why a service's routes cannot be one production listener rule ECS shifts (non-rolling only).

    ECS shifts traffic on exactly one production rule (and one test rule) per target group pair,
    and an ALB rule holds at most 5 condition values: the host, the path patterns, and for the
    test rule the test header and the health path.
    """
    if deployment.rolling:
        return []
    problems = []
    for i, svc in enumerate(services):
        hosts = {(route.host or "").lower() for route in svc.routes}
        if len(hosts) > 1:
            problems.append(f"{prefix}[{i}].routes: strategy {deployment.strategy} shifts one listener rule per "
                            f"service, so every route needs the same host (got {sorted(hosts)})")
            continue
        values = len(svc.routes) + (1 if next(iter(hosts)) else 0) + 2  # + test header + health path
        if values > 5:
            problems.append(f"{prefix}[{i}].routes: strategy {deployment.strategy} puts every route, the test "
                            f"header and the health path in one listener rule, which holds 5 condition values; "
                            f"this service needs {values}: use at most {len(svc.routes) - (values - 5)} routes")
    return problems
