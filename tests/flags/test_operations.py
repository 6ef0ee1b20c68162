"""`invoke flags` / `invoke flags-set`: boto3 against moto for AppConfig's profile and hosted
versions and for the ledger; the deployment calls moto lacks through the recording seam."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops import flags as ops_flags
from ops.delivery.ledger import Ledger
from ops.errors import OpsError
from tests.flags.recording import ALARM, RecordingDeployments

SORT = "catalog-sort-by-price"
ENV_ID, STRATEGY_ID = "env0001", "strat01"


class Clock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stack(clients, config_of):
    """A deployed dev stack's flags in moto: application, profile, version 1 with the declared defaults."""
    config = config_of("dev", flags={"declared": [
        {"name": SORT, "description": "cheapest first", "default": False},
        {"name": "banner", "default": False, "attributes": {"text": "hello"}}],
        "rollout": {"growth": "immediate"}})
    app = clients.appconfig.create_application(Name="refarch-dev")["Id"]
    profile = clients.appconfig.create_configuration_profile(
        ApplicationId=app, Name="flags", LocationUri="hosted", Type="AWS.AppConfig.FeatureFlags")["Id"]
    initial = config.flags.content()
    initial["values"]["banner"]["enabled"] = True  # switched on earlier by someone
    version = clients.appconfig.create_hosted_configuration_version(
        ApplicationId=app, ConfigurationProfileId=profile, Content=json.dumps(initial).encode(),
        ContentType="application/json")["VersionNumber"]
    outputs = {"flags": {"application_id": app, "environment_id": ENV_ID, "profile_id": profile,
                         "strategy_id": STRATEGY_ID}}
    return {"config": config, "app": app, "profile": profile, "version": version, "outputs": outputs}


def deps(clients, stack, seam: RecordingDeployments, clock: Clock | None = None) -> ops_flags.FlagDeps:
    clock = clock or Clock()
    return ops_flags.FlagDeps(load_config=lambda _s: stack["config"], clients=lambda _r: clients,
                              outputs=lambda _s: stack["outputs"], deployments=lambda _c: seam, ledger=Ledger,
                              sleep=clock.sleep, clock=clock)


def deployed_once(version: int) -> RecordingDeployments:
    return RecordingDeployments(history=[{"DeploymentNumber": 1, "ConfigurationVersion": str(version),
                                          "State": "COMPLETE"}])


def hosted(clients, stack, version: int) -> dict[str, Any]:
    answer = clients.appconfig.get_hosted_configuration_version(
        ApplicationId=stack["app"], ConfigurationProfileId=stack["profile"], VersionNumber=version)
    return json.loads(answer["Content"].read())


def test_list_shows_what_the_newest_complete_deployment_serves(clients, stack):
    rows = ops_flags.show("dev", deps(clients, stack, deployed_once(stack["version"])))
    assert rows == [
        {"name": SORT, "value": "off", "default": "off", "description": "cheapest first"},
        {"name": "banner", "value": "on", "default": "off", "description": ""}]


def test_list_before_any_deployment_says_so(clients, stack):
    rows = ops_flags.show("dev", deps(clients, stack, RecordingDeployments()))
    assert [r["value"] for r in rows] == ["not deployed", "not deployed"]


def test_set_deploys_a_new_version_with_the_strategy_and_records_it(clients, stack):
    seam = deployed_once(stack["version"])
    seam.scripts.append(["DEPLOYING", "BAKING", "COMPLETE"])
    clock = Clock()
    change = ops_flags.set_flag("dev", SORT, "on", deps(clients, stack, seam, clock))
    assert (change.outcome, change.old, change.new, change.deployment) == ("COMPLETE", False, True, 2)
    document = hosted(clients, stack, change.version)
    assert document["version"] == "1"
    assert document["values"] == {SORT: {"enabled": True}, "banner": {"enabled": True, "text": "hello"}}
    assert seam.named("start") == [{"application": stack["app"], "environment": ENV_ID,
                                    "profile": stack["profile"], "strategy": STRATEGY_ID,
                                    "version": change.version, "description": f"{SORT}: off -> on"}]
    assert len(seam.named("get")) == 3 and clock.sleeps == [10, 10]
    ledger = Ledger(clients, "dev")
    (record,) = ledger.history(kind="flag")
    assert (record.kind, record.outcome, record.verified, record.images) == ("flag", "succeeded", True, {})
    assert record.notes == [f"{SORT}: off -> on", "deployment #2 COMPLETE"]
    assert record.actor and record.finished_at and record.id.endswith("-flag")
    # A flag change is not a release to run, roll back to or promote.
    assert (ledger.history(), ledger.current(), ledger.last_good()) == ([], None, None)
    # And the listing now reads the new version.
    assert ops_flags.show("dev", deps(clients, stack, seam))[0]["value"] == "on"


