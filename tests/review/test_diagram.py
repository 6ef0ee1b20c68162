"""The architecture diagram: nodes and edges come from references in the synth output."""

from __future__ import annotations

import re

import pytest

from ops.review import diagram

ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def two_services(doc):
    """An ALB in front of `orders` (database + cache) and `search` (cache only), alarms on a topic."""
    a = doc.arn
    for i, tier in enumerate(("public", "private", "isolated")):
        doc.add("network", "aws:ec2/subnet:Subnet", f"network-{tier}-0",
                {"cidrBlock": f"10.0.{i * 16}.0/20", "tags": {"tier": tier}}, id=f"subnet-{tier}")
    alb_sg = doc.add("gateway", "aws:ec2/securityGroup:SecurityGroup", "alb-sg", id="sg-alb")
    doc.add("gateway", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "alb-in-80",
            {"securityGroupId": alb_sg["id"], "cidrIpv4": "0.0.0.0/0", "fromPort": 80, "toPort": 80, "ipProtocol": "tcp"})
    alb = doc.add("gateway", "aws:lb/loadBalancer:LoadBalancer", "alb",
                  {"name": "test-alb", "securityGroups": ["sg-alb"], "subnets": ["subnet-public"]},
                  arn=a("elasticloadbalancing", "loadbalancer/app/test-alb/1"))
    listener = doc.add("gateway", "aws:lb/listener:Listener", "http",
                       {"loadBalancerArn": alb["arn"], "port": 80, "protocol": "HTTP"},
                       arn=a("elasticloadbalancing", "listener/app/test-alb/1/2"))
    acl = doc.add("gateway", "aws:wafv2/webAcl:WebAcl", "waf", {"name": "test-acl", "rules": [{"name": "r"}]},
                  arn=a("wafv2", "regional/webacl/test-acl/1"))
    doc.add("gateway", "aws:wafv2/webAclAssociation:WebAclAssociation", "waf-alb",
            {"resourceArn": alb["arn"], "webAclArn": acl["arn"]})
    db_sg = doc.add("database", "aws:ec2/securityGroup:SecurityGroup", "db-sg", id="sg-db")
    doc.add("database", "aws:rds/subnetGroup:SubnetGroup", "db-subnets", {"name": "test-db", "subnetIds": ["subnet-isolated"]})
    doc.add("database", "aws:rds/instance:Instance", "db",
            {"engine": "postgres", "engineVersion": "16.4", "instanceClass": "db.t4g.micro",
             "vpcSecurityGroupIds": [db_sg["id"]], "dbSubnetGroupName": "test-db"})
    cache_sg = doc.add("cache", "aws:ec2/securityGroup:SecurityGroup", "cache-sg", id="sg-cache")
    doc.add("cache", "aws:elasticache/subnetGroup:SubnetGroup", "cache-subnets",
            {"name": "test-cache", "subnetIds": ["subnet-isolated"]})
    doc.add("cache", "aws:elasticache/replicationGroup:ReplicationGroup", "cache",
            {"engine": "valkey", "nodeType": "cache.t4g.micro", "numCacheClusters": 1,
             "securityGroupIds": [cache_sg["id"]], "subnetGroupName": "test-cache"})
    for n, (svc, path, stores) in enumerate((("orders", "/orders*", ("db", "cache")), ("search", "/search*", ("cache",)))):
        sg = doc.add("services", "aws:ec2/securityGroup:SecurityGroup", f"{svc}-sg", id=f"sg-{svc}")
        tg = doc.add("services", "aws:lb/targetGroup:TargetGroup", f"{svc}-tg", {"port": 8080 + n},
                     arn=a("elasticloadbalancing", f"targetgroup/{svc}/1"))
        doc.add("services", "aws:lb/listenerRule:ListenerRule", f"{svc}-rule",
                {"listenerArn": listener["arn"], "priority": 100 + n,
                 "actions": [{"type": "forward", "targetGroupArn": tg["arn"]}],
                 "conditions": [{"pathPattern": {"values": [path]}}]})
        doc.add("services", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", f"{svc}-from-alb",
                {"securityGroupId": sg["id"], "referencedSecurityGroupId": "sg-alb", "fromPort": 8080 + n,
                 "toPort": 8080 + n, "ipProtocol": "tcp"})
        for store, port in (("db", 5432), ("cache", 6379)):
            if store in stores:
                doc.add("services", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", f"{svc}-to-{store}",
                        {"securityGroupId": f"sg-{store}", "referencedSecurityGroupId": sg["id"], "fromPort": port,
                         "toPort": port, "ipProtocol": "tcp"})
        doc.add("services", "aws:ecs/service:Service", f"{svc}-service",
                {"name": svc, "desiredCount": 2, "loadBalancers": [{"targetGroupArn": tg["arn"], "containerPort": 8080 + n}],
                 "networkConfiguration": {"subnets": ["subnet-private"], "securityGroups": [sg["id"]]}})
    topic = doc.add("monitoring", "aws:sns/topic:Topic", "alerts", {"name": "alerts"}, arn=a("sns", "alerts"))
    for name in ("db-cpu", "orders-5xx"):
        doc.add("monitoring", "aws:cloudwatch/metricAlarm:MetricAlarm", name,
                {"alarmActions": [topic["arn"]], "okActions": [topic["arn"]]})
    return doc


