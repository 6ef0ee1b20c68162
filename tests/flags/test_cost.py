"""AppConfig in the cost estimate: the agents' polls and receipts, priced from the task definitions."""

from __future__ import annotations

import json

import pytest

from ops.review import cost
from ops.review.cost_model import prices
from ops.review.pricers_product import APPCONFIG_RECEIVED_PER_TASK_MONTH

PROFILE = "aws:appconfig/configurationProfile:ConfigurationProfile"


def _estimate(synths, config_of, stack):
    config = config_of(stack)
    return cost.estimate(synths[stack].to_json(), config.usage, config.region)


@pytest.mark.parametrize(("stack", "tasks"), [("dev", 1), ("staging", 2), ("prod", 3)])
def test_every_desired_task_polls_every_45_seconds(synths, config_of, stack, tasks):
    table = prices("us-east-1")
    profile = next(r for r in _estimate(synths, config_of, stack).resources if r.type == PROFILE)
    requests, received = profile.charges
    assert requests.quantity == pytest.approx(tasks * table["hours_per_month"] * 3600 / 45)
    assert requests.unit_price == 0.0000002 and received.unit_price == 0.0008
    assert received.quantity == tasks * APPCONFIG_RECEIVED_PER_TASK_MONTH


def test_poll_interval_is_read_from_the_agent_container(synths, config_of):
    document = json.loads(json.dumps(synths["dev"].to_json()))
    for r in document["resources"]:
        if r["type"] == "aws:ecs/taskDefinition:TaskDefinition" and "appconfig-agent" in r["inputs"]["containerDefinitions"]:
            defs = json.loads(r["inputs"]["containerDefinitions"])
            for c in defs:
                if c["name"] == "appconfig-agent":
                    c["environment"] = [{"name": "POLL_INTERVAL", "value": "90"}]
            r["inputs"]["containerDefinitions"] = json.dumps(defs)
    config = config_of("dev")
    slow = cost.estimate(document, config.usage, config.region)
    profile = next(r for r in slow.resources if r.type == PROFILE)
    assert profile.charges[0].quantity == pytest.approx(prices("us-east-1")["hours_per_month"] * 3600 / 90)


def test_other_appconfig_resources_are_free_and_dev_stays_in_budget(synths, config_of):
    estimate = _estimate(synths, config_of, "dev")
    others = [r for r in estimate.resources if r.type.startswith("aws:appconfig/") and r.type != PROFILE]
    assert len(others) == 5 and all(r.status == "free" for r in others)
    assert estimate.total <= 60
