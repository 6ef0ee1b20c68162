"""The load balancer: TLS 1.2+, HTTP only redirecting, TLS and WAF on internet-facing ALBs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    LISTENER_RULES,
    LISTENERS,
    LOAD_BALANCERS,
    MANDATORY,
    WAF_ASSOCIATION,
    Finding,
    Policy,
    Stack,
    by_environment,
    environment_of,
    get,
    guarded,
    internet_facing_alb,
    items,
    resource_policy,
    stack_policy,
)
from pulumi_policy import PolicyResource, ResourceValidationArgs

TLS12_POLICY_PREFIXES = ("ELBSecurityPolicy-TLS13-1-2-", "ELBSecurityPolicy-TLS-1-2-", "ELBSecurityPolicy-FS-1-2-")


def _listener_tls(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if props.get("protocol") not in ("HTTPS", "TLS"):
        return
    policy = props.get("sslPolicy")
    if not isinstance(policy, str) or not policy.startswith(TLS12_POLICY_PREFIXES):
        shown = policy or "the ELB default (ELBSecurityPolicy-2016-08, TLS 1.0)"
        yield (f"Listener '{args.name}' negotiates with {shown}, which allows TLS below 1.2. "
               "Set ssl_policy to ELBSecurityPolicy-TLS13-1-2-2021-06.")


def _listeners_by_lb(stack: Stack) -> dict[Any, list[PolicyResource]]:
    by_lb: dict[Any, list[PolicyResource]] = {}
    for listener, lb_arn in stack.collect(LISTENERS, lambda p: p.get("loadBalancerArn")):
        by_lb.setdefault(lb_arn, []).append(listener)
    return by_lb


def _http_redirects(stack: Stack) -> Iterator[Finding]:
    by_lb = _listeners_by_lb(stack)
    rules: dict[Any, list[PolicyResource]] = {}
    for rule, listener_arn in stack.collect(LISTENER_RULES, lambda p: p.get("listenerArn")):
        rules.setdefault(listener_arn, []).append(rule)

    def redirects(actions: Any) -> bool:
        actions = items(actions)
        return bool(actions) and all(get(a, "type") == "redirect" and get(a, "redirect", "protocol") == "HTTPS"
                                     for a in actions)

    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        listeners = by_lb.get(props.get("arn"), [])
        if not any(listener.props.get("protocol") == "HTTPS" for listener in listeners):
            return
        for listener in listeners:
            if listener.props.get("protocol") != "HTTP":
                continue
            if not redirects(listener.props.get("defaultActions")):
                yield Finding(f"Listener '{listener.name}' serves plain HTTP on a load balancer that has HTTPS. "
                              "Make its default action a redirect to HTTPS (port 443, HTTP_301).",
                              listener.urn, environment_of(props))
            for rule in rules.get(listener.props.get("arn"), []):
                if not redirects(rule.props.get("actions")):
                    yield Finding(f"Listener rule '{rule.name}' forwards plain HTTP traffic past the HTTPS "
                                  "redirect. Attach the rule to the HTTPS listener instead.",
                                  rule.urn, environment_of(props))

    yield from guarded(check, stack.known(*LOAD_BALANCERS))


def _alb_tls(stack: Stack) -> Iterator[Finding]:
    by_lb = _listeners_by_lb(stack)

    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if not internet_facing_alb(props):
            return
        if not any(listener.props.get("protocol") == "HTTPS" for listener in by_lb.get(props.get("arn"), [])):
            yield Finding(f"No TLS: load balancer '{lb.name}' has no HTTPS listener, so traffic crosses the "
                          "internet in plaintext. Set gateway.domain (with hosted_zone_id) or "
                          "gateway.certificate_arn in the stack file.", lb.urn, environment_of(props))

    yield from guarded(check, stack.known(*LOAD_BALANCERS))


def _alb_waf(stack: Stack) -> Iterator[Finding]:
    protected = {arn for _, arn in stack.collect([WAF_ASSOCIATION], lambda p: p.get("resourceArn"))}

    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if internet_facing_alb(props) and props.get("arn") not in protected:
            yield Finding(f"Load balancer '{lb.name}' has no WAF web ACL associated. "
                          "Set gateway.waf: true in the stack file (it associates the managed rule groups "
                          "and rate limit).", lb.urn, environment_of(props))

    yield from guarded(check, stack.known(*LOAD_BALANCERS))


POLICIES: list[Policy] = [
    resource_policy("alb-https-tls12", "HTTPS listeners use a TLS 1.2+ security policy.",
                    MANDATORY, list(LISTENERS), _listener_tls),
    stack_policy("alb-http-redirects-to-https",
                 "On a load balancer with HTTPS, HTTP only redirects to HTTPS.", MANDATORY, _http_redirects),
    *by_environment("alb-tls", "Every internet-facing ALB terminates TLS.", _alb_tls),
    *by_environment("alb-waf", "Every internet-facing ALB has a WAF web ACL.", _alb_waf),
]
