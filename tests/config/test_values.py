"""Value rules of the schema: every value AWS would reject is refused, each with its exact message."""

from __future__ import annotations

import json

import pytest

from infra.config.services import CONTAINER_DEFINITIONS_MAX
from tests.config.stack_values import SRC, problems, service

# --- data tier --------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "ok"), [("12", False), ("13", True), ("17", True), ("18", False), ("16.4", True)])
def test_postgres_majors_rds_creates(version, ok):
    lines = problems(refarch__database={"engine_version": version})
    assert lines == ([] if ok else [f"{SRC}: refarch:database.engine_version: PostgreSQL {version.split('.')[0]} "
                                    "is not a major RDS creates: use one of 13, 14, 15, 16, 17"])


def test_parameter_group_family_follows_the_major(config_of, prod):
    assert config_of("prod", database={"engine_version": "15"}).database.parameter_group_family == "postgres15"
    assert prod.one("aws:rds/parameterGroup:ParameterGroup")["inputs"]["family"] == "postgres16"


def test_redis_oss_stops_at_7_1():
    assert problems(refarch__cache={"engine": "redis", "engine_version": "7.2"}) == [
        f"{SRC}: refarch:cache: Redis OSS 7.2 is not an ElastiCache engine version: use one of "
        "4.0, 5.0, 6.0, 6.2, 7.0, 7.1 (Redis OSS stops at 7.1: newer is engine valkey)"]
    assert problems(refarch__cache={"engine": "redis", "engine_version": "7.1"}) == []
    assert problems(refarch__cache={"engine": "valkey", "engine_version": "9.0"}) == [
        f"{SRC}: refarch:cache: Valkey 9.0 is not an ElastiCache engine version: use one of 7.2, 8.0, 8.1"]


def test_instance_and_node_classes_exist_for_the_engine():
    assert problems(refarch__database={"instance_class": "db.t4g.nano"}) == [
        f"{SRC}: refarch:database.instance_class: db.t4g.nano is not an RDS for PostgreSQL instance class "
        "(families: db.t3, db.t4g, db.m5, db.m6g, db.m6i, db.m7g, db.r5, db.r6g, db.r6i, db.r7g)"]
    assert problems(refarch__cache={"node_type": "cache.t4g.large"}) == [
        f"{SRC}: refarch:cache.node_type: cache.t4g.large is not an ElastiCache node type "
        "(families: cache.t3, cache.t4g, cache.m5, cache.m6g, cache.m7g, cache.r6g, cache.r7g)"]


def test_reserved_database_names_and_users():
    assert problems(refarch__database={"db_name": "template1"}) == [
        f"{SRC}: refarch:database.db_name: 'template1' is a database name PostgreSQL or RDS reserves: choose another"]
    assert problems(refarch__database={"username": "rdsadmin"}) == [
        f"{SRC}: refarch:database.username: 'rdsadmin' is a name PostgreSQL or RDS reserves for itself: "
        "choose another"]
    assert problems(refarch__database={"app_username": "pg_app"}) == [
        f"{SRC}: refarch:database.app_username: 'pg_app': role names starting with pg_ or rds_ are reserved "
        "by PostgreSQL and RDS"]
    assert problems(refarch__database={"username": "user"}) == [
        f"{SRC}: refarch:database.username: 'user' is a name PostgreSQL or RDS reserves for itself: choose another"]


# --- routes -----------------------------------------------------------------------------------

def test_path_pattern_length_and_characters():
    long = "/" + "a" * 128
    assert problems(refarch__services=[service(routes=[{"path": long}])]) == [
        f"{SRC}: refarch:services[0].routes[0].path: path {long!r} is 129 characters, "
        "an ALB path condition allows 128"]
    assert problems(refarch__services=[service(routes=[{"path": "/api v1*"}])]) == [
        f"{SRC}: refarch:services[0].routes[0].path: path '/api v1*' may hold only letters, digits and "
        "_-.$/~\"'@:+&*? (ALB path condition)"]


def test_host_pattern_rules():
    assert problems(refarch__services=[service(routes=[{"path": "/api*", "host": "api_example.com"}])]) == [
        f"{SRC}: refarch:services[0].routes[0].host: host 'api_example.com' may hold only letters, digits, "
        "'-', '.', '*' and '?' (ALB host condition)"]
    assert problems(refarch__services=[service(routes=[{"path": "/api*", "host": "localhost"}])]) == [
        f"{SRC}: refarch:services[0].routes[0].host: host 'localhost' needs a '.' and only letters after "
        "the last one (ALB host condition)"]


def test_a_hostless_route_shadows_a_host_route_on_the_same_path():
    assert problems("dev", refarch__services=[
        service(name="api", routes=[{"path": "/api*"}]),
        service(name="admin", routes=[{"path": "/api*", "host": "admin.example.com"}]),
    ]) == ["stacks/Pulumi.dev.yaml: refarch:services[1].routes[0]: admin.example.com/api* is shadowed by */api* "
           "of services[0].routes[0], matched first: the route never receives a request"]
    # The other way round both routes receive requests: the host's first, every other host's after.
    assert problems("dev", refarch__services=[
        service(name="admin", routes=[{"path": "/api*", "host": "admin.example.com"}]),
        service(name="api", routes=[{"path": "/api*"}]),
    ]) == []