def node(graph, doc, name):
    urn = next(r["urn"] for r in doc.resources if r["name"] == name and not r["type"].startswith("refarch:"))
    return graph.by_urn[urn]


@pytest.fixture
def graph(doc):
    return diagram.build(two_services(doc).json())


def test_alb_reaches_each_service_with_its_route(graph, doc):
    alb = node(graph, doc, "alb")
    for svc, route in (("orders-service", "/orders*"), ("search-service", "/search*")):
        assert graph.has_edge(alb, node(graph, doc, svc)), svc
        assert route in graph.nodes[node(graph, doc, svc)].label
    assert graph.edges[(alb, node(graph, doc, "orders-service"))].labels == [":8080"]  # SG rule and TG agree


def test_only_the_service_that_uses_the_database_reaches_it(graph, doc):
    db = node(graph, doc, "db")
    assert graph.has_edge(node(graph, doc, "orders-service"), db)
    assert not graph.has_edge(node(graph, doc, "search-service"), db)
    assert graph.edges[(node(graph, doc, "orders-service"), db)].labels == [":5432"]


def test_both_services_reach_the_cache(graph, doc):
    for svc in ("orders-service", "search-service"):
        assert graph.has_edge(node(graph, doc, svc), node(graph, doc, "cache"))


def test_internet_goes_through_the_waf_to_the_alb(graph, doc):
    waf, alb = node(graph, doc, "waf"), node(graph, doc, "alb")
    assert graph.has_edge("internet", waf) and graph.has_edge(waf, alb)
    assert not graph.has_edge("internet", alb)
    assert graph.edges[("internet", waf)].labels == [":80"]


def test_alarms_notify_the_topic(graph, doc):
    alarms = node(graph, doc, "db-cpu")
    assert node(graph, doc, "orders-5xx") == alarms  # one node for the alarms of one topic
    assert graph.has_edge(alarms, node(graph, doc, "alerts"))
    assert "×2" in graph.nodes[alarms].label


def test_resources_are_placed_in_their_subnet_tiers(graph, doc):
    tier = {t: node(graph, doc, f"network-{t}-0") for t in ("public", "private", "isolated")}
    assert graph.has_edge(node(graph, doc, "alb"), tier["public"])
    assert graph.has_edge(node(graph, doc, "orders-service"), tier["private"])
    assert graph.has_edge(node(graph, doc, "db"), tier["isolated"])  # through its DB subnet group
    assert graph.has_edge(node(graph, doc, "cache"), tier["isolated"])
    assert not graph.has_edge(node(graph, doc, "db"), tier["public"])


