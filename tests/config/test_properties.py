"""Generated stack files, valid and near-valid, have exactly two outcomes.

Either a clean refusal (every line `<file>: <key path>: <problem>`, raised before the Pulumi
runtime exists, so nothing is registered) or a synth whose every derived name and value satisfies
AWS's rules. Anything else (a traceback, a synth with a name AWS would reject) fails the test.
"""

from __future__ import annotations

import copy
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config import ConfigError, parse
from ops import stackfile
from ops.synth import run

BASE = {stack: stackfile.read_values(stack) for stack in ("dev", "prod")}
LINE = re.compile(r"^F: (stack name|services|aws:[A-Za-z]+|refarch(:[a-z_]+)?([.\[][^:]*)?|[^:\s]+:[^:\s]+|[^:\s]+): \S")

SERVICE_NAMES = ["api", "web", "orders", "billing-worker", "x" * 24]

# One defect each, many at the edge of a rule (20 vs 21 characters of stack name, 128 vs 129 of path).
MUTATIONS = {
    "stack 21 chars": lambda s, v: ("a" * 21, v),
    "stack 20 chars": lambda s, v: ("a" * 20, v),
    "stack underscore": lambda s, v: ("prod_2", v),
    "stack upper": lambda s, v: ("Prod", v),
    "stack double hyphen": lambda s, v: ("qa--1", v),
    "region az": lambda s, v: (s, {**v, "aws:region": "us-east-1a"}),
    "region 2 azs": lambda s, v: (s, {**v, "aws:region": "us-west-1"}),
    "long region bucket": lambda s, v: ("staging-ap-southea", {**v, "aws:region": "ap-southeast-7"}),
    "az 6": lambda s, v: (s, {**v, "refarch:network": {**v["refarch:network"], "az_count": 6}}),
    "cidr /24": lambda s, v: (s, {**v, "refarch:network": {**v["refarch:network"], "cidr": "10.0.0.0/24"}}),
    "path 128": lambda s, v: (s, _route(v, {"path": "/" + "p" * 127})),
    "path 129": lambda s, v: (s, _route(v, {"path": "/" + "p" * 128})),
    "path no slash": lambda s, v: (s, _route(v, {"path": "api"})),
    "hostless shadow": lambda s, v: (s, _route(v, {"path": "/*"}, first=True)),
    "host ok": lambda s, v: (s, _route(v, {"path": "/zz*", "host": "a.example.com"})),
    "host bad": lambda s, v: (s, _route(v, {"path": "/zz*", "host": "localhost"})),
    "health no slash": lambda s, v: (s, _service(v, health_check={"path": "health"})),
    "service trailing hyphen": lambda s, v: (s, _service(v, name="api-")),
    "service 24 chars": lambda s, v: (s, _service(v, name="s" * 24)),
    "postgres 12": lambda s, v: (s, {**v, "refarch:database": {**v.get("refarch:database", {}), "engine_version": "12"}}),
    "redis 7.2": lambda s, v: (s, {**v, "refarch:cache": {**v.get("refarch:cache", {}), "engine": "redis",
                                                           "engine_version": "7.2"}}),
    "redis 7.1": lambda s, v: (s, {**v, "refarch:cache": {**v.get("refarch:cache", {}), "engine": "redis",
                                                           "engine_version": "7.1"}}),
    "db name reserved": lambda s, v: (s, {**v, "refarch:database": {**v.get("refarch:database", {}),
                                                                    "db_name": "template1"}}),
    "namespace typo": lambda s, v: (s, {**v, "refarh:monitoring": {}}),
    "namespace case": lambda s, v: (s, {**v, "Refarch:network": {}}),
    "aws typo": lambda s, v: (s, {**v, "aws:regin": "us-east-1"}),
}


def _service(values: dict, **fields) -> dict:
    services = copy.deepcopy(values["refarch:services"])
    services[0].update(fields)
    return {**values, "refarch:services": services}