def test_a_wildcard_host_shadows_the_hosts_it_matches():
    assert problems("dev", refarch__services=[
        service(name="api", routes=[{"path": "/*", "host": "*.example.com"}]),
        service(name="admin", routes=[{"path": "/*", "host": "admin.example.com"}]),
    ]) == ["stacks/Pulumi.dev.yaml: refarch:services[1].routes[0]: admin.example.com/* is shadowed by "
           "*.example.com/* of services[0].routes[0], matched first: the route never receives a request"]


def test_routes_per_service():
    routes = [{"path": f"/r{i}*"} for i in range(11)]
    assert problems("dev", refarch__services=[service(routes=routes)]) == [
        "stacks/Pulumi.dev.yaml: refarch:services[0].routes: 11 routes: at most 10 per service "
        "(listener rule priorities are spaced 10 apart)"]


def test_listener_rules_count_the_test_rules_too():
    services = [service(name=f"svc{i}", routes=[{"path": f"/s{i}/*"}]) for i in range(51)]
    assert problems(refarch__services=services) == [
        f"{SRC}: refarch:services: 102 listener rules (production and test rules included), "
        "an ALB listener holds 100"]
    assert problems(refarch__services=services[:50]) == []


@pytest.mark.parametrize("field", ["health_check", "smoke_path"])
def test_health_and_smoke_paths(field):
    bad = {"health_check": {"path": "health"}} if field == "health_check" else {"smoke_path": "health"}
    what = "health check path" if field == "health_check" else "smoke path"
    key = "health_check.path" if field == "health_check" else "smoke_path"
    assert problems(refarch__services=[service(**bad)]) == [
        f"{SRC}: refarch:services[0].{key}: {what} 'health' must start with '/'"]
    long = "/" + "h" * 1024
    bad = {"health_check": {"path": long}} if field == "health_check" else {"smoke_path": long}
    assert problems(refarch__services=[service(**bad)]) == [
        f"{SRC}: refarch:services[0].{key}: {what} is 1025 characters, at most 1024"]


def test_default_health_path_is_ready(prod):
    """C3: the target group checks /health/ready (database reachable), in every shipped stack."""
    groups = prod.of_type("aws:lb/targetGroup:TargetGroup")
    assert {g["inputs"]["healthCheck"]["path"] for g in groups} == {"/health/ready"}


# --- services ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["api-", "my--api"])
def test_service_names_follow_ecr_rules(name):
    assert problems(refarch__services=[service(name=name)]) == [
        f"{SRC}: refarch:services[0].name: {name!r}: a service name may not end with '-' or hold '--' "
        "(ECR repository rules)"]


def test_container_definitions_within_64_kib():
    environment = {f"SETTING_{i}": "x" * 1000 for i in range(60)}
    (line,) = problems(refarch__services=[service(environment=environment)])
    assert line.startswith(f"{SRC}: refarch:services[0]: its container definitions would be about ")
    assert line.endswith(f" bytes, ECS allows {CONTAINER_DEFINITIONS_MAX}: move large values out of `environment`")


def test_the_size_estimate_bounds_the_real_task_definitions(synths, config_of):
    for stack, synth in synths.items():
        estimate = {svc.name: svc.definition_bytes() for svc in config_of(stack).services}
        for task in synth.of_type("aws:ecs/taskDefinition:TaskDefinition"):
            real = len(json.dumps(task["inputs"]["containerDefinitions"]))
            family = task["inputs"]["family"]
            assert real <= estimate[family.removeprefix(f"refarch-{stack}-").removesuffix("-migrate")], family


def test_prod_runs_images_pinned_by_digest():
    assert problems(refarch__services=[service(build=None, image="nginx:1.27")]) == [
        f"{SRC}: refarch:services[0].image: prod runs images pinned by digest (repo@sha256:<64 hex>), "
        "got 'nginx:1.27'"]
    pinned = "public.ecr.aws/nginx/nginx@sha256:" + "a" * 64
    assert problems(refarch__services=[service(build=None, image=pinned)]) == []
    assert problems("dev", refarch__services=[service(build=None, image="nginx:1.27")]) == []


# --- network and gateway ----------------------------------------------------------------------

def test_nat_instance_type_exists_for_the_arm64_ami():
    assert problems("dev", refarch__network={"az_count": 2, "nat": "instance", "nat_instance_type": "t3.nano"}) == [
        "stacks/Pulumi.dev.yaml: refarch:network: nat_instance_type 't3.nano' is an x86 type: the NAT instance "
        "runs the Amazon Linux 2023 arm64 AMI, use a Graviton type such as t4g.nano "
        "(families: t4g, c6g, c7g, c6gn, m6g, m7g)"]
    assert problems("dev", refarch__network={"az_count": 2, "nat": "instance", "nat_instance_type": "c7g.nano"}) == [
        "stacks/Pulumi.dev.yaml: refarch:network: nat_instance_type 'c7g.nano' is not an EC2 instance type we "
        "know: the NAT instance runs the Amazon Linux 2023 arm64 AMI, use a Graviton type such as t4g.nano "
        "(families: t4g, c6g, c7g, c6gn, m6g, m7g)"]


def test_domain_and_hosted_zone_id():
    assert problems(refarch__gateway={"domain": "api..example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}) == [
        f"{SRC}: refarch:gateway.domain: 'api..example.com' is not a domain name (lowercase labels of letters, "
        "digits and '-', each <= 63 characters, <= 253 in all)"]
    assert problems(refarch__gateway={"domain": "api.example.com", "hosted_zone_id": "/hostedzone/Z123"}) == [
        f"{SRC}: refarch:gateway.hosted_zone_id: '/hostedzone/Z123' is not a Route 53 hosted zone id "
        "(Z followed by up to 31 uppercase letters and digits)"]
