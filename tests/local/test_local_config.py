"""`refarch:target` and `refarch:local`: validated like every other key, before any resource exists."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse
from ops import stackfile
from tests.local.conftest import local_values, parse_local

SOURCE = "stacks/Pulumi.local.yaml"


def refusal(**changes) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_local(**changes)
    return err.value.lines


def test_the_shipped_local_stack_targets_the_engine_with_devs_versions():
    config = stackfile.load("local")
    assert config.target == "local"
    assert config.local_target.image("database", major=config.database.major_version) == "postgres:16-bookworm"
    assert config.local_target.image("cache", version=config.cache.engine_version) == "valkey/valkey:8.0-bookworm"


def test_an_unknown_target_is_refused():
    assert any("refarch:target" in line and "'aws' or 'local'" in line for line in refusal(refarch__target="docker"))


def test_a_local_section_on_an_aws_stack_is_refused():
    values = stackfile.read_values("dev") | {"refarch:local": {"gateway_port": 8080}}
    with pytest.raises(ConfigError) as err:
        parse(values, "dev", "stacks/Pulumi.dev.yaml")
    assert "stacks/Pulumi.dev.yaml: refarch:local: only a stack with target: local reads this section" in err.value.lines


def test_a_typo_in_the_local_section_is_refused():
    lines = refusal(refarch__local={"gateway_prot": 8080})
    assert any(line.startswith(f"{SOURCE}: refarch:local.gateway_prot") for line in lines), lines


def test_a_privileged_port_is_refused():
    assert any("refarch:local.gateway_port" in line for line in refusal(refarch__local={"gateway_port": 80}))


def test_a_local_stack_is_dev():
    assert f"{SOURCE}: refarch:environment: a local stack behaves as dev (got 'prod')" in refusal(
        refarch__environment="prod")


def test_the_database_image_must_match_the_rds_major():
    lines = refusal(refarch__local={"images": {"database": "postgres:15-bookworm"}})
    assert (f"{SOURCE}: refarch:local.images.database: 'postgres:15-bookworm' is PostgreSQL 15, "
            f"database.engine_version is 16") in lines


def test_secrets_stay_inside_the_repository():
    assert any("must stay inside the repository" in line
               for line in refusal(refarch__local={"secrets_dir": "../elsewhere"}))


def test_pinned_refuses_an_image_without_a_digest():
    lines = refusal(refarch__local={"pinned": True})
    assert (f"{SOURCE}: refarch:local.images.gateway: 'haproxy:3.2-bookworm' is not pinned by digest "
            f"(pinned: true)") in lines


def test_an_engine_image_id_is_a_valid_local_image():
    image_id = "sha256:" + "a" * 64
    config = parse(local_values(refarch__images={"products": image_id}), "local", SOURCE)
    assert config.images["products"] == image_id


def test_an_engine_image_id_is_not_a_pinned_aws_image():
    values = stackfile.read_values("dev") | {"refarch:images": {"products": "sha256:" + "a" * 64}}
    with pytest.raises(ConfigError) as err:
        parse(values, "dev", "stacks/Pulumi.dev.yaml")
    assert any("refarch:images.products" in line and "not pinned by digest" in line for line in err.value.lines)
