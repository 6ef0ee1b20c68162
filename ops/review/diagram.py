"""Architecture diagram (Mermaid `flowchart LR`) drawn from the synth output, never by hand.

Nodes are the resources a reviewer reasons about (the client, CloudFront and its web ACL, the web
client's bucket, ALB, each service, the token issuer, the flag profile, the event stream, database,
cache, alert topic, NAT, subnet tiers); every edge comes from a reference between resources in the
synth JSON:
security group rules (who may connect to whom, on which port), listener rules and target groups
(which routes reach which service), subnet ids (which tier a resource runs in), alarm actions
(which alarms notify which topic) and log configuration (which log group a service writes to).
Ids and ARNs in inputs are mapped back to resources through the `id`/`arn` fields.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from ops.review import Index, SynthJson, layers
from ops.review.diagram_graph import Graph, label_lines, render

ANYWHERE = ("0.0.0.0/0", "::/0")
TIERS = ("public", "private", "isolated")


def build(document: SynthJson) -> Graph:
    index = Index(document)
    layer_of = layers(document)
    graph = Graph()
    internet = graph.add_node("internet", "Internet", "internet", "circle")

    tiers = _subnet_tiers(index, graph, layer_of)
    owners: dict[str, str] = {}  # security group id -> node id

    def place(node: str, subnet_ids: list[Any]) -> None:
        for tier in sorted({tiers[s][0] for s in subnet_ids if s in tiers}, key=TIERS.index):
            graph.connect(node, next(t[1] for t in tiers.values() if t[0] == tier), dotted=True)

    def own(node: str, security_groups: list[Any] | None) -> None:
        for sg in security_groups or []:
            if isinstance(sg, str):
                owners[sg] = node

    # gateway: load balancers and the web ACLs associated with them
    for lb in index.of_type("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"):
        inputs = lb["inputs"]
        listeners = sorted(f"{li['inputs'].get('protocol', '')} :{li['inputs'].get('port', '')}"
                           for li in index.of_type("aws:lb/listener:Listener")
                           if li["inputs"].get("loadBalancerArn") == lb.get("arn"))
        label = label_lines(f"ALB {inputs.get('name', lb['name'])}", " · ".join(listeners))
        node = graph.add_node(f"alb_{lb['name']}", label, layer_of[lb["urn"]], urns=(lb["urn"],))
        own(node, inputs.get("securityGroups"))
        subnets = inputs.get("subnets") or [m.get("subnetId") for m in inputs.get("subnetMappings") or []]
        place(node, subnets)
    for acl in index.of_type("aws:wafv2/webAcl:WebAcl"):
        rules = acl["inputs"].get("rules") or []
        graph.add_node(f"waf_{acl['name']}", label_lines(f"WAF {acl['inputs'].get('name', acl['name'])}",
                                                     f"{len(rules)} rules"), layer_of[acl["urn"]], urns=(acl["urn"],))

    # services, with the routes their listener rules send them
    routes = _routes(index)
    for svc in index.of_type("aws:ecs/service:Service"):
        inputs = svc["inputs"]
        network = inputs.get("networkConfiguration") or {}
        groups = [lb.get("targetGroupArn") for lb in inputs.get("loadBalancers") or []]
        paths = sorted({p for tg in groups for p in routes.get(tg, ())})
        label = label_lines(inputs.get("name", svc["name"]), ", ".join(paths),
                       f"Fargate ×{inputs.get('desiredCount') or 0}")
        node = graph.add_node(f"svc_{svc['name']}", label, layer_of[svc["urn"]], "round", urns=(svc["urn"],))
        own(node, network.get("securityGroups"))
        place(node, network.get("subnets") or [])

    # data stores, placed through their subnet groups
    subnet_groups = _subnet_groups(index)
    for db in index.of_type("aws:rds/instance:Instance"):
        inputs = db["inputs"]
        label = label_lines(f"RDS {inputs.get('engine', '')} {inputs.get('engineVersion', '')}".strip(),
                       f"{inputs.get('instanceClass', '')}{' · multi-AZ' if inputs.get('multiAz') else ''}")
        node = graph.add_node(f"db_{db['name']}", label, layer_of[db["urn"]], "cylinder", urns=(db["urn"],))
        own(node, inputs.get("vpcSecurityGroupIds"))
        place(node, subnet_groups.get(("rds", inputs.get("dbSubnetGroupName")), []))
    for rg in index.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
        inputs = rg["inputs"]
        nodes = inputs.get("numCacheClusters") or 1
        label = label_lines(f"ElastiCache {inputs.get('engine', 'redis')} {inputs.get('engineVersion', '')}".strip(),
                       f"{inputs.get('nodeType', '')} ×{nodes}")
        node = graph.add_node(f"cache_{rg['name']}", label, layer_of[rg["urn"]], "cylinder", urns=(rg["urn"],))
        own(node, inputs.get("securityGroupIds"))
        place(node, subnet_groups.get(("elasticache", inputs.get("subnetGroupName")), []))

    _nat(index, graph, layer_of, own, place, internet)

    # who may connect to whom: security group rules between groups the nodes above own
    for src_sg, dst_sg, port, cidr in _ingress_rules(index):
        dst = owners.get(dst_sg)
        if cidr in ANYWHERE and dst is not None and graph.nodes[dst].layer != "network":
            graph.connect(internet, dst, port)
        elif src_sg is not None:
            graph.connect(owners.get(src_sg), dst, port)

    # WAF in front: the association names the ALB the ACL inspects
    for assoc in index.of_type("aws:wafv2/webAclAssociation:WebAclAssociation"):
        acl_res = index.get(assoc["inputs"].get("webAclArn"))
        lb_res = index.get(assoc["inputs"].get("resourceArn"))
        if acl_res and lb_res:
            waf, alb = graph.by_urn.get(acl_res["urn"]), graph.by_urn.get(lb_res["urn"])
            if waf and alb and (internet, alb) in graph.edges:
                graph.edges[(internet, waf)] = graph.edges.pop((internet, alb))
                graph.edges[(internet, waf)].dst = waf
            graph.connect(waf, alb, "inspects")

    _edge(index, graph, layer_of)

    # traffic the ALB forwards: listener rule -> target group <- service
    for tg_arn, (alb_arn, _paths) in _forwarding(index).items():
        balancer = index.get(alb_arn)
        for svc in index.of_type("aws:ecs/service:Service"):
            if tg_arn in [x.get("targetGroupArn") for x in svc["inputs"].get("loadBalancers") or []]:
                tg = index.get(tg_arn)
                port = f":{tg['inputs'].get('port')}" if tg else ""
                graph.connect(graph.by_urn.get(balancer["urn"]) if balancer else None, graph.by_urn.get(svc["urn"]), port)

    _monitoring(index, graph, layer_of)
    _analytics(index, graph, layer_of)
    _auth(index, graph, layer_of)
    _flags(index, graph, layer_of)
    return graph


def _containers(index: Index, service: dict) -> list[dict]:
    task = index.get(service["inputs"].get("taskDefinition"))
    raw = (task or {}).get("inputs", {}).get("containerDefinitions")
    return json.loads(raw) if isinstance(raw, str) else []


def _auth(index: Index, graph: Graph, layer_of: dict[str, str]) -> None:
    """Token issuer -> what checks its tokens: a service (AUTH_ISSUER) or the ALB (a jwt-validation rule)."""
    issuers: dict[str, str] = {}
    for pool in index.of_type("aws:cognito/userPool:UserPool"):
        issuers[f"/{pool['id']}"] = graph.add_node(f"idp_{pool['name']}", label_lines("Cognito M2M issuer", "RS256 tokens"),
                                                   layer_of[pool["urn"]], "round", urns=(pool["urn"],))

    def issuer_node(issuer: object) -> str | None:
        return next((node for suffix, node in issuers.items() if str(issuer).endswith(suffix)), None)

    for svc in index.of_type("aws:ecs/service:Service"):
        for container in _containers(index, svc):
            env = {e.get("name"): e.get("value") for e in container.get("environment") or []}
            if env.get("AUTH_ISSUER") and env.get("AUTH_WRITE_SCOPES") is not None:
                graph.connect(issuer_node(env["AUTH_ISSUER"]), graph.by_urn.get(svc["urn"]),
                              f"JWKS · writes need {env['AUTH_WRITE_SCOPES']}", dotted=True)
    for rule in index.of_type("aws:lb/listenerRule:ListenerRule"):
        for action in rule["inputs"].get("actions") or []:
            if action.get("type") == "jwt-validation":
                listener = index.get(rule["inputs"].get("listenerArn"))
                balancer = index.get((listener or {}).get("inputs", {}).get("loadBalancerArn"))
                graph.connect(issuer_node((action.get("jwtValidation") or {}).get("issuer")),
                              graph.by_urn.get(balancer["urn"]) if balancer else None, "JWKS", dotted=True)


def _flags(index: Index, graph: Graph, layer_of: dict[str, str]) -> None:
    """AppConfig's feature-flag profile -> every service whose task runs the agent beside it."""
    profiles = list(index.of_type("aws:appconfig/configurationProfile:ConfigurationProfile"))
    if not profiles:
        return
    profile = profiles[0]
    node = graph.add_node(f"flags_{profile['name']}", label_lines("AppConfig feature flags",
                                                                 "rolled back on health alarms"),
                          layer_of[profile["urn"]], "round", urns=(profile["urn"],))
    for svc in index.of_type("aws:ecs/service:Service"):
        if any(c.get("name") == "appconfig-agent" for c in _containers(index, svc)):
            graph.connect(node, graph.by_urn.get(svc["urn"]), "flags (agent)")


