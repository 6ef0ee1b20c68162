"""destroy (protected, shown first, confirmed), drift (exit codes), releases (the ledger as a table)."""

from __future__ import annotations

import pytest
from rich.console import Console

from ops.delivery import stack_ops
from ops.delivery.ledger import Ledger
from ops.delivery.pulumi_adapter import RefreshOutcome
from ops.errors import OpsError
from tests.delivery.flow_fakes import RecordingStack, make_deps

RESOURCES = [
    {"urn": "urn:pulumi:prod::refarch::aws:rds/instance:Instance::database", "type": "aws:rds/instance:Instance",
     "id": "db", "protect": True},
    {"urn": "urn:pulumi:prod::refarch::aws:ec2/subnet:Subnet::private-a", "type": "aws:ec2/subnet:Subnet",
     "id": "subnet-1", "protect": False},
    {"urn": "urn:pulumi:prod::refarch::aws:ec2/subnet:Subnet::private-b", "type": "aws:ec2/subnet:Subnet",
     "id": "subnet-2", "protect": False},
]


def test_destroy_of_prod_without_force_is_refused_and_nothing_is_called():
    stack = RecordingStack(resources=RESOURCES)
    with pytest.raises(OpsError, match="stack prod is protected \\(delivery.protected\\): destroy refused; pass --force"):
        stack_ops.destroy("prod", yes=True, deps=make_deps(stack=stack))
    assert stack.calls == []


def test_destroy_shows_what_goes_then_refuses_without_a_terminal(capsys):
    stack = RecordingStack(resources=RESOURCES)
    with pytest.raises(OpsError, match="destroy needs the stack name typed at a terminal"):
        stack_ops.destroy("prod", force=True, deps=make_deps(stack=stack, tty=False))
    err = capsys.readouterr().err
    assert "prod: 3 resources would be destroyed:" in err
    assert "2 aws:ec2/subnet:Subnet" in err and "protected in the state (database)" in err
    assert ("destroy",) not in stack.calls


def test_destroy_with_a_wrong_typed_name_is_refused():
    stack = RecordingStack(resources=RESOURCES)
    with pytest.raises(OpsError, match="confirmation 'dev' does not match 'prod': nothing destroyed"):
        stack_ops.destroy("prod", force=True, deps=make_deps(stack=stack, tty=True, answers=["dev"]))
    assert ("destroy",) not in stack.calls


def test_destroy_confirmed_by_the_typed_name_takes_the_lock(aws_env):
    stack = RecordingStack(resources=RESOURCES)
    assert stack_ops.destroy("dev", deps=make_deps(stack=stack, tty=True, answers=["dev"]))
    assert stack.calls == [("select", "dev"), ("resources",), ("destroy",)]


def test_destroy_dry_run_lists_and_stops(capsys):
    stack = RecordingStack(resources=RESOURCES)
    assert not stack_ops.destroy("dev", dry_run=True, deps=make_deps(stack=stack))
    assert "would: pulumi destroy --stack dev (3 resources)" in capsys.readouterr().err
    assert ("destroy",) not in stack.calls


def test_drift_exit_codes(capsys):
    clean = RecordingStack(refresh=RefreshOutcome({"same": 40}))
    assert stack_ops.drift("dev", deps=make_deps(stack=clean)) == 0
    assert clean.calls == [("select", "dev"), ("refresh", True)]  # preview only: the state is untouched
    drifted = RecordingStack(refresh=RefreshOutcome({"same": 39, "update": 1}, [
        {"op": "refresh", "urn": "urn:pulumi:dev::refarch::aws:ecs/service:Service::products",
         "type": "aws:ecs/service:Service", "diffs": ["desiredCount"]}]))
    assert stack_ops.drift("dev", deps=make_deps(stack=drifted)) == 2
    out = capsys.readouterr().out
    assert "dev: drift (update 1)" in out
    assert "aws:ecs/service:Service products (desiredCount)" in out


def test_releases_table_flags_interrupted_runs(aws_env, clients):
    ledger = Ledger(clients, "dev")
    images = {"products": "r/products@sha256:" + "ab12cd34" * 8}
    done = ledger.begin("1234567" + "0" * 33, images, "h", "deploy")
    ledger.finish(done.id, "succeeded", verified=True)
    stuck = ledger.begin("7654321" + "0" * 33, images, "h", "deploy")
    history = stack_ops.releases("dev", deps=make_deps())
    assert [r.id for r in history] == [stuck.id, done.id]
    console = Console(record=True, width=300)
    console.print(stack_ops.releases_table("dev", history, {stuck.id}))
    text = console.export_text()
    row = next(line for line in text.splitlines() if stuck.id in line)
    assert "deploying (INTERRUPTED)" in row and "7654321" in row and "products=sha256:ab12cd34" in row
    assert "yes" in next(line for line in text.splitlines() if done.id in line)
