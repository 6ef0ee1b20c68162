"""The local stack under the mock runtime: the properties the issue names, read from what it registers."""

from __future__ import annotations

from infra.local import flags as local_flags
from infra.local import secrets as local_secrets
from tests.local.conftest import containers

DATA_TIER = ("database", "cache")


def network_of(synth, urn_or_name):
    return next(r for r in synth.of_type("docker:index/network:Network") if r["name"] == urn_or_name)


def attached(container) -> set[str]:
    return {n["name"] for n in container["inputs"].get("networksAdvanced", [])}


def test_one_network_per_tier_and_the_data_network_is_internal(local_synth):
    nets = {r["name"]: r["inputs"] for r in local_synth.of_type("docker:index/network:Network")}
    assert set(nets) == {"network-edge", "network-app", "network-data"}
    assert nets["network-data"]["internal"] is True
    assert not nets["network-app"].get("internal") and not nets["network-edge"].get("internal")


def test_the_data_tier_publishes_nothing_and_sits_only_on_the_data_network(local_synth):
    found = containers(local_synth)
    for name in DATA_TIER:
        assert not found[name]["inputs"].get("ports"), name
        assert attached(found[name]) == {"refarch-local-data"}, name


def test_everything_published_binds_loopback_only(local_synth):
    published = [(r["name"], port) for r in containers(local_synth).values() for port in r["inputs"].get("ports", [])]
    assert {name for name, _ in published} == {"gateway", "monitoring-ui"}
    assert all(port["ip"] == "127.0.0.1" for _, port in published), published
    assert local_synth.outputs["gateway_url"] == "http://127.0.0.1:8080"


def test_the_gateway_cannot_reach_the_data_network(local_synth):
    assert attached(containers(local_synth)["gateway"]) == {"refarch-local-edge", "refarch-local-app"}


def test_the_migration_runs_first_and_the_service_waits_for_it(local_synth):
    found = containers(local_synth)
    migration, service = found["products-migrate"], found["products-service"]
    assert migration["inputs"]["attach"] is True and migration["inputs"]["mustRun"] is False
    assert migration["inputs"]["command"] == ["python", "-m", "products.migrate"]
    assert migration["urn"] in service["options"]["dependencies"]
    # The service takes the migration's checked exit code as a label, so a failed migration stops it.
    labels = {label["label"]: label["value"] for label in service["inputs"]["labels"]}
    assert labels["refarch.migration-exit-code"] == "0"
    assert {found["database"]["urn"], found["cache"]["urn"]} <= set(migration["options"]["dependsOn"])
    # The data tier is waited for until healthy, so the migration never races PostgreSQL's start.
    assert found["database"]["inputs"]["wait"] is True and found["cache"]["inputs"]["wait"] is True


def test_secrets_reach_containers_as_read_only_files_never_as_values(local_synth):
    for name, container in containers(local_synth).items():
        envs = container["inputs"].get("envs", [])
        assert not [e for e in envs if e.split("=")[0].endswith(("PASSWORD", "TOKEN"))], name
        for mount in container["inputs"].get("mounts", []):
            # Besides the secrets, only the (non-secret) flags file is mounted, read-only too.
            assert mount["readOnly"] is True, name
            assert mount["target"].startswith(local_secrets.MOUNT) or mount["target"] == local_flags.MOUNT, name
    service = containers(local_synth)["products-service"]
    mounted = {m["target"] for m in service["inputs"]["mounts"]}
    assert mounted == {f"{local_secrets.MOUNT}/{local_secrets.DATABASE_APP}",
                       f"{local_secrets.MOUNT}/{local_secrets.CACHE_APP}", local_flags.MOUNT}
    # The app's own role, not the master user (C2), as in AWS.
    assert "DATABASE_USER=app_rw" in service["inputs"]["envs"]


def test_the_service_runs_hardened_within_its_configured_size(local_synth):
    service = containers(local_synth)["products-service"]["inputs"]
    assert service["user"] == "10001" and service["readOnly"] is True
    assert service["memory"] == 512 and service["cpus"] == "0.25"
    assert service["capabilities"]["drops"] == ["ALL"]
    assert "no-new-privileges:true" in service["securityOpts"]
    assert service["healthcheck"]["tests"] == ["CMD", "python", "-m", "products.healthcheck"]


def test_no_container_is_privileged(local_synth):
    assert all(not c["inputs"].get("privileged") for c in containers(local_synth).values())


def test_telemetry_is_optional(local_synth):
    from infra.config import parse
    from ops import stackfile
    from ops.synth import run

    values = stackfile.read_values("local")
    values["refarch:local"] = {**values["refarch:local"], "telemetry": False}
    quiet = run(parse(values, "local", "stacks/Pulumi.local.yaml"), "local")
    assert "monitoring-collector" not in containers(quiet) and quiet.outputs["telemetry_ui_url"] is None
    service_env = containers(quiet)["products-service"]["inputs"]["envs"]
    assert not [e for e in service_env if e.startswith("OTEL_EXPORTER")]
    assert local_synth.outputs["telemetry_ui_url"] == "http://127.0.0.1:16686"


def test_a_failed_migration_stops_the_service_from_starting():
    import pulumi
    import pytest

    from infra.local.services import migration_succeeded

    assert migration_succeeded("products")(0) == "0"
    with pytest.raises(pulumi.RunError, match="services.products: the migration exited 3; the service was not started"):
        migration_succeeded("products")(3)


def test_the_images_invoke_up_just_built_replace_the_stacks(monkeypatch):
    import json

    from ops import stackfile
    from ops.synth import run

    image_id = "sha256:" + "c" * 64
    monkeypatch.setenv("REFARCH_LOCAL_IMAGES", json.dumps({"products": image_id, "ghost": "sha256:" + "d" * 64}))
    fresh = run(stackfile.load("local"), "local")
    found = containers(fresh)
    assert found["products-service"]["inputs"]["image"] == image_id
    assert found["products-migrate"]["inputs"]["image"] == image_id


def test_the_data_tier_keeps_its_data_on_volumes(local_synth):
    found = containers(local_synth)
    volumes = {r["inputs"]["name"] for r in local_synth.of_type("docker:index/volume:Volume")}
    assert volumes == {"refarch-local-database", "refarch-local-cache"}
    assert found["database"]["inputs"]["volumes"][0]["containerPath"] == "/var/lib/postgresql/data"
    cache = found["cache"]["inputs"]
    assert cache["volumes"][0] == {"volumeName": "refarch-local-cache", "containerPath": "/data"}
    # Snapshots only where the cache config keeps them (dev keeps 1 day: hourly saves).
    assert cache["command"][cache["command"].index("--save") + 1] == "3600 1"
