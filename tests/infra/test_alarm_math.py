"""The error-rate alarms' metric math, evaluated on one minute of traffic per scenario.

The expressions are taken from the synth as CloudWatch would receive them and evaluated with
CloudWatch's rules for the functions they use: FILL(m, v) is v where m has no datapoint, IF is
per datapoint, MAX([..]) the largest value present, arithmetic on a missing value or a division
by zero gives no value. A minute in which no input metric has a datapoint has no datapoint at
all, and the alarm's `treat_missing_data` decides.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest

from ops.synth import Synth
from tests.infra.test_monitoring import config as monitoring_config
from tests.infra.test_monitoring import synth_monitoring

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def evaluate(expression: str, values: dict[str, float | None]) -> float | None:
    if all(v is None for v in values.values()):
        return None  # no input has a datapoint this minute: neither has the expression

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values.get(node.id)
        if isinstance(node, ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return None if right == 0 else left / right
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = ev(node.left), ev(node.comparators[0])
            if left is None or right is None:
                return None
            return {ast.GtE: left >= right, ast.Gt: left > right, ast.Lt: left < right}[type(node.ops[0])]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name, args = node.func.id, node.args
            if name == "FILL":
                value = ev(args[0])
                return ev(args[1]) if value is None else value
            if name == "IF":
                condition = ev(args[0])
                return None if condition is None else ev(args[1] if condition else args[2])
            if name == "MAX":
                present = [v for v in ev(args[0]) if v is not None]
                return max(present) if present else None
        raise AssertionError(f"the evaluator does not know {ast.dump(node)}")

    return ev(ast.parse(expression, mode="eval").body)


def alarm(synth: Synth, name: str) -> dict[str, Any]:
    return next(a["inputs"] for a in synth.of_type(ALARM) if a["inputs"]["name"] == name)


def minute(a: dict[str, Any], **counts: float) -> str:
    """What the alarm makes of one minute with these per-metric counts (unnamed metrics: no datapoint)."""
    queries = {q["id"]: q for q in a["metricQueries"]}
    expression = next(q["expression"] for q in queries.values() if q.get("returnData"))
    value = evaluate(expression, {key: counts.get(key) for key in queries if "metric" in queries[key]})
    if value is None:
        return {"notBreaching": "ok", "breaching": "ALARM", "missing": "missing"}[a["treatMissingData"]]
    return "ALARM" if value > a["threshold"] else "ok"


@pytest.fixture(scope="module")
def multi() -> Synth:
    # The monitoring layer alone with two services (products and orders) behind one gateway.
    return synth_monitoring(monitoring_config("prod"), "prod")


def test_every_request_an_elb_503_fires_the_gateway_alarm(synths):
    for stack in ("dev", "prod"):
        a = alarm(synths[stack], f"refarch-{stack}-gateway-5xx-rate")
        # RequestCount has no datapoint: the ALB chose no target for any request.
        assert minute(a, elb=120) == "ALARM", stack
        assert minute(a, req=1000, tgt=10) == "ok"  # 1 %
        assert minute(a, req=1000, tgt=80) == "ALARM"  # 8 %
        assert minute(a, req=5, elb=2) == "ok"  # 7 requests: below the 10 a minute judged at all
        assert minute(a) == "ok"  # idle: no datapoints, notBreaching


def test_a_single_services_deployment_alarm_sees_the_elbs_503s_and_an_idle_service_is_fine(synths):
    dev = alarm(synths["dev"], "refarch-dev-service-products-5xx-rate")  # rolling: one target group
    assert minute(dev, elb=60) == "ALARM"  # no registered target, every request a 503
    assert minute(dev, req0=300, tgt0=3) == "ok" and minute(dev, req0=300, conn0=30) == "ALARM"
    assert minute(dev) == "ok" and minute(dev, req0=4, tgt0=4) == "ok"  # idle / too few to judge
    prod = alarm(synths["prod"], "refarch-prod-service-products-5xx-rate")  # canary: two groups
    assert minute(prod, elb=60) == "ALARM"
    assert minute(prod, req0=540, req1=60) == "ok"


def test_a_failing_canary_is_judged_on_its_own_group_not_diluted_by_the_rest(synths):
    prod = alarm(synths["prod"], "refarch-prod-service-products-5xx-rate")
    # 10 % canary failing every request: 4 % of all requests, 100 % of its own group.
    assert minute(prod, req0=1440, tgt0=0, req1=60, tgt1=60) == "ALARM"
    # The same share of failures spread over both groups is the 4 % it is.
    assert minute(prod, req0=1440, tgt0=58, req1=60, tgt1=2) == "ok"


def test_with_several_services_one_services_503s_never_roll_back_another(multi):
    orders = alarm(multi, "refarch-prod-service-orders-5xx-rate")
    assert "elb" not in {q["id"] for q in orders["metricQueries"]}
    assert minute(orders, req0=600, tgt0=0) == "ok"
    assert minute(orders, req0=600, conn0=60) == "ALARM"  # the ALB's 502s for its own refused connections
    # Another service's outage (all 503, no target) shows on the gateway alarm, which pages.
    assert minute(alarm(multi, "refarch-prod-gateway-5xx-rate"), req=600, elb=600) == "ALARM"


def test_the_evaluator_follows_cloudwatchs_rules():
    assert evaluate("IF(FILL(a, 0) >= 5, 100 * FILL(b, 0) / FILL(a, 0), 0)", {"a": None, "b": 3}) == 0
    assert evaluate("MAX([IF(FILL(a, 0) >= 1, 1 / FILL(a, 0), 0), FILL(b, 0)])", {"a": 4, "b": None}) == 0.25
    assert evaluate("a / b", {"a": 1, "b": 0}) is None
    assert evaluate("FILL(a, 0) + FILL(b, 0)", {"a": None, "b": None}) is None