def test_mermaid_has_a_subgraph_per_layer_and_only_declared_ids(doc):
    text = diagram.mermaid(two_services(doc).json())
    assert text.startswith("flowchart LR\n")
    for layer in ("gateway", "services", "database", "cache", "monitoring", "network"):
        assert f'subgraph layer_{layer}["{layer}"]' in text
    declared = set(re.findall(r"^\s+([A-Za-z0-9_]+)[\[\(]", text, re.M))
    for src, dst in re.findall(r"^\s+(\S+) -\.?->(?:\|\"[^\"]*\"\|)? (\S+)$", text, re.M):
        assert src in declared and dst in declared, (src, dst)


def test_hostile_names_become_safe_ids_and_labels(doc):
    doc.add("services", "aws:ecs/service:Service", "end", {"name": 'say "hi" <b>', "desiredCount": 1})
    doc.add("services", "aws:ecs/service:Service", "a.b-c/d", {"name": "x", "desiredCount": 1})
    graph = diagram.build(doc.json())
    text = diagram.render(graph)
    assert all(ID.match(n) and n != "end" for n in graph.nodes)
    assert "#quot;hi#quot;" in text and 'say "hi"' not in text
    assert "#lt;b#gt;" in text and "<b>" not in text


# --- the shipped stacks ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graphs(synths):
    return {stack: (diagram.build(synth.to_json()), synth) for stack, synth in synths.items()}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_diagram_matches_its_config(graphs, stack):
    from ops import stackfile

    graph, synth = graphs[stack]
    config = stackfile.load(stack)
    by_name = {r["inputs"].get("name"): r for r in synth.of_type("aws:ecs/service:Service")}
    alb = graph.by_urn[synth.one("aws:lb/loadBalancer:LoadBalancer")["urn"]]
    db = graph.by_urn[synth.one("aws:rds/instance:Instance")["urn"]]
    cache = graph.by_urn[synth.one("aws:elasticache/replicationGroup:ReplicationGroup")["urn"]]
    for svc in config.services:
        service = next(r for name, r in by_name.items() if name and name.endswith(svc.name))
        node_id = graph.by_urn[service["urn"]]
        assert graph.has_edge(alb, node_id), svc.name
        assert all(route.path in graph.nodes[node_id].label for route in svc.routes)
        assert graph.has_edge(node_id, db) == svc.uses_database
        assert graph.has_edge(node_id, cache) == svc.uses_cache
    topic = graph.by_urn[synth.one("aws:sns/topic:Topic")["urn"]]
    alarm = graph.by_urn[synth.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")[0]["urn"]]
    assert graph.has_edge(alarm, topic)
    # The client reaches the edge's web ACL, which inspects for CloudFront; CloudFront reaches the internal
    # ALB through its VPC origin and the web client's bucket through OAC. Nothing reaches the ALB directly.
    waf = graph.by_urn[synth.one("aws:wafv2/webAcl:WebAcl")["urn"]]
    cdn = graph.by_urn[synth.one("aws:cloudfront/distribution:Distribution")["urn"]]
    bucket = graph.by_urn[synth.one("aws:s3/bucket:Bucket", "web-client-bucket")["urn"]]
    assert graph.has_edge("client", waf) and graph.has_edge(waf, cdn)
    assert graph.has_edge(cdn, alb) and graph.has_edge(cdn, bucket)
    assert not graph.has_edge("internet", alb) and not graph.has_edge("client", alb)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_diagram_shows_flags_and_who_checks_tokens(graphs, stack):
    graph, synth = graphs[stack]
    service = graph.by_urn[synth.one("aws:ecs/service:Service")["urn"]]
    flags = graph.by_urn[synth.one("aws:appconfig/configurationProfile:ConfigurationProfile")["urn"]]
    assert graph.edges[(flags, service)].labels == ["flags (agent)"]
    pools = synth.of_type("aws:cognito/userPool:UserPool")
    # Staging and prod writes need a token the service checks against the pool's keys; dev has no issuer.
    assert len(pools) == (0 if stack == "dev" else 1)
    for pool in pools:
        edge = graph.edges[(graph.by_urn[pool["urn"]], service)]
        assert edge.dotted and edge.labels == ["JWKS · writes need products/write"]