def _analytics(index: Index, graph: Graph, layer_of: dict[str, str]) -> None:
    """Service -> Firehose (the task's ANALYTICS_STREAM) -> the bucket it writes Parquet to."""
    streams: dict[str, str] = {}
    for stream in index.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"):
        name = stream["inputs"].get("name", stream["name"])
        node = graph.add_node(f"fh_{stream['name']}", label_lines(f"Firehose {name}", "JSON → Parquet"),
                              layer_of[stream["urn"]], "round", urns=(stream["urn"],))
        streams[name] = node
        bucket = index.get((stream["inputs"].get("extendedS3Configuration") or {}).get("bucketArn"))
        if bucket:
            target = graph.by_urn.get(bucket["urn"]) or graph.add_node(
                f"s3_{bucket['name']}", label_lines("S3 events", "Glue table · Athena"), layer_of[bucket["urn"]],
                "cylinder", urns=(bucket["urn"],))
            graph.connect(node, target, "Parquet")
    for svc in index.of_type("aws:ecs/service:Service"):
        for container in _containers(index, svc):
            for env in container.get("environment") or []:
                if env.get("name") == "ANALYTICS_STREAM" and env.get("value") in streams:
                    graph.connect(graph.by_urn.get(svc["urn"]), streams[env["value"]], "events")


