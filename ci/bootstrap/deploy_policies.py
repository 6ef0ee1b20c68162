"""The deploy role of one environment: what `pulumi up` of its stack creates, changes and deletes.

One customer-managed policy per concern (each under IAM's 6,144-character limit), and the
permissions boundary every role the stack creates must carry. See `bootstrap_documents` for the
rules; in short: names where AWS authorizes on names, the creation-time `stack` tag where it
authorizes on generated ids, and never a way to change who a resource belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bootstrap_documents import (
    ATTACHABLE,
    OWNERSHIP_TAGS,
    PASSABLE_TO,
    SERVICE_LINKED,
    STACK_TAG,
    Document,
    Names,
    Statement,
    _doc,
    _owned,
    _region,
    _tagged_at_creation,
    promotion_source_name,
)

# EC2 creations, each with the resource types it brings into being. A creation is allowed on
# exactly those types and only with the stack tag in the request; the resources it builds on (the
# VPC of a subnet, the subnet of a NAT gateway) must already carry the tag (EC2_OWN below). One
# statement per creation, so no creation can borrow another's new type as a parent.
EC2_CREATES: dict[str, list[str]] = {
    "CreateVpc": ["vpc"],
    "CreateSubnet": ["subnet"],
    "CreateRouteTable": ["route-table"],
    "CreateSecurityGroup": ["security-group"],
    "CreateInternetGateway": ["internet-gateway"],
    "AllocateAddress": ["elastic-ip"],
    "CreateNatGateway": ["natgateway"],
    "CreateVpcEndpoint": ["vpc-endpoint"],
    "CreateFlowLogs": ["vpc-flow-log"],
    "AuthorizeSecurityGroupIngress": ["security-group-rule"],
    "AuthorizeSecurityGroupEgress": ["security-group-rule"],
    "RunInstances": ["instance", "volume"],
}
# Everything else the network layer does, on resources already tagged as this stack's.
EC2_OWN = [
    "CreateSubnet", "CreateRouteTable", "CreateSecurityGroup", "CreateNatGateway", "CreateVpcEndpoint",
    "CreateFlowLogs", "RunInstances", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
    "DeleteVpc", "ModifyVpcAttribute", "DeleteSubnet", "ModifySubnetAttribute", "DeleteRouteTable",
    "CreateRoute", "ReplaceRoute", "DeleteRoute", "AssociateRouteTable", "DisassociateRouteTable",
    "ReplaceRouteTableAssociation", "AttachInternetGateway", "DetachInternetGateway", "DeleteInternetGateway",
    "DeleteNatGateway", "ReleaseAddress", "AssociateAddress", "DisassociateAddress", "DeleteSecurityGroup",
    "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "ModifySecurityGroupRules",
    "UpdateSecurityGroupRuleDescriptionsIngress", "UpdateSecurityGroupRuleDescriptionsEgress",
    "DeleteVpcEndpoints", "ModifyVpcEndpoint", "DeleteFlowLogs", "TerminateInstances", "StopInstances",
    "StartInstances", "ModifyInstanceAttribute", "ModifyInstanceMetadataOptions",
]
# The deploy role's managed policies, one per concern (IAM allows 10 on a role by default).
DEPLOY_PARTS = ("network", "platform", "data", "identity", "delivery", "edge", "flags")
ECS_TASK_ROLE_READS = ["ecs:DescribeServices", "elasticloadbalancing:DescribeTargetHealth",
                       "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"]


def _ec2(n: Names, *types: str) -> list[str]:
    return [n.arn("ec2", f"{t}/*") for t in types]


def _ownership_kept() -> dict[str, Any]:
    return {"ForAllValues:StringNotEquals": {"aws:TagKeys": OWNERSHIP_TAGS}}


def deploy_network_policy(n: Names) -> Document:
    """EC2: VPC, subnets, routes, gateways, security groups, endpoints, flow logs, the NAT instance."""
    creates: list[Statement] = [
        {"Sid": f"Ec2{action}", "Effect": "Allow", "Action": f"ec2:{action}", "Resource": _ec2(n, *types),
         "Condition": {"StringEquals": _tagged_at_creation(n)}}
        for action, types in EC2_CREATES.items()
    ]
    return _doc(
        {"Sid": "Ec2Read", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*", "Condition": _region(n)},
        *creates,
        {"Sid": "Ec2Own", "Effect": "Allow", "Action": [f"ec2:{a}" for a in EC2_OWN],
         "Resource": n.arn("ec2", "*"), "Condition": {"StringEquals": _owned(n)}},
        # The NAT instance boots Amazon's AMI; its network interface is created untagged in an
        # owned subnet (the subnet is what Ec2Own checks).
        {"Sid": "Ec2AmazonImages", "Effect": "Allow", "Action": "ec2:RunInstances",
         "Resource": f"arn:{n.where.partition}:ec2:{n.where.region}::image/*",
         "Condition": {"StringEquals": {"ec2:Owner": "amazon"}}},
        {"Sid": "Ec2InstanceInterface", "Effect": "Allow", "Action": "ec2:RunInstances",
         "Resource": _ec2(n, "network-interface")},
        {"Sid": "Ec2TagOnCreate", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": n.arn("ec2", "*"),
         "Condition": {"StringEquals": {**_tagged_at_creation(n), "ec2:CreateAction": list(EC2_CREATES)}}},
        {"Sid": "Ec2RetagOwn", "Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
         "Resource": n.arn("ec2", "*"), "Condition": {"StringEquals": _owned(n), **_ownership_kept()}},
        # The VPC's default security group comes from AWS untagged; the stack adopts it (to empty
        # it) by tagging it. Only untagged groups can be claimed, never another stack's.
        {"Sid": "Ec2AdoptDefaultGroup", "Effect": "Allow", "Action": "ec2:CreateTags",
         "Resource": _ec2(n, "security-group"),
         "Condition": {"Null": {f"aws:ResourceTag/{STACK_TAG}": "true"}, "StringEquals": _tagged_at_creation(n)}},
    )


def deploy_platform_policy(n: Names, hosted_zone_ids: Sequence[str], domains: Sequence[str]) -> Document:
    """Load balancer, WAF, certificates, DNS, ECS, ECR, autoscaling, logs, alarms, topics, Lambda."""
    a, r, p, name = n.where.account, n.where.region, n.where.partition, n.prefix

    def arns(service: str, *resources: str) -> list[str]:
        return [n.arn(service, res) for res in resources]

    statements: list[Statement] = [
        # Reads and calls that AWS authorizes only on "*".
        {"Sid": "UnscopedCalls", "Effect": "Allow", "Resource": "*", "Condition": _region(n), "Action": [
            "elasticloadbalancing:Describe*", "ecs:Describe*", "ecs:List*",
            "rds:Describe*", "rds:ListTagsForResource", "elasticache:Describe*", "elasticache:ListTagsForResource",
            "logs:Describe*", "logs:ListTagsForResource", "logs:CreateLogDelivery", "logs:GetLogDelivery",
            "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "cloudwatch:Describe*",
            "cloudwatch:List*", "sns:List*", "secretsmanager:List*", "wafv2:List*", "wafv2:Get*",
            "wafv2:Describe*", "ecr:GetAuthorizationToken", "ecr:DescribeRegistry", "kms:ListAliases",
            "kms:ListKeys", "s3:ListAllMyBuckets", "acm:ListCertificates", "application-autoscaling:Describe*",
            "lambda:GetAccountSettings"]},
        {"Sid": "TaskDefinitions", "Effect": "Allow", "Action": "ecs:RegisterTaskDefinition", "Resource": "*",
         "Condition": {"StringEquals": {**_tagged_at_creation(n), "aws:RequestedRegion": r}}},
        {"Sid": "LoadBalancer", "Effect": "Allow", "Action": "elasticloadbalancing:*",
         "Resource": arns("elasticloadbalancing", f"loadbalancer/app/{name}-*/*", f"targetgroup/{name}-*/*",
                          f"listener/app/{name}-*/*", f"listener-rule/app/{name}-*/*")},
        {"Sid": "Ecs", "Effect": "Allow", "Action": "ecs:*",
         "Resource": arns("ecs", f"cluster/{name}", f"service/{name}/*", f"task/{name}/*",
                          f"task-definition/{name}-*:*", f"container-instance/{name}/*")},
        {"Sid": "Ecr", "Effect": "Allow", "Action": "ecr:*", "Resource": arns("ecr", f"repository/{name}/*")},
        {"Sid": "Logs", "Effect": "Allow", "Action": "logs:*",
         "Resource": arns("logs", f"log-group:/{name}/*", f"log-group:/ecs/{name}/*",
                          f"log-group:/aws/rds/instance/{name}-*", f"log-group:aws-waf-logs-{name}*",
                          f"log-group:/aws/lambda/{name}-*", f"log-group:/aws/events/{name}/*")},
        # ECS deployment events reach the dashboard through one EventBridge rule per stack.
        {"Sid": "EventRules", "Effect": "Allow", "Action": "events:*", "Resource": arns("events", f"rule/{name}-*")},
        # Target tracking policies make Application Auto Scaling create alarms named after the service.
        {"Sid": "Alarms", "Effect": "Allow", "Action": "cloudwatch:*",
         "Resource": [*arns("cloudwatch", f"alarm:{name}-*", f"alarm:TargetTracking-service/{name}/*"),
                      f"arn:{p}:cloudwatch::{a}:dashboard/{name}", f"arn:{p}:cloudwatch::{a}:dashboard/{name}-*"]},
        {"Sid": "Topics", "Effect": "Allow", "Action": "sns:*", "Resource": arns("sns", f"{name}-*")},
        {"Sid": "Waf", "Effect": "Allow", "Action": "wafv2:*",
         "Resource": arns("wafv2", f"regional/webacl/{name}-*/*", "regional/managedruleset/*/*")},
        {"Sid": "AccessLogBucket", "Effect": "Allow", "Action": "s3:*",
         "Resource": [f"arn:{p}:s3:::{name}-*", f"arn:{p}:s3:::{name}-*/*"]},
        {"Sid": "Functions", "Effect": "Allow", "Action": "lambda:*", "Resource": arns("lambda", f"function:{name}-*")},
        # Application Auto Scaling: only ECS service counts, and only targets tagged as this stack's.
        # A new target (no tags yet) may be registered only with the stack tag; an existing one
        # only through ScalingOwn. At registration the target has no tags, hence the IfExists.
        {"Sid": "ScalingRegister", "Effect": "Allow", "Action": "application-autoscaling:RegisterScalableTarget",
         "Resource": "*", "Condition": {"StringEquals": {**_tagged_at_creation(n), **_ecs_scaling()},
                                        "Null": {f"aws:ResourceTag/{STACK_TAG}": "true"}}},
        {"Sid": "ScalingTagOnCreate", "Effect": "Allow", "Action": "application-autoscaling:TagResource",
         "Resource": "*", "Condition": {"StringEqualsIfExists": {**_owned(n), **_tagged_at_creation(n)}}},
        {"Sid": "ScalingOwn", "Effect": "Allow", "Action": [
            "application-autoscaling:RegisterScalableTarget", "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy",
            "application-autoscaling:ListTagsForResource", "application-autoscaling:TagResource",
            "application-autoscaling:UntagResource"],
         "Resource": n.arn("application-autoscaling", "scalable-target/*"),
         "Condition": {"StringEquals": _owned(n), **_ownership_kept()}},
        # ACM: certificates for this environment's domains only, tagged at request.
        {"Sid": "CertificatesOwn", "Effect": "Allow", "Action": [
            "acm:DescribeCertificate", "acm:GetCertificate", "acm:ListTagsForCertificate", "acm:DeleteCertificate",
            "acm:RemoveTagsFromCertificate", "acm:UpdateCertificateOptions"],
         "Resource": n.arn("acm", "certificate/*"), "Condition": {"StringEquals": _owned(n), **_ownership_kept()}},
        {"Sid": "CertificatesTag", "Effect": "Allow", "Action": "acm:AddTagsToCertificate",
         "Resource": n.arn("acm", "certificate/*"),
         "Condition": {"StringEqualsIfExists": {**_owned(n), **_tagged_at_creation(n)}}},
        {"Sid": "DnsRead", "Effect": "Allow", "Resource": "*",
         "Action": ["route53:GetChange", "route53:GetHostedZone", "route53:ListHostedZones",
                    "route53:ListHostedZonesByName", "route53:ListResourceRecordSets"]},
    ]
    if domains:
        names = sorted({d for domain in domains for d in (domain, f"_*.{domain}")})
        statements.append({
            "Sid": "CertificatesRequest", "Effect": "Allow", "Action": "acm:RequestCertificate", "Resource": "*",
            "Condition": {"StringEquals": {**_tagged_at_creation(n), "acm:ValidationMethod": "DNS"},
                          "ForAllValues:StringEquals": {"acm:DomainNames": sorted(domains)}}})
        zones = [f"arn:{p}:route53:::hostedzone/{z}" for z in hosted_zone_ids] or [f"arn:{p}:route53:::hostedzone/*"]
        # The alias record of each domain and ACM's `_<hash>.<domain>` validation records, nothing else.
        statements.append({
            "Sid": "DnsOwnRecords", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": zones,
            "Condition": {"ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": names},
                          "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["A", "AAAA",
                                                                                                         "CNAME"]}}})
    return _doc(*statements)


def _ecs_scaling() -> dict[str, str]:
    return {"application-autoscaling:service-namespace": "ecs",
            "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount"}


def deploy_data_policy(n: Names) -> Document:
    """RDS, ElastiCache, Secrets Manager, the stack's own KMS key, and the analytics data path."""
    name, project = n.prefix, n.project

    def arns(service: str, *resources: str) -> list[str]:
        return [n.arn(service, res) for res in resources]

    owned_key = {"StringEquals": {**_owned(n), "aws:ResourceTag/project": project}}
    return _doc(
        {"Sid": "Rds", "Effect": "Allow", "Action": "rds:*",
         "Resource": arns("rds", f"db:{name}-*", f"pg:{name}-*", f"subgrp:{name}-*", f"snapshot:{name}-*",
                          "og:default:*", "pg:default.*")},
        {"Sid": "Cache", "Effect": "Allow", "Action": "elasticache:*",
         "Resource": arns("elasticache", f"replicationgroup:{name}-*", f"cluster:{name}-*",
                          f"subnetgroup:{name}-*", f"snapshot:{name}-*", "parametergroup:default.*",
                          f"user:{name}-*", f"usergroup:{name}-*")},
        {"Sid": "Secrets", "Effect": "Allow", "Action": "secretsmanager:*",
         "Resource": arns("secretsmanager", f"secret:{name}/*")},
        # RDS creates the managed master-user secret (rds!db-...) in the caller's name.
        {"Sid": "RdsManagedSecret", "Effect": "Allow",
         "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:DescribeSecret"],
         "Resource": arns("secretsmanager", "secret:rds!*")},
        # The stack's key: created with the stack tag, usable only while it carries it, and that
        # tag can never be set on a key of another environment, removed or changed.
        {"Sid": "KmsCreate", "Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
         "Condition": {"StringEquals": {**_tagged_at_creation(n), "aws:RequestTag/project": project,
                                        "aws:RequestedRegion": n.where.region}}},
        # At CreateKey the key has no tags yet (IfExists); afterwards only this stack's keys match.
        {"Sid": "KmsTag", "Effect": "Allow", "Action": "kms:TagResource", "Resource": n.arn("kms", "key/*"),
         "Condition": {"StringEqualsIfExists": {**_owned(n), **_tagged_at_creation(n)}}},
        {"Sid": "KmsUntag", "Effect": "Allow", "Action": "kms:UntagResource", "Resource": n.arn("kms", "key/*"),
         "Condition": {**owned_key, **_ownership_kept()}},
        {"Sid": "KmsOwnKey", "Effect": "Allow", "Resource": n.arn("kms", "key/*"), "Condition": owned_key,
         "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
                    "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion", "kms:UpdateKeyDescription", "kms:CreateGrant", "kms:ListGrants",
                    "kms:RetireGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*",
                    "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]},
        {"Sid": "KmsAlias", "Effect": "Allow", "Action": ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
         "Resource": arns("kms", f"alias/{name}-*")},
        # Product analytics (infra/aws/analytics.py): the event stream, its Glue table, the workgroup.
        {"Sid": "Analytics", "Effect": "Allow", "Action": ["firehose:*", "glue:*", "athena:*"],
         "Resource": [*arns("firehose", f"deliverystream/{name}-*"), *_glue(n), *arns("athena", f"workgroup/{name}-*")]},
    )


