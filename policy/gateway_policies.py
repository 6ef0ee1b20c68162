"""The load balancer: TLS 1.2+, HTTP only redirecting, TLS and WAF on internet-facing ALBs, the WAF's
rule groups and its logs."""

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

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
# Known bad inputs: Log4Shell-style payloads and exploit paths; SQLi: SQL injection patterns.
REQUIRED_RULE_GROUPS = ("AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet")
# Headers that carry credentials: their values must never reach the WAF logs.
REDACTED_HEADERS = ("authorization", "cookie")
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


def _waf_rule_groups(args: ResourceValidationArgs) -> Iterator[str]:
    blocking = set()
    for rule in items(args.props.get("rules")):
        name = get(rule, "statement", "managedRuleGroupStatement", "name")
        # An override to count only observes: the group must keep its own block actions.
        if name and get(rule, "statement", "managedRuleGroupStatement", "vendorName") == "AWS" \
                and get(rule, "overrideAction", "count") is None:
            blocking.add(name)
    missing = [group for group in REQUIRED_RULE_GROUPS if group not in blocking]
    if missing:
        yield (f"Web ACL '{args.name}' does not block with {', '.join(missing)}. Add the AWS managed rule "
               "group(s) with override_action none (infra/aws/waf.py MANAGED_RULE_GROUPS).")


def _waf_logging(stack: Stack) -> Iterator[Finding]:
    configs: dict[Any, Mapping[str, Any]] = {}
    for _, props in stack.collect([WAF_LOGGING], lambda p: p):
        configs[props.get("resourceArn")] = props

    def redacted(props: Mapping[str, Any]) -> set[str]:
        return {str(get(f, "singleHeader", "name")).lower() for f in items(props.get("redactedFields"))
                if get(f, "singleHeader", "name")}

    def check(acl: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        logging = configs.get(props.get("arn"))
        if logging is None:
            yield Finding(f"Web ACL '{acl.name}' keeps no logs of the requests it allows and blocks. Add an "
                          "aws.wafv2.WebAclLoggingConfiguration to an aws-waf-logs-* log group.",
                          acl.urn, environment_of(props))
            return
        missing = [h for h in REDACTED_HEADERS if h not in redacted(logging)]
        if missing:
            yield Finding(f"Web ACL '{acl.name}' logs the {', '.join(missing)} header(s), which carry credentials. "
                          "Add them to the logging configuration's redacted_fields as single_header.",
                          acl.urn, environment_of(props))
        destinations = [str(d) for d in items(logging.get("logDestinationConfigs"))]
        if not destinations or not all(":log-group:aws-waf-logs-" in d for d in destinations):
            yield Finding(f"Web ACL '{acl.name}' logs to {destinations or 'nothing'}, not a CloudWatch Logs group "
                          "of the stack. Send its logs to an aws-waf-logs-<prefix> log group.",
                          acl.urn, environment_of(props))

    yield from guarded(check, stack.known(WEB_ACL))


POLICIES: list[Policy] = [
    resource_policy("alb-https-tls12", "HTTPS listeners use a TLS 1.2+ security policy.",
                    MANDATORY, list(LISTENERS), _listener_tls),
    stack_policy("alb-http-redirects-to-https",
                 "On a load balancer with HTTPS, HTTP only redirects to HTTPS.", MANDATORY, _http_redirects),
    *by_environment("alb-tls", "Every internet-facing ALB terminates TLS.", _alb_tls),
    *by_environment("alb-waf", "Every internet-facing ALB has a WAF web ACL.", _alb_waf),
    resource_policy("waf-managed-rule-groups",
                    f"Web ACLs block with the AWS managed {' and '.join(REQUIRED_RULE_GROUPS)} rule groups.",
                    MANDATORY, [WEB_ACL], _waf_rule_groups),
    stack_policy("waf-logs-redacted",
                 "Web ACLs log to a CloudWatch Logs group with the authorization and cookie headers redacted.",
                 MANDATORY, _waf_logging),
]