def _subnet_tiers(index: Index, graph: Graph, layer_of: dict[str, str]) -> dict[str, tuple[str, str]]:
    """subnet id -> (tier, tier node id); one node per tier with its AZ count."""
    found: dict[str, list[dict]] = defaultdict(list)
    for subnet in index.of_type("aws:ec2/subnet:Subnet"):
        tags = subnet["inputs"].get("tags") or {}
        text = f"{tags.get('tier', '')} {subnet['name']} {tags.get('Name', '')}"
        tier = next((t for t in TIERS if re.search(rf"\b{t}\b", text.replace("-", " ").replace("_", " "))), "other")
        found[tier].append(subnet)
    result = {}
    for tier, subnets in sorted(found.items(), key=lambda kv: TIERS.index(kv[0]) if kv[0] in TIERS else 9):
        cidrs = ", ".join(s["inputs"].get("cidrBlock", "") for s in subnets)
        node = graph.add_node(f"net_{tier}", label_lines(f"{tier} subnets ×{len(subnets)}", cidrs),
                              layer_of[subnets[0]["urn"]], urns=tuple(s["urn"] for s in subnets))
        for s in subnets:
            result[s["id"]] = (tier, node)
    return result


def _subnet_groups(index: Index) -> dict[tuple[str, Any], list[Any]]:
    groups: dict[tuple[str, Any], list[Any]] = {}
    for kind, token in (("rds", "aws:rds/subnetGroup:SubnetGroup"), ("elasticache", "aws:elasticache/subnetGroup:SubnetGroup")):
        for group in index.of_type(token):
            for ref in (group["inputs"].get("name"), group.get("id")):
                if ref:
                    groups[(kind, ref)] = group["inputs"].get("subnetIds") or []
    return groups


