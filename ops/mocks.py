"""Pulumi mocks whose ids, ARNs and computed attributes look like AWS's own.

Deterministic (hashes of the resource name, never random) so that two synths of one stack are
byte-identical and a base/head comparison shows only real changes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import keyword
import re
import uuid
from collections.abc import Callable
from functools import cache

import pulumi

ACCOUNT = "123456789012"
AZ_SUFFIXES = "abcdef"


def _hex(name: str, n: int) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:n]


def _uuid(name: str) -> str:
    return str(uuid.UUID(_hex(name, 32)))


@cache
def resource_class(type_token: str) -> type | None:
    """The SDK class behind a type token (`aws:ec2/vpc:Vpc` -> pulumi_aws.ec2.Vpc), if any."""
    package, _, rest = type_token.partition(":")
    module, _, cls = rest.partition(":")
    module = module.split("/")[0]
    if keyword.iskeyword(module):
        module += "_"  # `lambda` is the Python module `pulumi_aws.lambda_`
    path = f"pulumi_{package}" + ("" if module == "index" else f".{module}")
    try:
        return getattr(importlib.import_module(path), cls, None)
    except ImportError:
        return None


def has_property(type_token: str, prop: str) -> bool:
    cls = resource_class(type_token)
    return cls is not None and isinstance(getattr(cls, prop, None), property)


# Id prefixes AWS uses, by type token.
ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/instance:Instance": "i-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:ec2/networkInterface:NetworkInterface": "eni-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
}


def _arn(type_token: str, name: str, region: str, inputs: dict) -> str:
    service = type_token.split(":")[1].split("/")[0]
    kind = type_token.rsplit(":", 1)[1]
    h = _hex(name, 16)
    special: dict[str, Callable[[], str]] = {
        "aws:lb/loadBalancer:LoadBalancer": lambda: f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/app/{name[:32]}/{h}",
        "aws:lb/targetGroup:TargetGroup": lambda: f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{name[:32]}/{h}",
        "aws:lb/listener:Listener": lambda: f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener/app/{name[:32]}/{h}/{_hex(name + 'l', 16)}",
        "aws:lb/listenerRule:ListenerRule": lambda: f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener-rule/app/{name[:32]}/{h}/{_hex(name + 'r', 16)}",
        "aws:ecs/cluster:Cluster": lambda: f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{inputs.get('name', name)}",
        "aws:ecs/service:Service": lambda: f"arn:aws:ecs:{region}:{ACCOUNT}:service/{inputs.get('cluster', 'cluster').rsplit('/', 1)[-1]}/{inputs.get('name', name)}",
        "aws:ecs/taskDefinition:TaskDefinition": lambda: f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{inputs.get('family', name)}:1",
        "aws:cloudwatch/logGroup:LogGroup": lambda: f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{inputs.get('name', name)}",
        "aws:cloudwatch/metricAlarm:MetricAlarm": lambda: f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{inputs.get('name', name)}",
        "aws:cloudwatch/compositeAlarm:CompositeAlarm": lambda: f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{inputs.get('alarmName', name)}",
        "aws:cloudwatch/dashboard:Dashboard": lambda: f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{inputs.get('dashboardName', name)}",
        "aws:sns/topic:Topic": lambda: f"arn:aws:sns:{region}:{ACCOUNT}:{inputs.get('name', name)}",
        "aws:sns/topicSubscription:TopicSubscription": lambda: f"arn:aws:sns:{region}:{ACCOUNT}:{name}:{_uuid(name)}",
        "aws:kms/key:Key": lambda: f"arn:aws:kms:{region}:{ACCOUNT}:key/{_uuid(name)}",
        "aws:kms/alias:Alias": lambda: f"arn:aws:kms:{region}:{ACCOUNT}:{inputs.get('name', 'alias/' + name)}",
        "aws:iam/role:Role": lambda: f"arn:aws:iam::{ACCOUNT}:role/{inputs.get('name', name)}",
        "aws:iam/policy:Policy": lambda: f"arn:aws:iam::{ACCOUNT}:policy/{inputs.get('name', name)}",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda: f"arn:aws:iam::{ACCOUNT}:oidc-provider/{str(inputs.get('url', name)).removeprefix('https://')}",
        "aws:s3/bucket:Bucket": lambda: f"arn:aws:s3:::{inputs.get('bucket', name)}",
        "aws:s3/bucketV2:BucketV2": lambda: f"arn:aws:s3:::{inputs.get('bucket', name)}",
        "aws:rds/instance:Instance": lambda: f"arn:aws:rds:{region}:{ACCOUNT}:db:{inputs.get('identifier', name)}",
        "aws:rds/subnetGroup:SubnetGroup": lambda: f"arn:aws:rds:{region}:{ACCOUNT}:subgrp:{inputs.get('name', name)}",
        "aws:rds/parameterGroup:ParameterGroup": lambda: f"arn:aws:rds:{region}:{ACCOUNT}:pg:{inputs.get('name', name)}",
        "aws:elasticache/replicationGroup:ReplicationGroup": lambda: f"arn:aws:elasticache:{region}:{ACCOUNT}:replicationgroup:{inputs.get('replicationGroupId', name)}",
        "aws:elasticache/subnetGroup:SubnetGroup": lambda: f"arn:aws:elasticache:{region}:{ACCOUNT}:subnetgroup:{inputs.get('name', name)}",
        "aws:elasticache/parameterGroup:ParameterGroup": lambda: f"arn:aws:elasticache:{region}:{ACCOUNT}:parametergroup:{inputs.get('name', name)}",
        "aws:secretsmanager/secret:Secret": lambda: f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{inputs.get('name', name)}-{_hex(name, 6)}",
        "aws:wafv2/webAcl:WebAcl": lambda: (f"arn:aws:wafv2:{inputs.get('region') or region}:{ACCOUNT}:"
                                            f"{'global' if inputs.get('scope') == 'CLOUDFRONT' else 'regional'}"
                                            f"/webacl/{inputs.get('name', name)}/{_uuid(name)}"),
        "aws:cloudfront/distribution:Distribution": lambda: f"arn:aws:cloudfront::{ACCOUNT}:distribution/E{_hex(name, 13).upper()}",
        "aws:cloudfront/vpcOrigin:VpcOrigin": lambda: f"arn:aws:cloudfront::{ACCOUNT}:vpcorigin/vo_{_hex(name, 22)}",
        "aws:ecr/repository:Repository": lambda: f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{inputs.get('name', name)}",
        "aws:acm/certificate:Certificate": lambda: f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{_uuid(name)}",
        "aws:appautoscaling/policy:Policy": lambda: f"arn:aws:autoscaling:{region}:{ACCOUNT}:scalingPolicy:{_uuid(name)}:resource/ecs/{inputs.get('resourceId', name)}:policyName/{inputs.get('name', name)}",
        "aws:lambda/function:Function": lambda: f"arn:aws:lambda:{region}:{ACCOUNT}:function:{inputs.get('name', name)}",
        "aws:cloudwatch/eventRule:EventRule": lambda: f"arn:aws:events:{region}:{ACCOUNT}:rule/{inputs.get('name', name)}",
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": lambda: f"arn:aws:firehose:{region}:{ACCOUNT}:deliverystream/{inputs.get('name', name)}",
        "aws:appautoscaling/target:Target": lambda: f"arn:aws:application-autoscaling:{region}:{ACCOUNT}:scalable-target/{_hex(name, 32)}",
    }
    if type_token in special:
        return special[type_token]()
    resource = re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}/{inputs.get('name', name)}"


def _computed(type_token: str, name: str, region: str, inputs: dict, arn: str | None) -> dict:
    """Attributes AWS computes that other resources or outputs read."""
    short = inputs.get("name") or name
    suffix = arn.split(":", 5)[-1].split("/", 1)[-1] if arn else ""
    if type_token == "aws:lb/loadBalancer:LoadBalancer":
        return {"arnSuffix": suffix, "dnsName": f"{short[:32]}-{int(_hex(name, 8), 16)}.{region}.elb.amazonaws.com",
                "zoneId": "Z35SXDOTRQ7X7K"}
    if type_token == "aws:lb/targetGroup:TargetGroup":
        # AWS keeps the resource type in a target group's suffix: targetgroup/<name>/<id>.
        return {"arnSuffix": arn.split(":", 5)[-1] if arn else ""}
    if type_token == "aws:ecr/repository:Repository":
        return {"repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{short}", "registryId": ACCOUNT}
    if type_token == "aws:rds/instance:Instance":
        ident = inputs.get("identifier", name)
        address = f"{ident}.c{_hex(name, 11)}.{region}.rds.amazonaws.com"
        return {"address": address, "endpoint": f"{address}:5432", "port": inputs.get("port", 5432),
                "resourceId": f"db-{_hex(name, 26).upper()}",
                "masterUserSecrets": [{
                    "secretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:rds!db-{_uuid(name)}-{_hex(name, 6)}",
                    "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""), "secretStatus": "active"}]}
    if type_token == "aws:elasticache/replicationGroup:ReplicationGroup":
        ident = inputs.get("replicationGroupId", name)
        count = int(inputs.get("numCacheClusters") or 1 + int(inputs.get("replicasPerNodeGroup") or 0))
        return {"primaryEndpointAddress": f"master.{ident}.{_hex(name, 6)}.use1.cache.amazonaws.com",
                "readerEndpointAddress": f"replica.{ident}.{_hex(name, 6)}.use1.cache.amazonaws.com",
                "memberClusters": [f"{ident}-{i + 1:03d}" for i in range(count)], "port": inputs.get("port", 6379)}
    if type_token == "aws:kms/key:Key":
        return {"keyId": _uuid(name)}
    if type_token == "aws:ec2/vpc:Vpc":
        return {"defaultSecurityGroupId": f"sg-{_hex(name + 'sg', 17)}", "mainRouteTableId": f"rtb-{_hex(name + 'rt', 17)}",
                "defaultNetworkAclId": f"acl-{_hex(name + 'acl', 17)}"}
    if type_token == "aws:ec2/instance:Instance":
        return {"primaryNetworkInterfaceId": f"eni-{_hex(name, 17)}", "privateIp": "10.0.0.10",
                "publicIp": "198.51.100.10"}
    if type_token == "aws:ec2/eip:Eip":
        return {"publicIp": "198.51.100.20", "allocationId": f"eipalloc-{_hex(name, 17)}"}
    if type_token == "aws:ecs/taskDefinition:TaskDefinition":
        return {"revision": 1, "arnWithoutRevision": arn.rsplit(":", 1)[0] if arn else ""}
    if type_token == "aws:acm/certificate:Certificate":
        domain = inputs.get("domainName", "example.com")
        return {"domainValidationOptions": [{
            "domainName": domain, "resourceRecordName": f"_{_hex(name, 32)}.{domain}.",
            "resourceRecordType": "CNAME", "resourceRecordValue": f"_{_hex(name + 'v', 32)}.acm-validations.aws."}]}
    if type_token in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        bucket = inputs.get("bucket") or f"{name}-{_hex(name, 7)}"
        return {"bucket": bucket, "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com"}
    if type_token == "aws:route53/record:Record":
        return {"fqdn": str(inputs.get("name", name)).rstrip(".")}
    if type_token == "aws:cloudfront/distribution:Distribution":
        return {"domainName": f"d{_hex(name, 13)}.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}
    if type_token == "aws:wafv2/webAcl:WebAcl":
        return {"capacity": 700}
    if type_token == "random:index/randomPassword:RandomPassword":
        return {"result": "mock-" + _hex(name, 28)}
    if type_token == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        return {}
    if type_token.startswith("aws:appconfig/"):
        # AppConfig's own ids: 7 lowercase alphanumerics, unique per stack (policies name them);
        # versions and deployments count from 1.
        own = _hex(f"{pulumi.get_stack()}/{name}", 7)
        return {"environmentId": own, "configurationProfileId": own, "versionNumber": 1,
                "deploymentNumber": 1, "state": "COMPLETE"}
    return {}


def _call(token: str, args: dict, region: str) -> dict:
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/synth", "userId": "AIDASYNTH", "id": ACCOUNT}
    if token == "aws:index/getRegion:getRegion":
        return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        from infra.config.regions import REGION_AZS

        # As many zones as the region really has (the schema's table), never an assumed six.
        count = REGION_AZS.get(region, len(AZ_SUFFIXES))
        return {"names": [f"{region}{s}" for s in AZ_SUFFIXES[:count]],
                "zoneIds": [f"{region}-az{i + 1}" for i in range(count)],
                "id": region, "groupNames": [region]}
    if token == "aws:ec2/getAmi:getAmi":
        return {"id": f"ami-{_hex(json.dumps(args, sort_keys=True, default=str), 17)}", "architecture": "arm64",
                "name": "al2023-ami-minimal-arm64"}
    if token == "aws:ssm/getParameter:getParameter":
        return {"value": f"ami-{_hex(str(args.get('name')), 17)}", "name": args.get("name"), "id": args.get("name"),
                "type": "String", "arn": f"arn:aws:ssm:{region}::parameter{args.get('name')}", "version": 1}
    if token == "aws:elb/getServiceAccount:getServiceAccount":
        return {"arn": "arn:aws:iam::127311923021:root", "id": "127311923021"}
    if token == "aws:route53/getZone:getZone":
        return {"zoneId": args.get("zoneId") or "Z0123456789ABCDEFGHIJ", "name": args.get("name") or "example.com",
                "id": args.get("zoneId") or "Z0123456789ABCDEFGHIJ"}
    if token == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
        # us-east-1's id of com.amazonaws.global.cloudfront.origin-facing (ids differ per region).
        return {"id": "pl-3b927c52", "name": args.get("name"), "addressFamily": "IPv4", "maxEntries": 55,
                "ownerId": "AWS", "arn": f"arn:aws:ec2:{region}:aws:prefix-list/pl-3b927c52", "entries": [],
                "version": 1, "tags": {}}
    if token == "aws:iam/getPolicyDocument:getPolicyDocument":
        return {"json": json.dumps({"Version": "2012-10-17", "Statement": args.get("statements", [])}, sort_keys=True)}
    raise NotImplementedError(
        f"the synth mocks do not know the invoke {token!r}: add its result to ops/mocks.py"
    )


class AwsLikeMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str):
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        arn = _arn(typ, name, self.region, inputs) if has_property(typ, "arn") else None
        prefix = ID_PREFIX.get(typ)
        if typ == "aws:kms/key:Key":
            rid = _uuid(name)
        elif prefix:
            rid = f"{prefix}{_hex(name, 17)}"
        elif typ.startswith("aws:ecs/service") or typ.startswith("aws:ecs/cluster") or typ.startswith("aws:ecs/task"):
            rid = arn or name
        elif typ == "aws:cloudfront/distribution:Distribution":
            rid = f"E{_hex(name, 13).upper()}"
        elif typ in ("aws:appconfig/application:Application", "aws:appconfig/deploymentStrategy:DeploymentStrategy"):
            rid = _hex(f"{pulumi.get_stack()}/{name}", 7)
        elif typ == "aws:cloudfront/vpcOrigin:VpcOrigin":
            rid = f"vo_{_hex(name, 22)}"
        elif arn and typ.startswith(("aws:lb/", "aws:sns/", "aws:iam/policy", "aws:secretsmanager/", "aws:wafv2/")):
            rid = arn
        else:
            rid = inputs.get("name") or inputs.get("bucket") or f"{name}-{_hex(name, 7)}"
        state = {**inputs}
        if arn:
            state["arn"] = arn
        if has_property(typ, "name") and "name" not in state:
            state["name"] = f"{name}-{_hex(name, 7)}"
        if has_property(typ, "tags_all"):
            state["tagsAll"] = inputs.get("tags", {})
        state.update({k: v for k, v in _computed(typ, name, self.region, inputs, arn).items() if k not in inputs})
        return (str(rid), state)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return _call(args.token, dict(args.args), self.region), []
