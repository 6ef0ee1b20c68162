"""The deploy role's parts for the layers in front of and beside the services: the edge
(CloudFront, its WAF and logs in us-east-1, the Cognito issuer) and feature flags (AppConfig).

Same rules as `deploy_policies`: names where AWS authorizes on names; the creation-time `stack`
tag where it authorizes on generated ids (distributions, VPC origins, user pools, AppConfig
applications, environments, profiles and strategies), with that tag never removable or
changeable. Three CloudFront types carry no tags and generated ids: cache policies, response
headers policies and origin access controls. IAM cannot tell one environment's from another's,
so any deploy role of the account may change them; environments that must not touch each other
at all belong in separate accounts (ci/README.md).
"""

from __future__ import annotations

from typing import Any

from bootstrap_documents import OWNERSHIP_TAGS, Document, Names, _doc, _owned, _tagged_at_creation

# CloudFront, its web ACL and the logs of both live in us-east-1 whatever the stack's region.
EDGE_REGION = "us-east-1"


def _ownership_kept() -> dict[str, Any]:
    return {"ForAllValues:StringNotEquals": {"aws:TagKeys": OWNERSHIP_TAGS}}


def _new_or_owned(n: Names) -> dict[str, Any]:
    """Tagging: a resource without tags yet (its creation) or this stack's, and only with this stack's tag."""
    return {"StringEqualsIfExists": {**_owned(n), **_tagged_at_creation(n)}}


def deploy_edge_policy(n: Names) -> Document:
    """CloudFront distribution, VPC origin and policies; the CLOUDFRONT-scope web ACL; their logs; Cognito."""
    a, p, name = n.where.account, n.where.partition, n.prefix

    def cloudfront(*resources: str) -> list[str]:
        return [f"arn:{p}:cloudfront::{a}:{res}" for res in resources]

    def edge(service: str, *resources: str) -> list[str]:
        return [n.arn(service, res, region=EDGE_REGION) for res in resources]

    tagged_types = cloudfront("distribution/*", "vpcorigin/*")
    return _doc(
        # CloudFront's API is global and answers from us-east-1.
        {"Sid": "CloudFrontRead", "Effect": "Allow", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": EDGE_REGION}}, "Action": [
            "cloudfront:ListCachePolicies", "cloudfront:ListDistributions", "cloudfront:ListOriginAccessControls",
            "cloudfront:ListOriginRequestPolicies", "cloudfront:ListResponseHeadersPolicies",
            "cloudfront:ListVpcOrigins"]},
        # CreateDistribution takes no tag condition; the distribution is tagged in the same call
        # (CreateDistributionWithTags needs TagResource, below) and only then can be changed.
        {"Sid": "CloudFrontCreateDistribution", "Effect": "Allow", "Action": "cloudfront:CreateDistribution",
         "Resource": cloudfront("distribution/*")},
        {"Sid": "CloudFrontCreateVpcOrigin", "Effect": "Allow", "Action": "cloudfront:CreateVpcOrigin",
         "Resource": "*", "Condition": {"StringEquals": _tagged_at_creation(n)}},
        {"Sid": "CloudFrontTag", "Effect": "Allow", "Action": "cloudfront:TagResource", "Resource": tagged_types,
         "Condition": _new_or_owned(n)},
        {"Sid": "CloudFrontUntag", "Effect": "Allow", "Action": "cloudfront:UntagResource", "Resource": tagged_types,
         "Condition": {"StringEquals": _owned(n), **_ownership_kept()}},
        {"Sid": "CloudFrontOwn", "Effect": "Allow", "Resource": tagged_types,
         "Condition": {"StringEquals": _owned(n)}, "Action": [
            "cloudfront:GetDistribution", "cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution",
            "cloudfront:DeleteDistribution", "cloudfront:CreateInvalidation", "cloudfront:GetInvalidation",
            "cloudfront:ListTagsForResource", "cloudfront:AllowVendedLogDeliveryForResource",
            "cloudfront:GetVpcOrigin", "cloudfront:UpdateVpcOrigin", "cloudfront:DeleteVpcOrigin"]},
        {"Sid": "CloudFrontPolicies", "Effect": "Allow",
         "Resource": cloudfront("cache-policy/*", "origin-request-policy/*", "response-headers-policy/*",
                                "origin-access-control/*"), "Action": [
            "cloudfront:GetCachePolicy", "cloudfront:GetOriginRequestPolicy", "cloudfront:GetResponseHeadersPolicy",
            "cloudfront:GetOriginAccessControl",
            "cloudfront:CreateCachePolicy", "cloudfront:UpdateCachePolicy", "cloudfront:DeleteCachePolicy",
            "cloudfront:CreateResponseHeadersPolicy", "cloudfront:UpdateResponseHeadersPolicy",
            "cloudfront:DeleteResponseHeadersPolicy", "cloudfront:CreateOriginAccessControl",
            "cloudfront:UpdateOriginAccessControl", "cloudfront:DeleteOriginAccessControl"]},
        {"Sid": "EdgeWaf", "Effect": "Allow", "Action": "wafv2:*",
         "Resource": edge("wafv2", f"global/webacl/{name}-*/*", "global/managedruleset/*/*")},
        {"Sid": "EdgeLogs", "Effect": "Allow", "Action": "logs:*",
         "Resource": edge("logs", f"log-group:/aws/cloudfront/{name}", f"log-group:/aws/cloudfront/{name}:*",
                          f"log-group:aws-waf-logs-{name}*", f"delivery-source:{name}-*",
                          f"delivery-destination:{name}-*", "delivery:*")},
        # Cognito: the user pool is created with the stack tag; everything in it needs that tag.
        {"Sid": "CognitoCreatePool", "Effect": "Allow", "Action": "cognito-idp:CreateUserPool", "Resource": "*",
         "Condition": {"StringEquals": {**_tagged_at_creation(n), "aws:RequestedRegion": n.where.region}}},
        {"Sid": "CognitoTag", "Effect": "Allow", "Action": "cognito-idp:TagResource",
         "Resource": n.arn("cognito-idp", "userpool/*"), "Condition": _new_or_owned(n)},
        {"Sid": "CognitoOwnPool", "Effect": "Allow", "Resource": n.arn("cognito-idp", "userpool/*"),
         "Condition": {"StringEquals": _owned(n)}, "Action": [
            "cognito-idp:DescribeUserPool", "cognito-idp:UpdateUserPool", "cognito-idp:DeleteUserPool",
            "cognito-idp:GetUserPoolMfaConfig", "cognito-idp:SetUserPoolMfaConfig", "cognito-idp:ListTagsForResource",
            "cognito-idp:CreateUserPoolDomain", "cognito-idp:DescribeUserPoolDomain",
            "cognito-idp:UpdateUserPoolDomain", "cognito-idp:DeleteUserPoolDomain",
            "cognito-idp:CreateResourceServer", "cognito-idp:DescribeResourceServer",
            "cognito-idp:UpdateResourceServer", "cognito-idp:DeleteResourceServer",
            "cognito-idp:CreateUserPoolClient", "cognito-idp:DescribeUserPoolClient",
            "cognito-idp:UpdateUserPoolClient", "cognito-idp:DeleteUserPoolClient"]},
        {"Sid": "CognitoUntag", "Effect": "Allow", "Action": "cognito-idp:UntagResource",
         "Resource": n.arn("cognito-idp", "userpool/*"), "Condition": {"StringEquals": _owned(n), **_ownership_kept()}},
        # The domain's availability is asked before any pool of this stack exists.
        {"Sid": "CognitoDomainLookup", "Effect": "Allow", "Action": "cognito-idp:DescribeUserPoolDomain",
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": n.where.region}}},
    )


