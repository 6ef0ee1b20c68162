"""One config, two targets: the local and dev stacks agree on what a service sees and serves."""

from __future__ import annotations

import json

from ops import stackfile
from tests.local.conftest import containers

# Variables only one target has, each for a reason of that target:
AWS_ONLY = {
    "CACHE_NAME",  # signs the ElastiCache IAM token
    "OTEL_LOGS_EXPORTER", "OTEL_METRICS_EXPORTER",  # the ADOT sidecar forwards traces only, to X-Ray
    # No Firehose locally: without a stream the service's events go to a counting no-op sink.
    "ANALYTICS_STREAM", "ANALYTICS_EVENTS",
}
# Secrets are files locally: `<NAME>_FILE` stands for each secret the task definition injects.
FILE_SUFFIX = "_FILE"


def aws_container(dev_synth, family: str) -> dict:
    task = dev_synth.one("aws:ecs/taskDefinition:TaskDefinition", family)
    definitions = task["inputs"]["containerDefinitions"]
    definitions = json.loads(definitions) if isinstance(definitions, str) else definitions
    return next(c for c in definitions if c["name"] == "products")


def local_names(container) -> set[str]:
    return {env.split("=", 1)[0] for env in container["inputs"]["envs"]}


def test_the_stack_files_declare_the_same_services():
    dev, local = stackfile.load("dev"), stackfile.load("local")
    keys = ("name", "port", "routes", "health_check", "environment", "secrets", "uses_database", "uses_cache",
            "migrate_command", "build", "image", "read_only_root_filesystem", "cpu", "memory")
    assert [s.model_dump(include=set(keys)) for s in dev.services] == \
           [s.model_dump(include=set(keys)) for s in local.services]
    assert (dev.database.major_version, dev.cache.engine, dev.cache.engine_version) == \
           (local.database.major_version, local.cache.engine, local.cache.engine_version)


def test_routes_ports_and_health_paths_agree(dev_synth, local_synth):
    for name, aws in dev_synth.outputs["services"].items():
        local = local_synth.outputs["services"][name]
        assert (aws["routes"], aws["health_check_path"]) == (local["routes"], local["health_check_path"])


def test_the_service_sees_the_same_variables_and_secrets(dev_synth, local_synth):
    for family, local_name in (("services-products-task", "products-service"),
                               ("services-products-migrate", "products-migrate")):
        aws = aws_container(dev_synth, family)
        aws_env = {e["name"] for e in aws.get("environment", [])}
        aws_secrets = {s["name"] for s in aws.get("secrets", [])}
        local = local_names(containers(local_synth)[local_name])
        local_files = {n.removesuffix(FILE_SUFFIX) for n in local if n.endswith(FILE_SUFFIX)}
        assert aws_env - AWS_ONLY == local - {n for n in local if n.endswith(FILE_SUFFIX)}, family
        assert aws_secrets <= local_files, family
