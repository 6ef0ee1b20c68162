"""Each policy of the pack on small hand-built stacks: one case that must fail, one that must pass.

Cases run through `ops.policy_run.evaluate`, the same path `invoke policy` and the review report
take, so the pack's policy objects, the runner and its engine-like props are tested together.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.policy_run import Violation, evaluate, load_policies

# The deployment policies judge whole ECS services; their passing and failing cases are shipped stacks
# and weakened copies of them, in test_deployment_policies.py (which checks it covers each one).
DEPLOYMENT_POLICIES = {"ecs-rolls-back-by-itself", "ecs-bakes-outlast-deployment-alarms", "ecs-traffic-shift-left-to-ecs"}
# The edge policies have their cases in test_edge_policies.py (which checks it covers each one).
EDGE_POLICIES = {"alb-internal", "edge-waf", "edge-tls12", "edge-default-certificate-advisory", "edge-bucket-oac",
                 "route-write-auth-advisory"}
# The analytics policies have their cases in test_analytics_policies.py (which checks it covers each one).
ANALYTICS_POLICIES = {"firehose-sse-cmk", "athena-workgroup-enforced", "athena-scan-limit-advisory"}
POLICY_NAMES = [p.name for p in load_policies().POLICIES
                if p.name not in DEPLOYMENT_POLICIES | EDGE_POLICIES | ANALYTICS_POLICIES]
TAGS = {"project": "refarch", "stack": "dev", "environment": "dev", "managed-by": "pulumi"}
PROD_TAGS = {**TAGS, "stack": "prod", "environment": "prod"}


def res(type_token: str, name: str, /, *, id: str | None = None, arn: str | None = None, **inputs: Any) -> dict[str, Any]:
    """One synth-shaped resource; `id`/`arn` are what references to it resolve to."""
    return {"urn": f"urn:pulumi:t::refarch::{type_token}::{name}", "type": type_token, "name": name,
            "id": id or f"{name}-id", "arn": arn, "parent": None, "inputs": inputs,
            "options": {"protect": False, "retainOnDelete": False, "dependsOn": [], "ignoreChanges": []}}


def run(*resources: dict[str, Any]) -> list[Violation]:
    return evaluate({"project": "refarch", "stack": "t", "resources": list(resources), "outputs": {}})


def of(policy: str, *resources: dict[str, Any]) -> list[Violation]:
    return [v for v in run(*resources) if v.policy == policy]


# --- building blocks ---------------------------------------------------------------------------

LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb/1"
FORWARD = [{"type": "forward", "targetGroupArn": "tg"}]
REDIRECT = [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}]


def alb(tags: dict[str, str] = TAGS, **extra: Any) -> dict[str, Any]:
    inputs = {"loadBalancerType": "application", "internal": False, "securityGroups": ["sg-alb"], "tags": tags,
              **extra}
    return res(LB, "alb", arn=LB_ARN, id=LB_ARN, **inputs)


def listener(name: str, protocol: str, actions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    arn = f"{LB_ARN}/{name}"
    return res(LISTENER, name, arn=arn, id=arn, loadBalancerArn=LB_ARN, protocol=protocol,
               port=443 if protocol == "HTTPS" else 80, defaultActions=actions, tags=TAGS, **extra)


def https() -> dict[str, Any]:
    return listener("https", "HTTPS", FORWARD, sslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                    certificateArn="arn:aws:acm:us-east-1:123456789012:certificate/x")


def task_definition(containers: list[dict[str, Any]], tags: dict[str, str] = TAGS, **extra: Any) -> dict[str, Any]:
    inputs = {"family": "f", "requiresCompatibilities": ["FARGATE"], "containerDefinitions": json.dumps(containers),
              "tags": tags, **extra}
    return res("aws:ecs/taskDefinition:TaskDefinition", "task", **inputs)


def container(**overrides: Any) -> dict[str, Any]:
    return {"name": "app", "image": "repo@sha256:" + "a" * 64, "privileged": False,
            "readonlyRootFilesystem": True, **overrides}


def network(route_to: str | None) -> list[dict[str, Any]]:
    """A subnet `data` whose route table has a default route through `route_to` (None: isolated)."""
    resources = [
        res("aws:ec2/subnet:Subnet", "data", id="subnet-data", vpcId="vpc-1", cidrBlock="10.0.0.0/24", tags=TAGS),
        res("aws:ec2/routeTable:RouteTable", "data-rt", id="rtb-data", vpcId="vpc-1", tags=TAGS),
        res("aws:ec2/routeTableAssociation:RouteTableAssociation", "data-rta", subnetId="subnet-data",
            routeTableId="rtb-data"),
    ]
    if route_to:
        key = "gatewayId" if route_to.startswith("igw-") else "natGatewayId"
        resources.append(res("aws:ec2/route:Route", "data-default", routeTableId="rtb-data",
                             destinationCidrBlock="0.0.0.0/0", **{key: route_to}))
    return resources


def policy_doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}
SCOPED = {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "arn:aws:logs:us-east-1:1:log-group:x:*"}

RDS = "aws:rds/instance:Instance"
RG = "aws:elasticache/replicationGroup:ReplicationGroup"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SERVICE = "aws:ecs/service:Service"

# (policy, resources, violated). Every policy has at least one False and one True case (checked below).
CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("rds-encrypted-at-rest", [res(RDS, "db", storageEncrypted=False, tags=TAGS)], True),
    ("rds-encrypted-at-rest", [res(RDS, "db", storageEncrypted=True, tags=TAGS)], False),
    ("cache-encrypted-at-rest", [res(RG, "cache", atRestEncryptionEnabled=False, tags=TAGS)], True),
    ("cache-encrypted-at-rest", [res("aws:elasticache/cluster:Cluster", "node", engine="redis", tags=TAGS)], True),
    ("cache-encrypted-at-rest", [res(RG, "cache", atRestEncryptionEnabled=True, tags=TAGS)], False),
    ("cache-encrypted-in-transit", [res(RG, "cache", tags=TAGS)], True),
    ("cache-encrypted-in-transit", [res(RG, "cache", transitEncryptionEnabled=True, tags=TAGS)], False),
    ("s3-bucket-encrypted", [res("aws:s3/bucket:Bucket", "logs", id="logs-bucket", bucket="logs-bucket")], True),
    ("s3-bucket-encrypted", [
        res("aws:s3/bucket:Bucket", "logs", id="logs-bucket", bucket="logs-bucket"),
        res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "other-sse",
            bucket="another-bucket", rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
    ], True),
    ("s3-bucket-encrypted", [
        res("aws:s3/bucket:Bucket", "logs", id="logs-bucket", bucket="logs-bucket"),
        res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "logs-sse",
            bucket="logs-bucket", rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]),
    ], False),
    ("sns-topic-encrypted", [res("aws:sns/topic:Topic", "alerts", tags=TAGS)], True),
    ("sns-topic-encrypted", [res("aws:sns/topic:Topic", "alerts", kmsMasterKeyId="arn:aws:kms:k", tags=TAGS)], False),
    ("ebs-encrypted", [res("aws:ec2/instance:Instance", "nat", rootBlockDevice={"encrypted": False}, tags=TAGS)], True),
    ("ebs-encrypted", [res("aws:ec2/instance:Instance", "nat", rootBlockDevice={"encrypted": True},
                           ebsBlockDevices=[{"deviceName": "/dev/sdb", "encrypted": False}], tags=TAGS)], True),
    ("ebs-encrypted", [res("aws:ec2/instance:Instance", "nat", rootBlockDevice={"encrypted": True}, tags=TAGS)], False),
    ("log-group-retention", [res("aws:cloudwatch/logGroup:LogGroup", "logs", tags=TAGS)], True),
    ("log-group-retention", [res("aws:cloudwatch/logGroup:LogGroup", "logs", retentionInDays=0, tags=TAGS)], True),
    ("log-group-retention", [res("aws:cloudwatch/logGroup:LogGroup", "logs", retentionInDays=30, tags=TAGS)], False),
    ("log-group-kms", [res("aws:cloudwatch/logGroup:LogGroup", "logs", retentionInDays=7, tags=TAGS)], True),
    ("log-group-kms", [res("aws:cloudwatch/logGroup:LogGroup", "logs", retentionInDays=7, kmsKeyId="k",
                           tags=TAGS)], False),
    ("rds-force-ssl", [
        res(RDS, "db", engine="postgres", parameterGroupName="pg16", tags=TAGS),
        res("aws:rds/parameterGroup:ParameterGroup", "params", id="pg16", name="pg16", family="postgres16",
            parameters=[{"name": "log_connections", "value": "1"}], tags=TAGS),
    ], True),
    ("rds-force-ssl", [res(RDS, "db", engine="postgres", tags=TAGS)], True),
    ("rds-force-ssl", [
        res(RDS, "db", engine="postgres", parameterGroupName="pg16", tags=TAGS),
        res("aws:rds/parameterGroup:ParameterGroup", "params", id="pg16", name="pg16", family="postgres16",
            parameters=[{"name": "rds.force_ssl", "value": "1"}], tags=TAGS),
    ], False),
    ("rds-force-ssl", [res(RDS, "db", engine="mysql", tags=TAGS)], False),
    ("db-not-public", [res(RDS, "db", publiclyAccessible=True, tags=TAGS)], True),
    ("db-not-public", [res(RDS, "db", publiclyAccessible=False, tags=TAGS)], False),
    ("data-stores-isolated", [*network("igw-1"), res("aws:rds/subnetGroup:SubnetGroup", "db-subnets",
                                                     subnetIds=["subnet-data"], tags=TAGS)], True),
    ("data-stores-isolated", [*network("nat-1"), res("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets",
                                                     subnetIds=["subnet-data"], tags=TAGS)], True),
    ("data-stores-isolated", [*network(None), res("aws:rds/subnetGroup:SubnetGroup", "db-subnets",
                                                  subnetIds=["subnet-data", "subnet-elsewhere"], tags=TAGS)], True),
    ("data-stores-isolated", [res(RG, "cache", tags=TAGS)], True),
    ("data-stores-isolated", [*network(None), res("aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets",
                                                  subnetIds=["subnet-data"], tags=TAGS),
                              res(RG, "cache", subnetGroupName="cache-subnets", tags=TAGS)], False),
    ("sg-no-public-ingress", [alb(), res(SG, "alb-sg", id="sg-alb", tags=TAGS),
                              res(INGRESS, "ssh", securityGroupId="sg-alb", cidrIpv4="0.0.0.0/0", ipProtocol="tcp",
                                  fromPort=22, toPort=22, tags=TAGS)], True),
    ("sg-no-public-ingress", [res(SG, "app-sg", id="sg-app", tags=TAGS),
                              res(INGRESS, "web", securityGroupId="sg-app", cidrIpv6="::/0", ipProtocol="tcp",
                                  fromPort=443, toPort=443, tags=TAGS)], True),
    ("sg-no-public-ingress", [res(SG, "app-sg", id="sg-app", tags=TAGS, ingress=[
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}])], True),
    ("sg-no-public-ingress", [res("aws:ec2/securityGroupRule:SecurityGroupRule", "legacy", type="ingress",
                                  securityGroupId="sg-app", protocol="tcp", fromPort=5432, toPort=5432,
                                  cidrBlocks=["0.0.0.0/0"])], True),
    ("sg-no-public-ingress", [alb(internal=True), res(INGRESS, "web", securityGroupId="sg-alb",
                                                      cidrIpv4="0.0.0.0/0", ipProtocol="tcp", fromPort=443,
                                                      toPort=443, tags=TAGS)], True),
    ("sg-no-public-ingress", [alb(), res(SG, "alb-sg", id="sg-alb", tags=TAGS),
                              res(INGRESS, "web", securityGroupId="sg-alb", cidrIpv4="0.0.0.0/0", ipProtocol="tcp",
                                  fromPort=443, toPort=443, tags=TAGS),
                              res(INGRESS, "from-vpc", securityGroupId="sg-app", cidrIpv4="10.0.0.0/16",
                                  ipProtocol="-1", tags=TAGS)], False),
    ("alb-https-tls12", [listener("https", "HTTPS", FORWARD, sslPolicy="ELBSecurityPolicy-2016-08")], True),
    ("alb-https-tls12", [listener("https", "HTTPS", FORWARD)], True),
    ("alb-https-tls12", [https(), listener("http", "HTTP", REDIRECT)], False),
    ("alb-http-redirects-to-https", [alb(), https(), listener("http", "HTTP", FORWARD)], True),
    ("alb-http-redirects-to-https", [alb(), https(), listener("http", "HTTP", REDIRECT),
                                     res("aws:lb/listenerRule:ListenerRule", "sneaky", listenerArn=f"{LB_ARN}/http",
                                         actions=FORWARD, tags=TAGS)], True),
    ("alb-http-redirects-to-https", [alb(), https(), listener("http", "HTTP", REDIRECT)], False),
    ("alb-http-redirects-to-https", [alb(), listener("http", "HTTP", FORWARD)], False),
    ("alb-tls", [alb(PROD_TAGS), listener("http", "HTTP", FORWARD)], True),
    ("alb-tls", [alb(TAGS), listener("http", "HTTP", FORWARD)], False),
    ("alb-tls", [alb(PROD_TAGS), https(), listener("http", "HTTP", REDIRECT)], False),
    ("alb-tls-advisory", [alb(TAGS), listener("http", "HTTP", FORWARD)], True),
    ("alb-tls-advisory", [alb(PROD_TAGS), listener("http", "HTTP", FORWARD)], False),
    ("alb-waf", [alb(PROD_TAGS)], True),
    ("alb-waf", [alb(PROD_TAGS), res("aws:wafv2/webAclAssociation:WebAclAssociation", "waf-alb",
                                     resourceArn=LB_ARN, webAclArn="acl")], False),
    ("alb-waf-advisory", [alb(TAGS)], True),
    ("alb-waf-advisory", [alb(TAGS), res("aws:wafv2/webAclAssociation:WebAclAssociation", "waf-alb",
                                         resourceArn=LB_ARN, webAclArn="acl")], False),
    ("ecs-no-public-ip", [res(SERVICE, "svc", networkConfiguration={"assignPublicIp": True}, tags=TAGS)], True),
    ("ecs-no-public-ip", [res(SERVICE, "svc", networkConfiguration={"assignPublicIp": False}, tags=TAGS)], False),
    ("ecs-not-privileged", [task_definition([container(), container(name="sidecar", privileged=True)])], True),
    ("ecs-not-privileged", [task_definition([container()])], False),
    ("ecs-read-only-root", [task_definition([container(readonlyRootFilesystem=False)])], True),
    ("ecs-read-only-root", [task_definition([container(readonlyRootFilesystem=False)],
                                            tags={**TAGS, "writable-root-reason": "legacy cache on /var"})], False),
    ("ecs-read-only-root", [task_definition([container()])], False),
    ("ecs-fargate-only", [res(SERVICE, "svc", launchType="EC2", tags=TAGS)], True),
    ("ecs-fargate-only", [res(SERVICE, "svc", tags=TAGS)], True),
    ("ecs-fargate-only", [task_definition([container()], requiresCompatibilities=["EC2", "FARGATE"])], True),
    ("ecs-fargate-only", [res("aws:ecs/capacityProvider:CapacityProvider", "asg", tags=TAGS)], True),
    ("ecs-fargate-only", [res("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cap",
                              capacityProviders=["FARGATE", "my-asg"])], True),
    ("ecs-fargate-only", [res(SERVICE, "svc", tags=TAGS, capacityProviderStrategies=[
        {"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
        task_definition([container()]),
        res("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cap",
            capacityProviders=["FARGATE", "FARGATE_SPOT"])], False),
    ("iam-no-admin", [res("aws:iam/rolePolicy:RolePolicy", "p", role="r", policy=policy_doc(SCOPED, ADMIN))], True),
    ("iam-no-admin", [res("aws:iam/policy:Policy", "p", tags=TAGS, policy=policy_doc(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}))], True),
    ("iam-no-admin", [res("aws:iam/role:Role", "r", tags=TAGS, inlinePolicies=[
        {"name": "all", "policy": policy_doc({"Effect": "Allow", "Action": ["s3:GetObject", "*:*"],
                                              "Resource": ["*"]})}])], True),
    ("iam-no-admin", [res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", role="r",
                          policyArn="arn:aws:iam::aws:policy/AdministratorAccess")], True),
    ("iam-no-admin", [res("aws:iam/rolePolicy:RolePolicy", "p", role="r", policy=policy_doc(
        SCOPED, {"Effect": "Deny", "Action": "*", "Resource": "*"},
        # Services without resource-level permissions: one action on "*" is fine.
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}))], False),
    ("prod-stateful-protected", [res(RDS, "db", deletionProtection=False, backupRetentionPeriod=14,
                                     tags=PROD_TAGS)], True),
    ("prod-stateful-protected", [res(RDS, "db", deletionProtection=True, backupRetentionPeriod=1,
                                     tags=PROD_TAGS)], True),
    ("prod-stateful-protected", [res(RG, "cache", snapshotRetentionLimit=0, tags=PROD_TAGS)], True),
    ("prod-stateful-protected", [alb(PROD_TAGS, enableDeletionProtection=False)], True),
    ("prod-stateful-protected", [res(RDS, "db", deletionProtection=True, backupRetentionPeriod=7, tags=PROD_TAGS),
                                 res(RG, "cache", snapshotRetentionLimit=1, tags=PROD_TAGS),
                                 alb(PROD_TAGS, enableDeletionProtection=True)], False),
    ("prod-stateful-protected", [res(RDS, "db", deletionProtection=False, backupRetentionPeriod=1, tags=TAGS)], False),
    ("required-tags", [res("aws:ec2/vpc:Vpc", "vpc", cidrBlock="10.0.0.0/16",
                           tags={"project": "refarch", "stack": "dev", "environment": ""})], True),
    # A module named after a Python keyword (`lambda` -> pulumi_aws.lambda_) is still checked.
    ("required-tags", [res("aws:lambda/function:Function", "fn", name="refarch-dev-smoke-hook",
                           tags={"project": "refarch"})], True),
    ("required-tags", [res("aws:ec2/vpc:Vpc", "vpc", cidrBlock="10.0.0.0/16", tags=TAGS),
                       # Neither an aws.ec2.Route nor a component takes tags.
                       res("aws:ec2/route:Route", "route", routeTableId="rtb", destinationCidrBlock="0.0.0.0/0"),
                       res("refarch:network:Network", "network")], False),
]


# --- the security floor (issue 11) ----------------------------------------------------------------

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/k-1"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ACL_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/refarch-prod-web-acl/1"
WAF_GROUP_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:aws-waf-logs-refarch-prod"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
MASTER_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-AbCd:password::"


def kms_key(*patterns: str, operator: str = "ArnLike") -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": "CloudWatchLogsEncrypts", "Effect": "Allow",
                                 "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                                 "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"], "Resource": "*"}
    if patterns:
        statement["Condition"] = {operator: {"kms:EncryptionContext:aws:logs:arn": list(patterns)}}
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*", "Resource": "*"}
    return res("aws:kms/key:Key", "key", arn=KEY_ARN, id="k-1", policy=policy_doc(root, statement), tags=TAGS)


STACK_GROUPS = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/refarch-dev/*"


def log_group(name: str, key: str | None = KEY_ARN, days: int = 30, tags: dict[str, str] = TAGS,
              arn: str | None = None) -> dict[str, Any]:
    extra = {"kmsKeyId": key} if key else {}
    return res(LOG_GROUP, name.strip("/").replace("/", "-"), name=name, retentionInDays=days, tags=tags,
               arn=arn or f"arn:aws:logs:us-east-1:123456789012:log-group:{name}", **extra)


def web_acl(*groups: str, count: str | None = None) -> dict[str, Any]:
    rules = [{"name": g, "priority": i, "statement": {"managedRuleGroupStatement": {"name": g, "vendorName": "AWS"}},
              "overrideAction": {"count": {}} if g == count else {"none": {}}} for i, g in enumerate(groups)]
    return res(WEB_ACL, "waf", arn=ACL_ARN, id=ACL_ARN, scope="REGIONAL", rules=rules, tags=PROD_TAGS)


def waf_logging(*headers: str, destination: str = WAF_GROUP_ARN) -> dict[str, Any]:
    return res("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "waf-logging",
               resourceArn=ACL_ARN, logDestinationConfigs=[destination],
               redactedFields=[{"singleHeader": {"name": h}} for h in headers])


def access_logs(*, versioned: bool = True, days: int = 365, tags: dict[str, str] = PROD_TAGS) -> list[dict[str, Any]]:
    bucket = res("aws:s3/bucket:Bucket", "alb-logs", id="refarch-prod-alb-logs", bucket="refarch-prod-alb-logs",
                 tags=tags)
    resources = [alb(tags, accessLogs={"bucket": "refarch-prod-alb-logs", "enabled": True}), bucket,
                 res("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "alb-logs-expiry",
                     bucket="refarch-prod-alb-logs", rules=[{"id": "expire", "status": "Enabled",
                                                             "expiration": {"days": days}}])]
    if versioned:
        resources.append(res("aws:s3/bucketVersioning:BucketVersioning", "alb-logs-versioning",
                             bucket="refarch-prod-alb-logs", versioningConfiguration={"status": "Enabled"}))
    return resources


def served(container_secrets: list[dict[str, str]]) -> list[dict[str, Any]]:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/refarch-dev-products:1"
    task = res(TASK_DEF, "task", arn=arn, id=arn, family="refarch-dev-products", requiresCompatibilities=["FARGATE"],
               containerDefinitions=json.dumps([container(secrets=container_secrets)]), tags=TAGS)
    return [task, res(SERVICE, "svc", taskDefinition=arn, tags=TAGS,
                      capacityProviderStrategies=[{"capacityProvider": "FARGATE", "weight": 1}])]


def iam(*statements: dict[str, Any]) -> dict[str, Any]:
    return res("aws:iam/policy:Policy", "deploy", policy=policy_doc(*statements), tags=TAGS)


def allow(action: str | list[str], resource: str | list[str] = "*", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": "S", "Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


ROLES = "arn:aws:iam::123456789012:role/refarch-dev-*"
BOUNDED = {"ArnEquals": {"iam:PermissionsBoundary": "arn:aws:iam::123456789012:policy/refarch-dev-boundary"}}

CASES += [
    ("log-group-stack-key", [kms_key(STACK_GROUPS), log_group("/ecs/refarch-dev/products")], False),
    ("log-group-stack-key", [kms_key(STACK_GROUPS), log_group("/ecs/refarch-dev/products", key="arn:other")], True),
    # A group of another name than the key serves: CloudWatch Logs could not use the key for it.
    ("log-group-stack-key", [kms_key(STACK_GROUPS), log_group("/ecs/refarch-prod/products")], True),
    ("kms-logs-encryption-context", [kms_key(STACK_GROUPS)], False),
    ("kms-logs-encryption-context", [kms_key()], True),
    ("kms-logs-encryption-context", [kms_key("arn:aws:logs:us-east-1:123456789012:*")], True),
    ("kms-logs-encryption-context", [kms_key("arn:aws:logs:us-east-1:123456789012:log-group:*")], True),
    ("prod-audit-log-retention", [
        res("aws:ec2/flowLog:FlowLog", "flow", logDestination=WAF_GROUP_ARN.replace("aws-waf-logs-refarch-prod", "/f"),
            tags=PROD_TAGS),
        log_group("/f", days=90, tags=PROD_TAGS)], True),
    ("prod-audit-log-retention", [web_acl(), waf_logging("authorization", "cookie"),
                                  log_group("aws-waf-logs-refarch-prod", days=30, tags=PROD_TAGS)], True),
    ("prod-audit-log-retention", [log_group("/aws/rds/instance/refarch-prod-db/postgresql", days=180,
                                            tags=PROD_TAGS)], True),
    ("prod-audit-log-retention", access_logs(days=90), True),
    ("prod-audit-log-retention", [*access_logs(days=365), log_group("/aws/rds/instance/x/postgresql", days=400,
                                                                    tags=PROD_TAGS),
                                  log_group("/ecs/refarch-prod/products", days=30, tags=PROD_TAGS)], False),
    # Outside prod the stack file decides.
    ("prod-audit-log-retention", [log_group("/aws/rds/instance/refarch-dev-db/postgresql", days=7)], False),
    ("access-log-bucket-versioned", access_logs(versioned=False), True),
    ("access-log-bucket-versioned", access_logs(), False),
    ("waf-managed-rule-groups", [web_acl("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")],
     True),
    ("waf-managed-rule-groups", [web_acl("AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet",
                                         count="AWSManagedRulesSQLiRuleSet")], True),
    ("waf-managed-rule-groups", [web_acl("AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet")],
     False),
    ("waf-logs-redacted", [web_acl()], True),
    ("waf-logs-redacted", [web_acl(), waf_logging("authorization")], True),
    ("waf-logs-redacted", [web_acl(), waf_logging("authorization", "cookie",
                                                  destination="arn:aws:s3:::some-bucket")], True),
    ("waf-logs-redacted", [web_acl(), waf_logging("Authorization", "cookie")], False),
    ("rds-iam-auth", [res(RDS, "db", engine="postgres", tags=TAGS)], True),
    ("rds-iam-auth", [res(RDS, "db", engine="postgres", iamDatabaseAuthenticationEnabled=True, tags=TAGS)], False),
    ("cache-user-auth", [res(RG, "cache", authToken="[secret]", tags=TAGS)], True),
    ("cache-user-auth", [res(RG, "cache", tags=TAGS)], True),
    ("cache-user-auth", [res(RG, "cache", userGroupIds=["refarch-dev-cache-users"], tags=TAGS)], False),
    ("rds-enhanced-monitoring", [res(RDS, "db", monitoringInterval=0, tags=PROD_TAGS)], True),
    ("rds-enhanced-monitoring", [res(RDS, "db", monitoringInterval=60, tags=PROD_TAGS)], True),
    ("rds-enhanced-monitoring", [res(RDS, "db", monitoringInterval=60, monitoringRoleArn="arn:role",
                                     tags=PROD_TAGS)], False),
    ("rds-enhanced-monitoring", [res(RDS, "db", databaseInsightsMode="advanced", tags=PROD_TAGS)], False),
    ("rds-enhanced-monitoring-advisory", [res(RDS, "db", monitoringInterval=0, tags=TAGS)], True),
    ("rds-enhanced-monitoring-advisory", [res(RDS, "db", monitoringInterval=0, tags=PROD_TAGS)], False),
    ("ecs-service-no-master-secret", served([{"name": "DATABASE_PASSWORD", "valueFrom": MASTER_SECRET}]), True),
    ("ecs-service-no-master-secret", served([{"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:"
                                                                         "123456789012:secret:refarch-dev/k"}]), False),
    # A migration task definition that no service runs may read it.
    ("ecs-service-no-master-secret", served([])[:1] + [task_definition([container(
        secrets=[{"name": "DATABASE_PASSWORD", "valueFrom": MASTER_SECRET}])])], False),
    ("iam-no-escalation", [iam(allow(["iam:CreateRole", "iam:PutRolePolicy"], ROLES))], True),
    ("iam-no-escalation", [iam(allow("iam:*", ROLES, **BOUNDED))], True),  # includes DeleteRolePermissionsBoundary
    ("iam-no-escalation", [iam(allow("iam:PassRole", "*", StringEquals={"iam:PassedToService": "ecs-tasks.amazonaws.com"}))],
     True),
    ("iam-no-escalation", [iam(allow("iam:PassRole", ROLES))], True),
    ("iam-no-escalation", [iam(allow(["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"], ROLES, **BOUNDED),
                               allow("iam:PassRole", ROLES, StringEquals={"iam:PassedToService": ["ecs-tasks.amazonaws.com"]}),
                               {"Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary", "Resource": "*"})],
     False),
    # The old bootstrap's flaw: any key could be tagged into the environment, then used.
    ("iam-ownership-fixed", [iam(allow(["kms:CreateKey", "kms:TagResource"], "*",
                                       StringEquals={"aws:RequestTag/stack": "dev"}))], True),
    ("iam-ownership-fixed", [iam(allow(["ec2:*", "acm:*"], "*", StringEquals={"aws:RequestedRegion": "us-east-1"}))],
     True),
    ("iam-ownership-fixed", [iam(allow("route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1"))], True),
    ("iam-ownership-fixed", [iam(
        allow("kms:TagResource", "arn:aws:kms:us-east-1:123456789012:key/*",
              StringEqualsIfExists={"aws:ResourceTag/stack": "dev", "aws:RequestTag/stack": "dev"}),
        allow("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:*",
              StringEquals={"ec2:CreateAction": ["CreateVpc"], "aws:RequestTag/stack": "dev"}),
        allow("route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1",
              **{"ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["api.x.com"]}}),
        allow("ec2:Describe*", "*", StringEquals={"aws:RequestedRegion": "us-east-1"}))], False),
    ("iam-role-boundary", [res("aws:iam/role:Role", "r", name="refarch-prod-x", tags=PROD_TAGS)], True),
    ("iam-role-boundary", [res("aws:iam/role:Role", "r", name="refarch-prod-x", tags=PROD_TAGS,
                               permissionsBoundary="arn:aws:iam::123456789012:policy/refarch-prod-boundary")], False),
    ("iam-role-boundary-advisory", [res("aws:iam/role:Role", "r", name="refarch-dev-x", tags=TAGS)], True),
    ("iam-role-boundary-advisory", [res("aws:iam/role:Role", "r", name="refarch-prod-x", tags=PROD_TAGS)], False),
]


@pytest.mark.parametrize(("policy", "resources", "violated"), CASES,
                         ids=[f"{p}-{'fails' if v else 'passes'}-{i}" for i, (p, _, v) in enumerate(CASES)])
def test_policy_case(policy: str, resources: list[dict[str, Any]], violated: bool) -> None:
    found = of(policy, *resources)
    assert bool(found) == violated, [v.message for v in found]


def test_every_policy_has_a_failing_and_a_passing_case() -> None:
    failing = {p for p, _, v in CASES if v}
    passing = {p for p, _, v in CASES if not v}
    assert set(POLICY_NAMES) <= failing, sorted(set(POLICY_NAMES) - failing)
    assert set(POLICY_NAMES) <= passing, sorted(set(POLICY_NAMES) - passing)


def test_messages_end_with_a_one_line_remediation() -> None:
    for policy, resources, violated in CASES:
        for v in of(policy, *resources) if violated else []:
            sentences = [s for s in v.message.split(". ") if s]
            assert "\n" not in v.message and v.message.endswith("."), v.message
            assert len(sentences) >= 2, f"{policy}: no separate remediation sentence in {v.message!r}"


def test_violation_names_the_offending_resource() -> None:
    [v] = of("sg-no-public-ingress", alb(), res(INGRESS, "ssh", securityGroupId="sg-alb", cidrIpv4="0.0.0.0/0",
                                                ipProtocol="tcp", fromPort=22, toPort=22, tags=TAGS))
    assert (v.level, v.resource_type, v.name) == ("mandatory", INGRESS, "ssh")
    assert v.urn == f"urn:pulumi:t::refarch::{INGRESS}::ssh"
    assert "tcp 22" in v.message


def test_mandatory_violations_come_first() -> None:
    found = run(res("aws:cloudwatch/logGroup:LogGroup", "a-logs", tags=TAGS),  # retention (m) + kms (a)
                res("aws:sns/topic:Topic", "z-topic", tags=TAGS))            # kms (m)
    levels = [v.level for v in found]
    assert levels == sorted(levels, key=["mandatory", "advisory"].index)
    assert {v.policy for v in found} == {"log-group-retention", "log-group-kms", "sns-topic-encrypted"}


def test_provider_default_tags_are_not_required_on_the_resource() -> None:
    # The engine passes the provider: default_tags there count as the resource's own.
    from pulumi_policy import (
        PolicyCustomTimeouts,
        PolicyProviderResource,
        PolicyResourceOptions,
        ResourceValidationArgs,
    )

    [policy] = [p for p in load_policies().POLICIES if p.name == "required-tags"]
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    provider = PolicyProviderResource("pulumi:providers:aws", {"defaultTags": {"tags": TAGS}}, "urn:p", "aws")
    found: list[str] = []
    policy.validate(ResourceValidationArgs("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}, "urn:v", "vpc",
                                           opts, provider), lambda m, u=None: found.append(m))
    assert found == []
    policy.validate(ResourceValidationArgs("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}, "urn:v", "vpc",
                                           opts, None), lambda m, u=None: found.append(m))
    assert found and "project, stack, environment, managed-by" in found[0]


def test_values_unknown_at_preview_skip_only_that_resource() -> None:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    new_bucket = res("aws:s3/bucket:Bucket", "new", id=UNKNOWN_STRING_VALUE, bucket=UNKNOWN_STRING_VALUE, tags=TAGS)
    new_sse = res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "new-sse", bucket=UNKNOWN_STRING_VALUE,
                  rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}])
    known_bucket = res("aws:s3/bucket:Bucket", "old", id="old-bucket", bucket="old-bucket", tags=TAGS)
    unknown_task = res("aws:ecs/taskDefinition:TaskDefinition", "task", containerDefinitions=UNKNOWN_STRING_VALUE,
                       requiresCompatibilities=["FARGATE"], tags=TAGS)
    found = run(new_bucket, new_sse, known_bucket, unknown_task)
    assert [(v.policy, v.name) for v in found if v.level == "mandatory"] == [("s3-bucket-encrypted", "old")]


def test_the_pack_entry_point_uses_the_same_policies() -> None:
    import ast
    from pathlib import Path

    import yaml

    from ops.policy_run import PACK_DIR

    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python" and manifest["version"]
    tree = ast.parse(Path(PACK_DIR / "__main__.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PolicyPack"]
    assert len(calls) == 1
    assert {k.arg: getattr(k.value, "id", None) for k in calls[0].keywords}["policies"] == "POLICIES"
    assert len(POLICY_NAMES) == len(set(POLICY_NAMES)), "policy names must be unique in a pack"
