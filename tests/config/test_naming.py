"""Every physical name comes from infra/config/naming.py and is checked before any resource exists."""

from __future__ import annotations

import copy

import pytest

from infra.config import ConfigError, naming, parse
from ops import stackfile

PROD = stackfile.read_values("prod")


def problems(stack: str, values: dict | None = None) -> list[str]:
    values = {"refarch:environment": "prod", **copy.deepcopy(values or PROD)}
    try:
        parse(values, stack, "F")
    except ConfigError as exc:
        return exc.lines
    return []


def test_the_shipped_stacks_give_valid_names():
    for stack in ("dev", "staging", "prod"):
        assert naming.stack_name_problems(stack, "us-east-1", [{"name": "products"}]) == []


def test_a_stack_name_too_long_for_the_load_balancer_is_refused_with_a_suggestion():
    stack = "production-eu-customer-a"
    assert problems(stack) == [
        f"F: stack name: stack {stack!r} gives an invalid name: load balancer name 'refarch-{stack}-alb' "
        "would be 36 characters, AWS allows 32 (try stack name 'production-eu-custom'; "
        "2 more names fail the same way)"]
    assert problems("production-eu-custom") == []
    assert problems("production-eu-custome")[0].startswith(
        "F: stack name: stack 'production-eu-custome' gives an invalid name: load balancer name "
        "'refarch-production-eu-custome-alb' would be 33 characters")


def test_a_stack_name_rds_cannot_take_is_refused():
    assert problems("prod_2") == [
        "F: stack name: stack 'prod_2' gives an invalid name: load balancer name 'refarch-prod_2-alb' "
        "is not valid: letters, digits and hyphens, not starting or ending with a hyphen "
        "(try stack name 'prod-2'; 7 more names fail the same way)"]
    # `--` is fine for the load balancer, not for RDS or ElastiCache.
    assert problems("prod--a") == [
        "F: stack name: stack 'prod--a' gives an invalid name: RDS instance identifier 'refarch-prod--a-db' is not "
        "valid: lowercase letters, digits and single hyphens, starting with a letter, not ending with a hyphen "
        "(try stack name 'prod-a'; 3 more names fail the same way)"]
    assert problems("Prod")[0].endswith("(try stack name 'prod'; 5 more names fail the same way)")


def test_the_access_log_bucket_is_checked_with_the_region():
    values = {**PROD, "aws:region": "ap-southeast-2"}
    assert problems("staging-ap-southeas", values) == [
        "F: stack name: stack 'staging-ap-southeas' gives an invalid name: access log bucket "
        "'refarch-staging-ap-southeas-alb-logs-000000000000-ap-southeast-2' would be 64 characters, "
        "AWS allows 63 (try stack name 'staging-ap-southea')"]


def test_a_long_service_name_is_the_service_s_fault():
    values = copy.deepcopy(PROD)
    values["refarch:services"][0]["name"] = "products-catalogue-searc"
    (line,) = problems("prod-eu-central", values)
    assert line == ("F: services: stack 'prod-eu-central' gives an invalid name: IAM role "
                    "'refarch-prod-eu-central-products-catalogue-searc-migrate-execution' would be 66 characters, "
                    "AWS allows 64 (use a shorter service name)")


def test_not_a_pulumi_stack_name():
    assert problems("prod/eu") == [
        "F: stack name 'prod/eu': Pulumi stack names are letters, digits, '-', '_' and '.' (try 'prod-eu')"]


@pytest.mark.parametrize("alternate", [False, True])
def test_target_group_names_fit_even_for_the_longest_stack(alternate):
    name = naming.target_group_name("refarch-" + "x" * 20, "a-very-long-service-name", 8080, alternate)
    assert len(name) == 32 and not name.startswith("-")
    assert name != naming.target_group_name("refarch-" + "x" * 20, "a-very-long-service-name", 8080, not alternate)


def test_synthesized_names_are_the_naming_module_s(prod):
    prefix = naming.name_prefix("prod")
    assert prod.one("aws:lb/loadBalancer:LoadBalancer")["inputs"]["name"] == naming.alb_name(prefix)
    assert prod.one("aws:rds/instance:Instance")["inputs"]["identifier"] == naming.db_identifier(prefix)
    group = prod.one("aws:elasticache/replicationGroup:ReplicationGroup")["inputs"]
    assert group["replicationGroupId"] == naming.cache_group_id(prefix)
    repos = {r["inputs"]["name"] for r in prod.of_type("aws:ecr/repository:Repository")}
    assert repos == {naming.ecr_repository(prefix, "products")}
    groups = {r["inputs"]["name"] for r in prod.of_type("aws:lb/targetGroup:TargetGroup")}
    assert groups == {naming.target_group_name(prefix, "products", 8080, alt) for alt in (False, True)}