def _routes(index: Index) -> dict[str, list[str]]:
    """target group ARN -> the route conditions (host + path) of the listener rules forwarding to it."""
    return {tg: paths for tg, (_, paths) in _forwarding(index).items()}


def _forwarding(index: Index) -> dict[str, tuple[str | None, list[str]]]:
    """target group ARN -> (load balancer ARN, route conditions) from listener rules and listeners."""
    result: dict[str, tuple[str | None, list[str]]] = {}
    listeners = {li.get("arn"): li["inputs"].get("loadBalancerArn") for li in index.of_type("aws:lb/listener:Listener")}
    for rule in index.of_type("aws:lb/listenerRule:ListenerRule"):
        inputs = rule["inputs"]
        hosts: list[str] = []
        paths: list[str] = []
        # A rule with a secret condition (a test route's header) is redacted whole: nothing to read.
        for condition in inputs.get("conditions") if isinstance(inputs.get("conditions"), list) else []:
            hosts += (condition.get("hostHeader") or {}).get("values") or []
            paths += (condition.get("pathPattern") or {}).get("values") or []
        routes = [f"{h}{p}" for h in hosts or [""] for p in paths or ["/*"]]
        for action in inputs.get("actions") or []:
            targets = [action.get("targetGroupArn")]
            targets += [t.get("arn") for t in (action.get("forward") or {}).get("targetGroups") or []]
            for tg in filter(None, targets):
                lb, known = result.get(tg, (listeners.get(inputs.get("listenerArn")), []))
                result[tg] = (lb, known + [r for r in routes if r not in known])
    return result


