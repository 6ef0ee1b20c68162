"""The edge in `invoke cost`: CloudFront by use (free tier only when stated), flat-rate plans, free parts."""

from __future__ import annotations

import pytest

from ops import stackfile
from ops.review import cost
from ops.synth import run


@pytest.fixture(scope="module")
def dev_pay_as_you_go():
    config = stackfile.load("dev")
    edge = config.edge.model_copy(update={"pricing_plan": "pay-as-you-go"})
    return config, run(config.model_copy(update={"edge": edge}), "dev").to_json()


def by_name(est: cost.Estimate, name: str) -> cost.ResourceCost:
    return next(r for r in est.resources if r.name == name)


def test_pay_as_you_go_prices_requests_and_transfer_beyond_the_stated_free_tier(dev_pay_as_you_go):
    config, document = dev_pay_as_you_go
    table = cost.prices("us-east-1")["cloudfront"]
    paid = cost.estimate(document, config.usage, config.region, cloudwatch_free_tier=False)
    dist = by_name(paid, "edge-distribution")
    expected = (config.usage.requests_per_month / 10_000 * table["https_requests_per_10k"]
                + config.usage.edge_gb_per_month * table["transfer_out_gb"])
    assert dist.status == "priced" and dist.monthly == pytest.approx(expected) and expected > 0
    free = cost.estimate(document, config.usage, config.region, cloudwatch_free_tier=True)
    assert by_name(free, "edge-distribution").monthly == 0, "dev's traffic is inside the always-free tier"
    waf = by_name(free, "edge-waf")
    assert waf.monthly == pytest.approx(5 + 5 * 1 + config.usage.requests_per_month / 1e6 * 0.60)


def test_the_free_flat_rate_plan_covers_distribution_and_web_acl(synths):
    config = stackfile.load("dev")
    est = cost.estimate(synths["dev"].to_json(), config.usage, config.region)
    plan = by_name(est, "edge-pricing-plan")
    assert plan.status == "priced" and plan.monthly == 0 and "FREE" in plan.charges[0].what
    for name in ("edge-distribution", "edge-waf"):
        assert by_name(est, name).status == "free" and "flat-rate FREE plan" in by_name(est, name).reason
    assert est.total <= 60


def test_a_plan_too_small_for_the_usage_says_so(synths):
    config = stackfile.load("dev")
    usage = config.usage.model_copy(update={"requests_per_month": 5_000_000})
    plan = by_name(cost.estimate(synths["dev"].to_json(), usage, config.region), "edge-pricing-plan")
    assert "exceeds the allowance" in plan.charges[0].what


def test_vpc_origin_and_edge_policies_cost_nothing_and_nothing_is_unknown(synths):
    for stack in ("dev", "staging", "prod"):
        config = stackfile.load(stack)
        est = cost.estimate(synths[stack].to_json(), config.usage, config.region)
        assert by_name(est, "edge-vpc-origin").status == "free"
        unknown = [r.name for r in est.resources if "unknown resource type" in r.reason]
        assert unknown == [], (stack, unknown)
