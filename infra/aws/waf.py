"""The WAF web ACL pieces both the edge's (CLOUDFRONT) and a regional web ACL use: the rule list and
the logging the security floor requires (docs/security.md)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

RATE_LIMIT_PRIORITY = 0
# Lower priorities are evaluated first: the cheap rate limit and reputation list before the
# rule sets that inspect request contents. Known bad inputs covers Log4Shell-style payloads.
MANAGED_RULE_GROUPS = (
    ("AWSManagedRulesAmazonIpReputationList", 10),
    ("AWSManagedRulesCommonRuleSet", 20),
    ("AWSManagedRulesKnownBadInputsRuleSet", 30),
    ("AWSManagedRulesSQLiRuleSet", 40),
)
# Credentials never reach the WAF logs: WAF writes these headers' values as REDACTED. WAF wants
# header names in lower case.
REDACTED_HEADERS = ("authorization", "cookie")


def waf_rules(prefix: str, rate_limit: int) -> list[aws.wafv2.WebAclRuleArgs]:
    """The per-IP rate limit and the managed rule groups, for the edge's web ACL or a regional one."""
    rules = [aws.wafv2.WebAclRuleArgs(
        name="rate-limit-per-ip",
        priority=RATE_LIMIT_PRIORITY,
        action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
        statement=aws.wafv2.WebAclRuleStatementArgs(
            rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=300,
            ),
        ),
        visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(**visibility(f"{prefix}-rate-limit")),
    )]
    for group, priority in MANAGED_RULE_GROUPS:
        rules.append(aws.wafv2.WebAclRuleArgs(
            name=group,
            priority=priority,
            # none: keep the group's own block actions (count would only observe).
            override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                none=aws.wafv2.WebAclRuleOverrideActionNoneArgs(),
            ),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                    name=group, vendor_name="AWS",
                ),
            ),
            visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(**visibility(f"{prefix}-{group}")),
        ))
    return rules


def waf_logging(parent: pulumi.Resource, name: str, acl: aws.wafv2.WebAcl, *, group_name: str,
                kms_key_arn: pulumi.Input[str], retention_days: int, tags: dict[str, str],
                region: str | None = None) -> aws.cloudwatch.LogGroup:
    """WAF logs to a KMS-encrypted group, credentials redacted (the security floor, docs/security.md).

    WAF delivers only to groups named aws-waf-logs-* in the web ACL's region; the account's
    AWSWAF-LOGS resource policy (ci/bootstrap) lets it write there.
    """
    group = aws.cloudwatch.LogGroup(
        f"{name}-waf-logs",
        name=group_name,
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        region=region,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.wafv2.WebAclLoggingConfiguration(
        f"{name}-waf-logging",
        resource_arn=acl.arn,
        log_destination_configs=[group.arn],
        redacted_fields=[
            aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header),
            )
            for header in REDACTED_HEADERS
        ],
        region=region,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return group


def visibility(metric: str) -> dict[str, Any]:
    # Metrics and sampled requests on: a blocked customer can be explained from the console.
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}