def _route(values: dict, route: dict, first: bool = False) -> dict:
    services = copy.deepcopy(values["refarch:services"])
    target = services[0] if first else services[-1]
    target["routes"] = [route] + target["routes"] if first else [route]
    return {**values, "refarch:services": services}


@st.composite
def stack_files(draw):
    base = draw(st.sampled_from(sorted(BASE)))
    values = copy.deepcopy(BASE[base])
    values["refarch:environment"] = base
    stack = draw(st.sampled_from(["dev", "prod", "qa", "prod-eu", "feature-1234"]))
    values["aws:region"] = draw(st.sampled_from(["us-east-1", "eu-west-1", "us-west-2"]))
    values["refarch:network"] = {**values.get("refarch:network", {}), "az_count": draw(st.integers(2, 3)),
                                 "cidr": draw(st.sampled_from(["10.0.0.0/16", "10.20.0.0/23", "172.16.0.0/20"]))}
    names = draw(st.lists(st.sampled_from(SERVICE_NAMES), min_size=1, max_size=3, unique=True))
    values["refarch:services"] = [
        {**BASE[base]["refarch:services"][0], "name": name, "routes": [{"path": f"/{name}*"}],
         "port": draw(st.sampled_from([8080, 3000]))}
        for name in names]
    mutation = draw(st.one_of(st.none(), st.sampled_from(sorted(MUTATIONS))))
    if mutation:
        stack, values = MUTATIONS[mutation](stack, values)
    return stack, values


def check_synth(stack: str, synth) -> None:
    """Every derived name and value satisfies the rule AWS applies to it."""
    for r in synth.resources:
        inputs, typ = r["inputs"], r["type"]
        if typ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
            assert len(inputs["name"]) <= 32 and re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
                                                              inputs["name"]), inputs["name"]
        if typ == "aws:s3/bucket:Bucket" and isinstance(inputs.get("bucket"), str):
            assert len(inputs["bucket"]) <= 63 and inputs["bucket"] == inputs["bucket"].lower()
        if typ == "aws:rds/instance:Instance":
            assert re.fullmatch(r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]", inputs["identifier"])
            assert len(inputs["identifier"]) <= 63
        if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            ident = inputs["replicationGroupId"]
            assert len(ident) <= 40 and re.fullmatch(r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]", ident)
        if typ == "aws:iam/role:Role" and "name" in inputs:
            assert len(inputs["name"]) <= 64
        if typ == "aws:ecr/repository:Repository":
            assert re.fullmatch(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*", inputs["name"])
        if typ == "aws:ecs/taskDefinition:TaskDefinition":
            assert len(json.dumps(inputs["containerDefinitions"])) <= 65536
        if typ == "aws:lb/listenerRule:ListenerRule":
            conditions = inputs["conditions"]  # the test rule's are secret (its header token)
            for condition in conditions if isinstance(conditions, list) else []:
                for value in (condition.get("pathPattern") or {}).get("values", []):
                    assert value.startswith("/") and len(value) <= 128
        if typ == "aws:lb/targetGroup:TargetGroup":
            path = inputs["healthCheck"]["path"]
            assert path.startswith("/") and len(path) <= 1024
    rules = synth.of_type("aws:lb/listenerRule:ListenerRule")
    per_listener: dict[str, int] = {}
    for rule in rules:
        per_listener[rule["inputs"]["listenerArn"]] = per_listener.get(rule["inputs"]["listenerArn"], 0) + 1
    assert all(count <= 100 for count in per_listener.values())


# About 0.4 s a synth: 30 examples stay within ~15 s. No example database: nothing written to the tree.
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack_files())
def test_a_stack_file_is_refused_cleanly_or_synthesizes_valid_names(case):
    stack, values = case
    try:
        config = parse(values, stack, "F")
    except ConfigError as exc:
        assert exc.lines, "a refusal names at least one problem"
        for line in exc.lines:
            assert LINE.match(line), line
        return
    check_synth(stack, run(config, stack))