def test_a_rollback_exits_non_zero_names_the_alarm_and_is_recorded(clients, stack):
    seam = deployed_once(stack["version"])
    seam.scripts.append(["DEPLOYING", "ROLLING_BACK", "ROLLED_BACK"])
    with pytest.raises(OpsError) as raised:
        ops_flags.set_flag("dev", SORT, "on", deps(clients, stack, seam))
    assert raised.value.code == 3
    assert raised.value.message == (f"dev: {SORT}: off -> on: AppConfig ROLLED_BACK deployment #2 (Rollback "
                                    f"initiated by CloudWatch Alarm: {ALARM}); {SORT} stays off")
    (record,) = Ledger(clients, "dev").history(kind="flag")
    assert (record.outcome, record.verified) == ("rolled back", False)
    assert record.notes[-1] == f"deployment #2 ROLLED_BACK: Rollback initiated by CloudWatch Alarm: {ALARM}"
    # What is served is still the last COMPLETE deployment's version.
    assert ops_flags.show("dev", deps(clients, stack, seam))[0]["value"] == "off"


def test_a_deployment_that_never_ends_fails_after_the_strategys_time(clients, stack):
    seam = deployed_once(stack["version"])
    seam.scripts.append(["DEPLOYING"])
    clock = Clock()
    with pytest.raises(OpsError, match=r"deployment #2 is still DEPLOYING after 300 s"):
        ops_flags.set_flag("dev", SORT, "on", deps(clients, stack, seam, clock))
    assert clock.now == pytest.approx(310)  # immediate strategy: 0 min + 0 bake + the margin
    (record,) = Ledger(clients, "dev").history(kind="flag")
    assert record.outcome == "failed" and "still DEPLOYING" in record.notes[-1]


def test_the_same_value_deploys_nothing(clients, stack):
    seam = deployed_once(stack["version"])
    change = ops_flags.set_flag("dev", "banner", "ON", deps(clients, stack, seam))
    assert change.outcome == "unchanged"
    assert seam.named("start") == [] and Ledger(clients, "dev").history(kind="flag") == []


def test_a_running_deployment_is_waited_for_not_raced(clients, stack):
    seam = RecordingDeployments(history=[
        {"DeploymentNumber": 2, "ConfigurationVersion": "2", "State": "BAKING"},
        {"DeploymentNumber": 1, "ConfigurationVersion": str(stack["version"]), "State": "COMPLETE"}])
    with pytest.raises(OpsError, match=r"deployment #2 of the flags of dev is BAKING: wait for it"):
        ops_flags.set_flag("dev", SORT, "on", deps(clients, stack, seam))
    assert seam.named("start") == []


@pytest.mark.parametrize(("name", "value", "message"), [
    ("nope", "on", "flag 'nope' is not declared in stacks/Pulumi.dev.yaml (refarch:flags.declared): "
                   f"declared: {SORT}, banner"),
    (SORT, "maybe", "flag value must be on or off, got 'maybe'"),
])
def test_bad_input_is_refused_before_anything_changes(clients, stack, name, value, message):
    seam = deployed_once(stack["version"])
    with pytest.raises(OpsError) as raised:
        ops_flags.set_flag("dev", name, value, deps(clients, stack, seam))
    assert raised.value.message == message
    assert seam.calls == []


def test_a_stack_without_flag_outputs_is_named(clients, stack):
    stack["outputs"] = {}
    with pytest.raises(OpsError, match="stack dev exports no AppConfig flags"):
        ops_flags.show("dev", deps(clients, stack, RecordingDeployments()))


def test_the_task_exits_3_on_a_rollback_and_names_missing_flags(clients, stack, monkeypatch):
    import importlib.util
    from pathlib import Path

    import invoke

    spec = importlib.util.spec_from_file_location("refarch_tasks", Path(__file__).parents[2] / "tasks.py")
    assert spec is not None and spec.loader is not None
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    seam = deployed_once(stack["version"])
    seam.scripts.append(["ROLLED_BACK"])
    monkeypatch.setattr(ops_flags, "default_deps", lambda: deps(clients, stack, seam))
    with pytest.raises(invoke.Exit) as raised:
        tasks.flags_set(invoke.Context(), stack="dev", name=SORT, value="on")
    assert raised.value.code == 3 and "AppConfig ROLLED_BACK deployment #2" in str(raised.value.message)
    with pytest.raises(invoke.Exit) as missing:
        tasks.flags_set(invoke.Context(), stack="dev", name=SORT, value=None)
    assert (missing.value.code, missing.value.message) == (
        1, "error: flags_set needs --value (see `invoke flags_set --help`)")


def test_moto_still_lacks_the_calls_behind_the_seam(clients):
    """The real seam against moto: boto3 accepts every argument it sends (a misnamed one fails
    client-side), and moto answers 404, the reason for the seam. Once moto serves these, test
    through it and drop the recording double."""
    from botocore.exceptions import ClientError

    real = ops_flags.AppConfigDeployments(clients.appconfig)
    calls = [lambda: real.history("abc1234", ENV_ID),
             lambda: real.start(application="abc1234", environment=ENV_ID, profile="prof123",
                                strategy=STRATEGY_ID, version=1, description="probe"),
             lambda: real.get("abc1234", ENV_ID, 1)]
    for call in calls:
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
