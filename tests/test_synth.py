"""The offline synth harness and `invoke synth`: shape, determinism, secrets, bad config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import ConfigError
from ops.synth import synth_stack

ROOT = Path(__file__).resolve().parent.parent
RESOURCE_KEYS = {"urn", "type", "name", "id", "arn", "parent", "inputs", "options"}
OPTION_KEYS = {"protect", "retainOnDelete", "dependsOn", "dependencies", "ignoreChanges"}


def test_json_has_exactly_the_documented_shape(dev):
    doc = dev.to_json()
    assert set(doc) == {"project", "stack", "resources", "outputs"}
    assert (doc["project"], doc["stack"]) == ("refarch", "dev")
    for r in doc["resources"]:
        assert set(r) == RESOURCE_KEYS and set(r["options"]) == OPTION_KEYS
    json.dumps(doc)  # plain JSON, nothing opaque left


def test_ids_and_arns_look_like_aws_and_references_resolve(dev):
    (vpc,) = dev.of_type("aws:ec2/vpc:Vpc")
    assert vpc["id"].startswith("vpc-") and vpc["arn"].startswith("arn:aws:ec2:us-east-1:")
    subnets = dev.of_type("aws:ec2/subnet:Subnet")
    assert subnets and all(s["inputs"]["vpcId"] == vpc["id"] for s in subnets)
    # Types without an ARN report null, not an invented one.
    assert all(r["arn"] is None for r in dev.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"))
    assert all(r["arn"] is None and r["id"] is None for r in dev.resources if r["type"].startswith("refarch:"))


def test_secrets_are_redacted_everywhere(dev):
    text = json.dumps(dev.to_json())
    assert "mock-" not in text  # no mock secret value leaks
    # The cache has no AUTH token any more (IAM authentication): nothing to hold as a secret.
    (rg,) = dev.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert "authToken" not in rg["inputs"]


def test_two_synths_are_identical():
    assert synth_stack("staging").to_json() == synth_stack("staging").to_json()


def test_bad_config_registers_nothing(tmp_path, monkeypatch):
    from ops import stackfile

    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text((ROOT / "stacks/Pulumi.dev.yaml").read_text().replace("cpu: 256", "cpu: 300"))
    monkeypatch.setattr(stackfile, "STACKS_DIR", tmp_path)
    with pytest.raises(ConfigError):
        synth_stack("dev")


def test_invoke_synth_writes_json_and_fails_cleanly_on_bad_config(tmp_path):
    out = tmp_path / "dev.json"
    ok = subprocess.run([sys.executable, "-m", "invoke", "synth", "--stack", "dev", "--out", str(out)],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out.read_text())["stack"] == "dev"
    assert "gateway" in ok.stdout and "aws:lb/loadBalancer:LoadBalancer" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "invoke", "synth", "--stack", "nope"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "stacks/Pulumi.nope.yaml: no such stack file" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout


def test_program_reads_runtime_config_and_reports_bad_config_without_a_traceback(monkeypatch):
    """The path `pulumi preview` takes: config from the runtime (JSON strings), RunError on problems."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    from infra import program

    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    runtime_config.set_all_config({
        "aws:region": "us-east-1",
        "refarch:services": json.dumps([{"name": "api", "build": ".", "cpu": 256, "memory": 4096}]),
        "refarch:netwrk": "{}",
    })
    try:
        with pytest.raises(pulumi.RunError) as err:
            program.load_config()
    finally:
        runtime_config.set_all_config({})
    message = str(err.value)
    assert "stacks/Pulumi.dev.yaml: refarch:netwrk: unknown key (did you mean 'network'?)" in message
