"""Stack config validation: every rule has a failing case with its exact message."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from ops import stackfile
from tests.config.stack_values import SRC, problems, service


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_are_valid(stack):
    assert problems(stack) == []


def test_unknown_key_is_an_error_with_a_suggestion():
    assert problems(refarch__netwrk={}) == [f"{SRC}: refarch:netwrk: unknown key (did you mean 'network'?)"]
    nested = problems(refarch__database={"multi_az": True, "instance_clas": "db.t4g.micro"})
    assert nested == [f"{SRC}: refarch:database.instance_clas: unknown key (did you mean 'instance_class'?)"]


def test_wrong_type_names_the_field_and_the_value():
    assert problems(refarch__services=[service(desired_count="three", min_count=1, max_count=4)]) == [
        f"{SRC}: refarch:services[0].desired_count: Input should be a valid integer, "
        "unable to parse string as an integer (got 'three')"
    ]


def test_every_problem_is_listed_not_just_the_first():
    lines = problems(refarch__network={"cidr": "10.0.0.0/8", "nat": "sometimes"}, refarch__netwrk={})
    assert len(lines) == 3
    assert any("refarch:network.cidr" in line for line in lines)
    assert any("refarch:network.nat" in line for line in lines)


def test_fargate_cpu_memory_pairs():
    assert problems(refarch__services=[service(cpu=256, memory=4096)]) == [
        f"{SRC}: refarch:services[0]: Fargate does not accept cpu 256 with memory 4096: "
        "use memory 512..2048 in steps of 512"
    ]
    assert problems(refarch__services=[service(cpu=300, memory=1024)]) == [
        f"{SRC}: refarch:services[0]: cpu 300 is not a Fargate size: "
        "use one of [256, 512, 1024, 2048, 4096, 8192, 16384]"
    ]
    assert problems(refarch__services=[service(cpu=1024, memory=5120)]) == []


def test_service_names_are_unique():
    lines = problems(refarch__services=[service(), service(routes=[{"path": "/other*"}])])
    assert lines == [f"{SRC}: refarch:services[1].name: 'api' is already used by services[0]"]


def test_routes_must_not_overlap():
    lines = problems(refarch__services=[
        service(name="api", routes=[{"path": "/api*"}]),
        service(name="orders", routes=[{"path": "/api/orders*"}]),
    ])
    assert lines == [f"{SRC}: refarch:services[1].routes[0]: */api/orders* overlaps */api* of services[0].routes[0]"]
    # Different hosts never overlap.
    assert problems(refarch__services=[
        service(name="api", routes=[{"path": "/*", "host": "a.example.com"}]),
        service(name="web", routes=[{"path": "/*", "host": "b.example.com"}]),
    ]) == []


def test_cidr_must_be_valid_private_and_leave_room_for_the_subnets():
    (bad,) = problems(refarch__network={"cidr": "10.0.0.0/33"})
    assert bad.startswith(f"{SRC}: refarch:network.cidr: '10.0.0.0/33' is not a valid IPv4 CIDR")
    assert problems(refarch__network={"cidr": "10.0.0.0/26"}) == [
        f"{SRC}: refarch:network.cidr: 10.0.0.0/26 leaves no room for 3 subnet tiers x 5 AZs of at least "
        "/27 (what an ALB needs): use a prefix between /16 and /23"
    ]
    # A /24 gives /28 subnets: too small for an ALB.
    assert problems(refarch__network={"cidr": "10.0.0.0/24"})[0].endswith("use a prefix between /16 and /23")
    assert problems(refarch__network={"cidr": "10.0.0.0/23"}) == []
    assert problems(refarch__network={"cidr": "8.8.0.0/16"}) == [
        f"{SRC}: refarch:network.cidr: 8.8.0.0/16 is not a private (RFC 1918) range"
    ]


def test_alb_needs_two_azs():
    assert problems(refarch__network={"az_count": 1}) == [
        f"{SRC}: refarch:network.az_count: Input should be greater than or equal to 2 (got 1)"
    ]


def test_prod_invariants():
    lines = problems(
        refarch__gateway={},
        refarch__database={"multi_az": False, "deletion_protection": False},
        refarch__cache={"replicas": 0},
        refarch__network={"az_count": 2, "nat": "single"},
        refarch__delivery={"protected": False},
    )
    assert lines == [
        f"{SRC}: refarch:gateway: prod needs TLS: set certificate_arn or domain",
        f"{SRC}: refarch:database.multi_az: prod needs a multi-AZ database",
        f"{SRC}: refarch:database.deletion_protection: prod needs deletion protection",
        f"{SRC}: refarch:cache.replicas: prod needs >= 1 replica for automatic failover",
        f"{SRC}: refarch:network.nat: prod needs per-az NAT gateways (no single point of egress)",
        f"{SRC}: refarch:delivery.protected: prod must be protected",
    ]
    # The same settings are a legitimate choice in dev.
    assert problems("dev", refarch__database={"multi_az": False, "deletion_protection": False}) == []


def test_counts_must_be_ordered():
    assert problems(refarch__services=[service(min_count=3, desired_count=2, max_count=4)]) == [
        f"{SRC}: refarch:services[0]: counts must satisfy min_count <= desired_count <= max_count (got 3 <= 2 <= 4)"
    ]


def test_image_xor_build():
    assert problems(refarch__services=[service(image="nginx:1.27")]) == [
        f"{SRC}: refarch:services[0]: set exactly one of `image` (run as is) or `build` (context to build)"
    ]


def test_secrets_never_in_plain_environment():
    assert problems(refarch__services=[service(environment={"DB_PASSWORD": "hunter2"})]) == [
        f"{SRC}: refarch:services[0].environment: 'DB_PASSWORD' looks like a secret: "
        "move it to `secrets` (a Secrets Manager reference)"
    ]
    assert problems(refarch__services=[service(secrets={"API_KEY": "hunter2"})]) == [
        f"{SRC}: refarch:services[0].secrets: API_KEY: 'hunter2' is not a Secrets Manager secret ARN"
    ]


def test_platform_variables_are_reserved():
    assert problems(refarch__services=[service(environment={"DATABASE_HOST": "x"})]) == [
        f"{SRC}: refarch:services[0].environment: 'DATABASE_HOST' is reserved: "
        "the platform injects DATABASE_*, CACHE_*, OTEL_*, AWS_*, ECS_*"
    ]


def test_writable_root_needs_a_reason():
    assert problems(refarch__services=[service(read_only_root_filesystem=False)]) == [
        f"{SRC}: refarch:services[0]: read_only_root_filesystem: false needs writable_root_reason"
    ]


def test_health_check_timeout_below_interval():
    assert problems(refarch__services=[service(health_check={"interval": 5, "timeout": 5})]) == [
        f"{SRC}: refarch:services[0].health_check: timeout (5s) must be shorter than interval (5s)"
    ]


def test_log_retention_must_be_a_cloudwatch_period():
    lines = problems(refarch__monitoring={"log_retention_days": 10})
    assert len(lines) == 1 and lines[0].startswith(
        f"{SRC}: refarch:monitoring.log_retention_days: 10 is not a CloudWatch Logs retention period")


def test_images_must_be_pinned_by_digest_and_name_a_service():
    digest = "sha256:" + "a" * 64
    assert problems(refarch__images={"products": "repo:latest", "ghost": f"repo@{digest}"}) == [
        f"{SRC}: refarch:images.products: 'repo:latest' is not pinned by digest (repo@sha256:<64 hex>)",
        f"{SRC}: refarch:images.ghost: no service named 'ghost'",
    ]
    assert problems(refarch__images={"products": f"repo@{digest}"}) == []


def test_environment_comes_from_the_stack_name_or_must_be_given(tmp_path):
    path = tmp_path / "Pulumi.feature-x.yaml"
    path.write_text("config:\n  aws:region: us-east-1\n  refarch:services:\n    - name: api\n      build: .\n")
    with pytest.raises(ConfigError) as err:
        stackfile.load("feature-x", path)
    assert err.value.lines == [f"{path}: refarch:environment: required key is missing"]


def test_invalid_yaml_and_missing_stack_are_clear(tmp_path):
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text("config:\n  refarch:services: [\n")
    with pytest.raises(ConfigError) as err:
        stackfile.load("bad", path)
    assert err.value.lines[0].startswith(f"{path}: not valid YAML at line")
    with pytest.raises(ConfigError) as err:
        stackfile.load("nope")
    assert err.value.lines == ["stacks/Pulumi.nope.yaml: no such stack file (known stacks: dev, local, prod, staging)"]
