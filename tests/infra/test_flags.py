"""The flags layer under the mock runtime: AppConfig resources, the agent sidecar, least privilege."""

from __future__ import annotations

import fnmatch
import json

import pytest

from infra.aws.containers import APPCONFIG_AGENT_IMAGE
from infra.aws.flags import configuration_arn
from infra.config.services import DIGEST_PINNED
from ops.synth import run

APP = "aws:appconfig/application:Application"
ENV = "aws:appconfig/environment:Environment"
PROFILE = "aws:appconfig/configurationProfile:ConfigurationProfile"
VERSION = "aws:appconfig/hostedConfigurationVersion:HostedConfigurationVersion"
STRATEGY = "aws:appconfig/deploymentStrategy:DeploymentStrategy"
DEPLOYMENT = "aws:appconfig/deployment:Deployment"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def containers(synth, service="products"):
    task = synth.one("aws:ecs/taskDefinition:TaskDefinition", f"services-{service}-task")
    return {c["name"]: c for c in json.loads(task["inputs"]["containerDefinitions"])}


def own_arn(synth) -> str:
    out = synth.outputs["flags"]
    return configuration_arn("aws", "us-east-1", "123456789012", out["application_id"], out["environment_id"],
                             out["profile_id"])


def test_one_feature_flag_profile_per_stack_hosted_by_appconfig(dev):
    app, env, profile = dev.one(APP), dev.one(ENV), dev.one(PROFILE)
    assert (app["inputs"]["name"], env["inputs"]["name"]) == ("refarch-dev", "dev")
    assert profile["inputs"]["type"] == "AWS.AppConfig.FeatureFlags"
    assert profile["inputs"]["locationUri"] == "hosted"
    assert env["inputs"]["applicationId"] == profile["inputs"]["applicationId"] == app["id"]
    version = dev.one(VERSION)["inputs"]
    assert version["contentType"] == "application/json"
    deployment = dev.one(DEPLOYMENT)["inputs"]
    assert deployment["configurationVersion"] == "1"
    assert deployment["deploymentStrategyId"] == dev.one(STRATEGY)["id"]
    assert dev.outputs["flags"] == {"application_id": app["id"], "environment_id": deployment["environmentId"],
                                    "profile_id": deployment["configurationProfileId"],
                                    "strategy_id": dev.one(STRATEGY)["id"]}


@pytest.mark.parametrize(("stack", "duration", "factor", "bake"), [("dev", 0, 100, 0), ("staging", 10, 20, 10),
                                                                  ("prod", 10, 20, 10)])
def test_strategy_is_immediate_in_dev_and_gradual_with_a_bake_elsewhere(synths, stack, duration, factor, bake):
    strategy = synths[stack].one(STRATEGY)["inputs"]
    assert (strategy["deploymentDurationInMinutes"], strategy["growthFactor"],
            strategy["finalBakeTimeInMinutes"]) == (duration, factor, bake)
    assert strategy["growthType"] == "LINEAR" and strategy["replicateTo"] == "NONE"


def test_monitor_is_every_health_alarm_and_its_role_reads_only_that_alarm(prod):
    monitors = prod.one(ENV)["inputs"]["monitors"]
    composite = prod.one("aws:cloudwatch/compositeAlarm:CompositeAlarm", "flags-monitor")
    assert monitors == [{"alarmArn": composite["arn"], "alarmRoleArn": prod.one("aws:iam/role:Role", "flags-monitor-role")["arn"]}]
    wanted = prod.outputs["health_alarm_names"]
    assert len(wanted) > 5  # why one composite alarm: an environment holds 5 monitors
    assert composite["inputs"]["alarmRule"] == " OR ".join(f'ALARM("{n}")' for n in wanted)
    trust = json.loads(prod.one("aws:iam/role:Role", "flags-monitor-role")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "appconfig.amazonaws.com"}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    policy = json.loads(prod.one(POLICY, "flags-monitor-policy")["inputs"]["policy"])
    assert policy["Statement"] == [{"Sid": "DescribeFlagMonitor", "Effect": "Allow",
                                    "Action": "cloudwatch:DescribeAlarms", "Resource": composite["arn"]}]


def test_agent_sidecar_is_pinned_hardened_and_prefetches_the_profile(dev):
    by_name = containers(dev)
    agent, app = by_name["appconfig-agent"], by_name["products"]
    assert DIGEST_PINNED.match(agent["image"]) and agent["image"] == APPCONFIG_AGENT_IMAGE
    assert agent["image"].startswith("public.ecr.aws/aws-appconfig/aws-appconfig-agent:2.x@sha256:")
    assert (agent["essential"], agent["privileged"], agent["readonlyRootFilesystem"]) == (False, False, True)
    assert agent["user"] != "0" and agent["linuxParameters"] == {"capabilities": {"drop": ["ALL"]}}
    env = {e["name"]: e["value"] for e in agent["environment"]}
    url = {e["name"]: e["value"] for e in app["environment"]}["FLAGS_URL"]
    assert url == "http://localhost:2772/applications/refarch-dev/environments/dev/configurations/flags"
    assert url.removeprefix("http://localhost:2772") == env["PREFETCH_LIST"]


def test_task_role_reads_only_its_stacks_profile(dev):
    policy = json.loads(dev.one(POLICY, "flags-products-read")["inputs"]["policy"])
    assert dev.one(POLICY, "flags-products-read")["inputs"]["role"] == "refarch-dev-products-task"
    assert policy["Statement"] == [{
        "Sid": "ReadOwnFlags", "Effect": "Allow",
        "Action": ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
        "Resource": own_arn(dev)}]


def _allows(synth, role: str, action: str, resource: str) -> bool:
    for r in synth.of_type(POLICY):
        if r["inputs"]["role"] != role:
            continue
        for s in json.loads(r["inputs"]["policy"])["Statement"]:
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
            if s["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions) \
                    and any(fnmatch.fnmatchcase(resource, p) for p in resources):
                return True
    return False


def test_a_task_role_cannot_read_another_stacks_profile(synths):
    dev, staging = synths["dev"], synths["staging"]
    for action in ("appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"):
        assert _allows(dev, "refarch-dev-products-task", action, own_arn(dev))
        assert not _allows(dev, "refarch-dev-products-task", action, own_arn(staging))
        assert not _allows(staging, "refarch-staging-products-task", action, own_arn(dev))


def test_no_flags_declared_means_no_appconfig_and_no_sidecar(config_of):
    synth = run(config_of("dev", flags={"declared": []}), "dev")
    assert [r for r in synth.resources if r["type"].startswith("aws:appconfig/")] == []
    assert "appconfig-agent" not in containers(synth)
    assert "FLAGS_URL" not in {e["name"] for e in containers(synth)["products"]["environment"]}
    assert synth.outputs["flags"] is None