def deploy_identity_policy(n: Names) -> Document:
    """IAM: the stack's roles, always inside this environment's boundary; never the CI roles."""
    p, project = n.where.partition, n.project
    roles = n.iam(f"role/{n.prefix}-*")
    bounded = {"ArnEquals": {"iam:PermissionsBoundary": n.boundary_arn}}
    return _doc(
        {"Sid": "RolesWithinBoundary", "Effect": "Allow", "Resource": roles, "Condition": bounded, "Action": [
            "iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
            "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"]},
        {"Sid": "AttachKnownPolicies", "Effect": "Allow", "Resource": roles,
         "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
         "Condition": {"ArnEquals": {"iam:PermissionsBoundary": n.boundary_arn,
                                     "iam:PolicyARN": [arn.format(p=p) for arn in ATTACHABLE]}}},
        {"Sid": "RolesRead", "Effect": "Allow", "Resource": roles, "Action": [
            "iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:TagRole", "iam:UntagRole",
            "iam:ListRoleTags", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole"]},
        {"Sid": "PolicyRead", "Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
         "Resource": [n.boundary_arn, *[arn.format(p=p) for arn in ATTACHABLE]]},
        {"Sid": "PassStackRoles", "Effect": "Allow", "Action": "iam:PassRole", "Resource": roles,
         "Condition": {"StringEquals": {"iam:PassedToService": PASSABLE_TO}}},
        {"Sid": "ServiceLinkedRoles", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
         "Resource": n.iam("role/aws-service-role/*"),
         "Condition": {"StringEquals": {"iam:AWSServiceName": SERVICE_LINKED}}},
        # Guards that hold whatever is added above later: no CI role (this one included) and no
        # boundary can be changed, no boundary removed, no role assumed but a promotion source.
        {"Sid": "DenyCiRoles", "Effect": "Deny", "Action": "iam:*", "Resource": n.iam(f"role/{project}-ci-*")},
        {"Sid": "DenyPolicyEdits", "Effect": "Deny", "Resource": n.iam(f"policy/{project}-*"), "Action": [
            "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion",
            "iam:TagPolicy", "iam:UntagPolicy"]},
        {"Sid": "DenyBoundaryRemoval", "Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary",
         "Resource": "*"},
        {"Sid": "DenyOtherRoles", "Effect": "Deny", "Action": "sts:AssumeRole",
         "NotResource": f"arn:{p}:iam::*:role/{promotion_source_name(project, '*')}"},
    )


def _glue(n: Names) -> list[str]:
    """The stack's Glue database (`<prefix>_analytics`, underscores: Athena's names) and its tables."""
    database = n.prefix.replace("-", "_")
    return [n.arn("glue", "catalog"), n.arn("glue", f"database/{database}_*"), n.arn("glue", f"table/{database}_*/*")]


def boundary_policy(n: Names) -> Document:
    """The most any role of stack E can ever do, whatever its own policies say."""
    p, r, name = n.where.partition, n.where.region, n.prefix

    def arns(service: str, *resources: str) -> list[str]:
        return [n.arn(service, res) for res in resources]

    return _doc(
        {"Sid": "WriteOwnLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
         "Resource": arns("logs", f"log-group:/{name}/*", f"log-group:/ecs/{name}/*",
                          f"log-group:/aws/lambda/{name}-*")},
        # What AmazonRDSEnhancedMonitoringRole grants RDS's monitoring agent (its RDSOSMetrics group).
        {"Sid": "EnhancedMonitoring", "Effect": "Allow", "Resource": arns("logs", "log-group:RDS*"), "Action": [
            "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:CreateLogStream", "logs:PutLogEvents",
            "logs:DescribeLogStreams", "logs:GetLogEvents"]},
        {"Sid": "DescribeLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullImages", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
         "Resource": f"arn:{p}:ecr:*:*:repository/*"},
        {"Sid": "OwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": n.arn("secretsmanager", f"secret:{name}/*")},
        # RDS names its managed secrets rds!db-<uuid> and tags them with their instance.
        {"Sid": "OwnDatabaseSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": n.arn("secretsmanager", "secret:rds!*"),
         "Condition": {"StringLike": {"aws:ResourceTag/aws:rds:primaryDBInstanceArn": n.arn("rds", f"db:{name}-*")}}},
        {"Sid": "DecryptOwnSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": n.arn("kms", "key/*"),
         "Condition": {"StringEquals": {**_owned(n), "kms:ViaService": f"secretsmanager.{r}.amazonaws.com"}}},
        {"Sid": "Tracing", "Effect": "Allow", "Resource": "*", "Action": [
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries"]},
        # The dbuser ARN carries the instance's generated resource id, not its name: the account and
        # region are the bound here, the task role names the one instance and user.
        {"Sid": "DatabaseLogin", "Effect": "Allow", "Action": "rds-db:connect",
         "Resource": n.arn("rds-db", "dbuser:*/*")},
        {"Sid": "CacheLogin", "Effect": "Allow", "Action": "elasticache:Connect",
         "Resource": arns("elasticache", f"replicationgroup:{name}-*", f"user:{name}-*")},
        {"Sid": "InvokeOwnFunctions", "Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": arns("lambda", f"function:{name}-*")},
        {"Sid": "DeploymentReads", "Effect": "Allow", "Action": ECS_TASK_ROLE_READS, "Resource": "*",
         "Condition": _region(n)},
        # The AppConfig agent beside each task reads flags; each task role names its own profile.
        {"Sid": "ReadFlags", "Effect": "Allow",
         "Action": ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
         "Resource": n.arn("appconfig", "application/*/environment/*/configuration/*")},
        # Product analytics: services put events, Firehose writes them, readers query them.
        {"Sid": "ProductEvents", "Effect": "Allow", "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
         "Resource": arns("firehose", f"deliverystream/{name}-*")},
        {"Sid": "EventsBucket", "Effect": "Allow", "Resource": [f"arn:{p}:s3:::{name}-events-*",
                                                               f"arn:{p}:s3:::{name}-events-*/*"], "Action": [
            "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts",
            "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]},
        {"Sid": "EventsKeyViaS3", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": n.arn("kms", "key/*"), "Condition": {"StringEquals": {**_owned(n), "kms:ViaService": f"s3.{r}.amazonaws.com"}}},
        {"Sid": "EventsCatalog", "Effect": "Allow", "Resource": _glue(n), "Action": [
            "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetTableVersion", "glue:GetTableVersions",
            "glue:GetPartition", "glue:GetPartitions"]},
        {"Sid": "EventsQueries", "Effect": "Allow", "Resource": arns("athena", f"workgroup/{name}-*"), "Action": [
            "athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
            "athena:GetQueryResults", "athena:GetQueryResultsStream", "athena:ListQueryExecutions",
            "athena:GetWorkGroup", "athena:ListNamedQueries", "athena:GetNamedQuery", "athena:BatchGetNamedQuery",
            "athena:BatchGetQueryExecution"]},
    )


def deploy_policies(n: Names, hosted_zone_ids: Sequence[str], domains: Sequence[str]) -> dict[str, Document]:
    """The deploy role's managed policies by part name (`<project>-ci-deploy-<env>-<part>`)."""
    from bootstrap_documents import deploy_delivery_policy
    from deploy_edge_policies import deploy_edge_policy, deploy_flags_policy

    return {
        "network": deploy_network_policy(n),
        "platform": deploy_platform_policy(n, hosted_zone_ids, domains),
        "data": deploy_data_policy(n),
        "identity": deploy_identity_policy(n),
        "delivery": deploy_delivery_policy(n),
        "edge": deploy_edge_policy(n),
        "flags": deploy_flags_policy(n),
    }
