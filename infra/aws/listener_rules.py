"""A route's listener rules on the gateway's listener, and the token check the ALB can put in front.

Apart from the gateway layer because the services layer creates them (each service owns the rules
that reach it) and the policy pack reads their tags; the gateway only provides the listener.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import Route

# Under `auth_enforced_by: alb` a route is two rules: reads at the route's own priority, restricted
# to these methods, and every other method at the route's priority + this, behind the ALB's
# jwt-validation action. (One rule holds 5 condition values: path, host and 3 methods fit; the 4
# write methods would not, hence "everything else" rather than a write-method list.)
READ_METHODS = ("GET", "HEAD", "OPTIONS")
JWT_RULE_PRIORITY_OFFSET = 10_000
# The tag a listener rule carries when the service behind it checks the token itself, so the
# route-write-auth-advisory policy (policy/edge_policies.py) knows the write is not open.
AUTH_ENFORCED_BY_TAG = "auth-enforced-by"


@dataclass
class TokenCheck:
    """What the ALB's jwt-validation action checks: signature (RS256, the issuer's JWKS), iss, exp, nbf, iat."""

    issuer: pulumi.Input[str]
    jwks_endpoint: pulumi.Input[str]
    scopes: Sequence[str]  # each required in the space-separated `scope` claim


def service_checks_tokens(routes: Sequence[Route]) -> bool:
    """Every route checks tokens in the service: its writes are guarded whichever rule carries them."""
    return bool(routes) and all(r.auth == "jwt" and r.auth_enforced_by == "service" for r in routes)


def auth_marker(routes: Sequence[Route]) -> dict[str, str]:
    return {AUTH_ENFORCED_BY_TAG: "service"} if service_checks_tokens(routes) else {}


def _jwt_action(check: TokenCheck) -> aws.lb.ListenerRuleActionArgs:
    claims = [aws.lb.ListenerRuleActionJwtValidationAdditionalClaimArgs(
        name="scope", format="space-separated-values", values=list(check.scopes))] if check.scopes else None
    return aws.lb.ListenerRuleActionArgs(
        type="jwt-validation", order=1,
        jwt_validation=aws.lb.ListenerRuleActionJwtValidationArgs(
            issuer=check.issuer, jwks_endpoint=check.jwks_endpoint, additional_claims=claims))


def route_rules(parent: pulumi.Resource, name: str, listener_arn: pulumi.Input[str], priority: int, route: Route,
                target_group_arn: pulumi.Input[str], tags: dict[str, str],
                check: TokenCheck | None = None) -> list[aws.lb.ListenerRule]:
    """A route's listener rules under `rolling`: one forward, or (auth_enforced_by alb, `check`)
    public reads plus every other method behind the ALB's token check."""
    opts = pulumi.ResourceOptions(parent=parent)
    # One match type per condition (the provider's rule); all conditions must match.
    conditions = [aws.lb.ListenerRuleConditionArgs(
        path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=[route.path]))]
    if route.host:
        conditions.append(aws.lb.ListenerRuleConditionArgs(
            host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[route.host])))
    gated = check is not None and route.auth == "jwt" and route.auth_enforced_by == "alb"
    reads = [aws.lb.ListenerRuleConditionArgs(
        http_request_method=aws.lb.ListenerRuleConditionHttpRequestMethodArgs(values=list(READ_METHODS)))]
    marker = auth_marker([route])
    rules = [aws.lb.ListenerRule(
        name,
        listener_arn=listener_arn,
        priority=priority,
        actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group_arn)],
        conditions=conditions + (reads if gated else []),
        tags={**tags, **marker},
        opts=opts,
    )]
    if gated:
        assert check is not None
        rules.append(aws.lb.ListenerRule(
            f"{name}-token",
            listener_arn=listener_arn,
            priority=priority + JWT_RULE_PRIORITY_OFFSET,
            actions=[_jwt_action(check),
                     aws.lb.ListenerRuleActionArgs(type="forward", order=2, target_group_arn=target_group_arn)],
            conditions=conditions,
            tags={**tags, "Name": f"{tags.get('Name', name)}-token"},
            opts=opts,
        ))
    return rules