def deploy_flags_policy(n: Names) -> Document:
    """AppConfig: the stack's application, environment, feature-flag profile, versions, strategy, deployments."""

    def appconfig(*resources: str) -> list[str]:
        return [n.arn("appconfig", res) for res in resources]

    owned = appconfig("application/*", "application/*/environment/*", "application/*/configurationprofile/*",
                      "application/*/environment/*/deployment/*", "deploymentstrategy/*")
    return _doc(
        {"Sid": "AppConfigRead", "Effect": "Allow", "Resource": "*",
         "Action": ["appconfig:ListApplications", "appconfig:ListDeploymentStrategies"],
         "Condition": {"StringEquals": {"aws:RequestedRegion": n.where.region}}},
        {"Sid": "AppConfigCreate", "Effect": "Allow", "Resource": "*",
         "Action": ["appconfig:CreateApplication", "appconfig:CreateDeploymentStrategy"],
         "Condition": {"StringEquals": {**_tagged_at_creation(n), "aws:RequestedRegion": n.where.region}}},
        # Environments and profiles are created inside the stack's application, and tagged.
        {"Sid": "AppConfigCreateInOwnApplication", "Effect": "Allow", "Resource": appconfig("application/*"),
         "Action": ["appconfig:CreateEnvironment", "appconfig:CreateConfigurationProfile"],
         "Condition": {"StringEquals": {**_owned(n), **_tagged_at_creation(n)}}},
        {"Sid": "AppConfigTag", "Effect": "Allow", "Action": "appconfig:TagResource", "Resource": owned,
         "Condition": _new_or_owned(n)},
        {"Sid": "AppConfigUntag", "Effect": "Allow", "Action": "appconfig:UntagResource", "Resource": owned,
         "Condition": {"StringEquals": _owned(n), **_ownership_kept()}},
        {"Sid": "AppConfigOwn", "Effect": "Allow", "Resource": owned, "Condition": {"StringEquals": _owned(n)},
         "Action": [
            "appconfig:GetApplication", "appconfig:UpdateApplication", "appconfig:DeleteApplication",
            "appconfig:GetEnvironment", "appconfig:UpdateEnvironment", "appconfig:DeleteEnvironment",
            "appconfig:ListEnvironments", "appconfig:GetConfigurationProfile", "appconfig:UpdateConfigurationProfile",
            "appconfig:DeleteConfigurationProfile", "appconfig:ListConfigurationProfiles",
            "appconfig:GetDeploymentStrategy", "appconfig:UpdateDeploymentStrategy",
            "appconfig:DeleteDeploymentStrategy", "appconfig:StartDeployment", "appconfig:StopDeployment",
            "appconfig:GetDeployment", "appconfig:ListDeployments", "appconfig:ListTagsForResource"]},
        # Hosted versions carry no tags and sit under generated ids: a role may add a version to
        # another stack's profile, never deploy it (StartDeployment needs the stack's own tags).
        {"Sid": "AppConfigVersions", "Effect": "Allow",
         "Resource": appconfig("application/*/configurationprofile/*",
                               "application/*/configurationprofile/*/hostedconfigurationversion/*"),
         "Action": ["appconfig:CreateHostedConfigurationVersion", "appconfig:GetHostedConfigurationVersion",
                    "appconfig:DeleteHostedConfigurationVersion", "appconfig:ListHostedConfigurationVersions"]},
    )