def _edge(index: Index, graph: Graph, layer_of: dict[str, str]) -> None:
    """Client -> (web ACL) -> CloudFront -> VPC origin -> ALB, and CloudFront -> the client bucket."""
    distributions = list(index.of_type("aws:cloudfront/distribution:Distribution"))
    if not distributions:
        return
    client = graph.add_node("client", "Client (web / mobile)", "internet", "circle")
    origins = {o.get("id"): o for o in index.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")}
    buckets = {b["inputs"].get("bucket"): b for b in index.of_type("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")}
    for dist in distributions:
        inputs = dist["inputs"]
        behaviours = inputs.get("orderedCacheBehaviors") or []
        name = ", ".join(inputs.get("aliases") or []) or "*.cloudfront.net"
        node = graph.add_node(f"cdn_{dist['name']}", label_lines(f"CloudFront {name}", f"{inputs.get('httpVersion', '')} · "
                                                              f"{len(behaviours)} API behaviour(s)"),
                              layer_of[dist["urn"]], urns=(dist["urn"],))
        acl = index.get(inputs.get("webAclId"))
        waf = graph.by_urn.get(acl["urn"]) if acl else None
        if waf:
            graph.connect(client, waf, "HTTPS")
            graph.connect(waf, node, "inspects")
        else:
            graph.connect(client, node, "HTTPS")
        cached = sorted(b.get("pathPattern", "") for b in behaviours if b.get("cachePolicyId") and
                        index.get(b.get("cachePolicyId")))
        for origin in inputs.get("origins") or []:
            vpc = (origin.get("vpcOriginConfig") or {}).get("vpcOriginId")
            if vpc in origins:
                config = origins[vpc]["inputs"].get("vpcOriginEndpointConfig") or {}
                lb = index.get(config.get("arn"))
                protocol = "HTTPS" if config.get("originProtocolPolicy") == "https-only" else "HTTP"
                label = f"VPC origin {protocol}" + (f" · cached {', '.join(cached)}" if cached else "")
                graph.connect(node, graph.by_urn.get(lb["urn"]) if lb else None, label)
            elif origin.get("originAccessControlId"):
                bucket = next((b for n, b in buckets.items() if n and str(origin.get("domainName", "")).startswith(f"{n}.")),
                              None)
                if bucket:
                    target = graph.add_node(f"web_{bucket['name']}", label_lines("S3 web client", "private · OAC"),
                                            layer_of[bucket["urn"]], "cylinder", urns=(bucket["urn"],))
                    graph.connect(node, target, "/ (OAC)")


def _ingress_rules(index: Index) -> list[tuple[str | None, str, str, str | None]]:
    """(source SG, destination SG, port label, source CIDR) of every ingress rule, in all three forms."""
    rules = []

    def port(frm: Any, to: Any, protocol: Any) -> str:
        if str(protocol) == "-1":
            return "all traffic"
        return f":{frm}" if frm == to else f":{frm}-{to}"

    for rule in index.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        i = rule["inputs"]
        rules.append((i.get("referencedSecurityGroupId"), i.get("securityGroupId"),
                      port(i.get("fromPort"), i.get("toPort"), i.get("ipProtocol")), i.get("cidrIpv4") or i.get("cidrIpv6")))
    for rule in index.of_type("aws:ec2/securityGroupRule:SecurityGroupRule"):
        i = rule["inputs"]
        if i.get("type") == "ingress":
            cidrs = (i.get("cidrBlocks") or []) + (i.get("ipv6CidrBlocks") or [])
            for cidr in cidrs or [None]:
                rules.append((i.get("sourceSecurityGroupId"), i.get("securityGroupId"),
                              port(i.get("fromPort"), i.get("toPort"), i.get("protocol")), cidr))
    for sg in index.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for i in sg["inputs"].get("ingresses") or []:
            sources = [(g, None) for g in i.get("securityGroups") or []]
            sources += [(None, c) for c in (i.get("cidrBlocks") or []) + (i.get("ipv6CidrBlocks") or [])]
            for src, cidr in sources:
                rules.append((src, sg.get("id"), port(i.get("fromPort"), i.get("toPort"), i.get("protocol")), cidr))
    return rules


def _nat(index: Index, graph: Graph, layer_of: dict[str, str], own, place, internet: str) -> None:
    """NAT gateways and instances in their public subnet; private tiers routed through them."""
    eips = {r["inputs"].get("instance"): r for r in index.of_type("aws:ec2/eip:Eip") if r["inputs"].get("instance")}
    for nat in index.of_type("aws:ec2/natGateway:NatGateway"):
        node = graph.add_node(f"nat_{nat['name']}", "NAT gateway", layer_of[nat["urn"]], urns=(nat["urn"],))
        place(node, [nat["inputs"].get("subnetId")])
        if nat["inputs"].get("connectivityType", "public") == "public":
            graph.connect(node, internet, "egress")
    for instance in index.of_type("aws:ec2/instance:Instance"):
        if instance["inputs"].get("sourceDestCheck") is not False:
            continue  # only instances that forward traffic are NAT instances
        node = graph.add_node(f"nat_{instance['name']}", label_lines("NAT instance", instance["inputs"].get("instanceType", "")),
                              layer_of[instance["urn"]], urns=(instance["urn"],))
        own(node, instance["inputs"].get("vpcSecurityGroupIds"))
        place(node, [instance["inputs"].get("subnetId")])
        if instance["inputs"].get("associatePublicIpAddress") or instance.get("id") in eips:
            graph.connect(node, internet, "egress")
    # Which tier's default route goes through which NAT: route -> route table <- association -> subnet.
    tables: dict[str, set[str]] = defaultdict(set)
    for assoc in index.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        subnet = index.get(assoc["inputs"].get("subnetId"))
        if subnet:
            tables[assoc["inputs"].get("routeTableId")].add(subnet["urn"])
    for route in index.of_type("aws:ec2/route:Route"):
        target = index.get(route["inputs"].get("natGatewayId")) or index.get(route["inputs"].get("instanceId"))
        if target is None or target["urn"] not in graph.by_urn:
            continue  # a route to a network interface id cannot be mapped back to its instance offline
        for subnet_urn in tables.get(route["inputs"].get("routeTableId"), ()):
            graph.connect(graph.by_urn.get(subnet_urn), graph.by_urn[target["urn"]], "default route")


def _monitoring(index: Index, graph: Graph, layer_of: dict[str, str]) -> None:
    topics = {t.get("arn"): t for t in index.of_type("aws:sns/topic:Topic")}
    for topic in topics.values():
        graph.add_node(f"topic_{topic['name']}", label_lines("SNS alert topic", topic["inputs"].get("name", topic["name"])),
                       layer_of[topic["urn"]], urns=(topic["urn"],))
    # One node per topic for the alarms that notify it: dozens of alarm boxes would hide the shape.
    notifying: dict[str, list[dict]] = defaultdict(list)
    silent = []
    for alarm in index.of_type("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm"):
        actions = set(alarm["inputs"].get("alarmActions") or []) | set(alarm["inputs"].get("okActions") or [])
        targets = [a for a in actions if a in topics]
        for arn in targets:
            notifying[arn].append(alarm)
        if not targets:
            silent.append(alarm)
    for arn, alarms in notifying.items():
        node = graph.add_node(f"alarms_{topics[arn]['name']}", f"CloudWatch alarms ×{len(alarms)}",
                              layer_of[alarms[0]["urn"]], urns=tuple(a["urn"] for a in alarms))
        graph.connect(node, graph.by_urn[topics[arn]["urn"]], "alarm / ok actions")
    if silent:
        graph.add_node("alarms_without_actions", f"alarms without actions ×{len(silent)}",
                       layer_of[silent[0]["urn"]], urns=tuple(a["urn"] for a in silent))
    subscriptions: dict[str, list[str]] = defaultdict(list)
    for sub in index.of_type("aws:sns/topicSubscription:TopicSubscription"):
        subscriptions[sub["inputs"].get("topic")].append(str(sub["inputs"].get("protocol", "")))
    for arn, protocols in subscriptions.items():
        if arn in topics:
            node = graph.add_node(f"subscribers_{topics[arn]['name']}",
                                  ", ".join(f"{p} ×{protocols.count(p)}" for p in sorted(set(protocols))),
                                  layer_of[topics[arn]["urn"]], "round")
            graph.connect(graph.by_urn[topics[arn]["urn"]], node, "notifies")
    for board in index.of_type("aws:cloudwatch/dashboard:Dashboard"):
        graph.add_node(f"dashboard_{board['name']}", label_lines("dashboard", board["inputs"].get("dashboardName", "")),
                       layer_of[board["urn"]], urns=(board["urn"],))
    # Services write to the log groups their task definitions name.
    groups = {g["inputs"].get("name"): g for g in index.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for svc in index.of_type("aws:ecs/service:Service"):
        task = index.get(svc["inputs"].get("taskDefinition"))
        for name in _log_groups_of(task):
            group = groups.get(name)
            if group is None:
                continue
            log_node = graph.by_urn.get(group["urn"]) or graph.add_node(
                f"logs_{group['name']}", label_lines("log group", name), layer_of[group["urn"]], urns=(group["urn"],))
            graph.connect(graph.by_urn.get(svc["urn"]), log_node, "logs", dotted=True)


def _log_groups_of(task: dict | None) -> list[str]:
    if not task:
        return []
    try:
        containers = json.loads(task["inputs"].get("containerDefinitions") or "[]")
    except (TypeError, ValueError):
        return []
    names = [((c.get("logConfiguration") or {}).get("options") or {}).get("awslogs-group") for c in containers]
    return sorted({n for n in names if n})


def mermaid(document: SynthJson) -> str:
    return render(build(document))


def command(stack: str, synth_file: str | None = None, out: str | None = None) -> str:
    """`invoke diagram`: the Mermaid source on stdout, or in --out (a .md file gets a fenced block)."""
    from ops.console import err
    from ops.console import out as stdout
    from ops.review import load_synth

    text = mermaid(load_synth(stack, synth_file))
    if out:
        body = f"```mermaid\n{text}```\n" if out.endswith(".md") else text
        from ops.console import write_output

        write_output(out, body)
        err.print(f"wrote {out}")
    else:
        stdout.print(text, end="", markup=False)
    return text
