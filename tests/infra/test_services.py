"""The services layer alone, with stand-ins for the gateway, database and cache.

One isolated synth per case, shared by the module: the three shipped stacks as written, a
"mixed" stack that adds an image-based service without database or cache (and pins products by
digest), and dev with tracing off.
"""

from __future__ import annotations

import json
import re
import types
from typing import Any

import pulumi
import pytest

from infra.aws.containers import ADOT_CONTAINER
from infra.aws.service_network import target_group_name
from infra.aws.service_policies import XRAY_ACTIONS, ecr_repository_arn
from infra.aws.services import (
    Services,
    ServicesArgs,
    capacity_strategy,
    rule_priorities,
)
from infra.config import ConfigError, StackConfig, parse
from infra.tags import base_tags
from ops import stackfile
from ops.mocks import has_property
from ops.synth import Synth, run

ALB_SG = "sg-0alb00000000standin"
DB_SG = "sg-0db000000000standin"
CACHE_SG = "sg-0cache0000000standin"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/refarch-alb/0123456789abcdef/fedcba9876543210"
DB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0000-AbCdEf"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0standin-data-key"
BOUNDARY = "arn:aws:iam::123456789012:policy/refarch-standin-boundary"
DB_RESOURCE_ID = "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CACHE_GROUP_ARN = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:refarch-cache"
CACHE_USER_ARN = "arn:aws:elasticache:us-east-1:123456789012:user:refarch-cache-app"
PRIVATE_SUBNETS = ["subnet-0private0a", "subnet-0private0b"]
RETENTION = 14
DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-dev/products@sha256:" + "a" * 64
WEB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:web/api-key-MnOpQr"
WEB = {
    "name": "web",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shared/web:1.4.2",
    "port": 3000,
    "desired_count": 1, "min_count": 1, "max_count": 3,
    "spot_share": 25,
    "routes": [{"path": "/app*"}, {"path": "/*", "host": "www.example.com"}],
    "environment": {"LOG_LEVEL": "info"},
    "secrets": {"API_KEY": f"{WEB_SECRET}:key::"},
    "read_only_root_filesystem": False,
    "writable_root_reason": "the vendor image writes its page cache under /var/www",
    "health_check": {"path": "/healthz", "interval": 15, "timeout": 4, "healthy_threshold": 2,
                     "unhealthy_threshold": 4, "deregistration_delay": 10},
}
REQUIRED_TAGS = {"project", "stack", "environment", "managed-by"}


def config(stack: str, **sections: Any) -> StackConfig:
    values = stackfile.read_values(stack)
    values.update({f"refarch:{key}": value for key, value in sections.items()})
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")


def mixed_config() -> StackConfig:
    products = stackfile.read_values("dev")["refarch:services"][0]
    return config("dev", services=[products, WEB], images={"products": DIGEST})


def synth_services(cfg: StackConfig, stack: str) -> Synth:
    def build(c: StackConfig) -> None:
        out = pulumi.Output.from_input
        gateway = types.SimpleNamespace(security_group_id=out(ALB_SG), listener_arn=out(LISTENER),
                                        url=out("https://api.example.com"))
        database = types.SimpleNamespace(
            security_group_id=out(DB_SG), endpoint=out("refarch-db.c0.us-east-1.rds.amazonaws.com"),
            port=out(5432), db_name="app", username="app", app_username="app_rw",
            resource_id=out(DB_RESOURCE_ID), master_secret_arn=out(DB_SECRET))
        cache = types.SimpleNamespace(
            security_group_id=out(CACHE_SG), endpoint=out("master.refarch-cache.0.use1.cache.amazonaws.com"),
            port=out(6379), user_name="refarch-cache-app", user_arn=out(CACHE_USER_ARN),
            replication_group_id=out("refarch-cache"), replication_group_arn=out(CACHE_GROUP_ARN))
        services = Services("services", ServicesArgs(
            services=c.services, images=c.images, name_prefix=f"refarch-{stack}", region=c.region,
            vpc_id=out("vpc-0standin"), private_subnet_ids=[out(s) for s in PRIVATE_SUBNETS],
            gateway=gateway, database=database, cache=cache, log_retention_days=RETENTION, kms_key_arn=KEY,
            tracing=c.monitoring.tracing, container_insights=c.monitoring.container_insights,
            tags=base_tags("refarch", stack, c.environment), deployment=c.delivery.deployment,
            smoke_timeout_seconds=c.delivery.smoke_timeout_seconds, permissions_boundary_arn=BOUNDARY,
        ))
        pulumi.export("cluster_name", services.cluster_name)
        pulumi.export("deployed", {name: vars(d) for name, d in services.deployed.items()})

    return run(cfg, stack, build=build)


CASES = {
    "dev": lambda: (config("dev"), "dev"),
    "staging": lambda: (config("staging"), "staging"),
    "prod": lambda: (config("prod"), "prod"),
    "mixed": lambda: (mixed_config(), "dev"),
    "untraced": lambda: (config("dev", monitoring={"log_retention_days": 7, "tracing": False}), "dev"),
}


@pytest.fixture(scope="module")
def synths() -> dict[str, tuple[StackConfig, Synth]]:
    out = {}
    for case, make in CASES.items():
        cfg, stack = make()
        out[case] = (cfg, synth_services(cfg, stack))
    return out


@pytest.fixture(scope="module")
def mixed(synths) -> Synth:
    return synths["mixed"][1]


@pytest.fixture(scope="module")
def untraced(synths) -> Synth:
    return synths["untraced"][1]


# --- helpers ---------------------------------------------------------------------------------

def containers(synth: Synth, resource_name: str) -> list[dict[str, Any]]:
    return json.loads(synth.one("aws:ecs/taskDefinition:TaskDefinition", resource_name)["inputs"]["containerDefinitions"])


def app(synth: Synth, svc: str) -> dict[str, Any]:
    return next(c for c in containers(synth, f"services-{svc}-task") if c["name"] == svc)


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def policy(synth: Synth, resource_name: str) -> dict[str, Any]:
    return json.loads(synth.one("aws:iam/rolePolicy:RolePolicy", resource_name)["inputs"]["policy"])


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def sg_id(synth: Synth, svc: str) -> str:
    return synth.one("aws:ec2/securityGroup:SecurityGroup", f"services-{svc}-sg")["id"]


def rules(synth: Synth, kind: str) -> list[dict[str, Any]]:
    token = f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule"
    return [r["inputs"] for r in synth.of_type(token)]


# --- images ----------------------------------------------------------------------------------

def test_image_is_the_pinned_digest_when_given(mixed):
    assert app(mixed, "products")["image"] == DIGEST
    assert containers(mixed, "services-products-migrate")[0]["image"] == DIGEST


def test_built_service_without_digest_runs_the_initial_tag_of_its_own_repository(untraced):
    url = untraced.outputs["deployed"]["products"]["repository_url"]
    assert url.endswith("/refarch-dev/products")
    assert app(untraced, "products")["image"] == f"{url}:initial"


def test_image_service_runs_its_image_and_gets_no_repository(mixed):
    assert app(mixed, "web")["image"] == WEB["image"]
    assert [r["inputs"]["name"] for r in mixed.of_type("aws:ecr/repository:Repository")] == ["refarch-dev/products"]
    assert mixed.outputs["deployed"]["web"]["repository_url"] == ""


def test_repository_is_immutable_scanned_encrypted_and_expires_old_images(mixed):
    repo = mixed.one("aws:ecr/repository:Repository")["inputs"]
    # Immutable except the registry build cache, which every build overwrites.
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == [{"filter": "buildcache", "filterType": "WILDCARD"}]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfigurations"][0]["encryptionType"] in {"KMS", "AES256"}
    lifecycle = mixed.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")["inputs"]
    assert lifecycle["repository"] == "refarch-dev/products"
    selections = [r["selection"] for r in sorted(json.loads(lifecycle["policy"])["rules"], key=lambda r: r["rulePriority"])]
    assert selections == [
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
    ]


def test_ecr_repository_arn_only_for_private_ecr_images():
    assert ecr_repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api@sha256:" + "b" * 64, "aws") == \
        "arn:aws:ecr:eu-west-1:123456789012:repository/team/api"
    assert ecr_repository_arn("public.ecr.aws/nginx/nginx:1.27", "aws") is None
    assert ecr_repository_arn("nginx:1.27", "aws") is None


# --- container hardening -----------------------------------------------------------------------

def test_every_container_is_non_root_and_unprivileged(synths):
    for case, (_, synth) in synths.items():
        for td in synth.of_type("aws:ecs/taskDefinition:TaskDefinition"):
            for c in json.loads(td["inputs"]["containerDefinitions"]):
                assert c["user"] == "10001" and c["privileged"] is False, (case, td["name"], c["name"])


def test_root_filesystem_is_read_only_with_a_writable_tmp_volume(mixed):
    td = mixed.one("aws:ecs/taskDefinition:TaskDefinition", "services-products-task")["inputs"]
    products = app(mixed, "products")
    assert products["readonlyRootFilesystem"] is True
    assert products["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert td["volumes"] == [{"name": "tmp"}]


def test_writable_root_only_where_the_config_opts_out_with_a_reason(mixed):
    web = app(mixed, "web")
    assert web["readonlyRootFilesystem"] is False and "mountPoints" not in web
    assert not mixed.one("aws:ecs/taskDefinition:TaskDefinition", "services-web-task")["inputs"].get("volumes")


def test_task_definition_is_fargate_sized_for_the_configured_platform(synths):
    cfg, synth = synths["prod"]
    svc = cfg.services[0]
    td = synth.one("aws:ecs/taskDefinition:TaskDefinition", "services-products-task")["inputs"]
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"
    assert (td["cpu"], td["memory"]) == (str(svc.cpu), str(svc.memory)) == ("512", "1024")
    assert td["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}
    assert td["family"] == "refarch-prod-products"


def test_app_container_logs_to_its_group_and_has_the_configured_health_check(mixed):
    products = app(mixed, "products")
    assert products["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    assert products["logConfiguration"]["logDriver"] == "awslogs"
    assert products["logConfiguration"]["options"]["awslogs-group"] == "/ecs/refarch-dev/products"
    assert products["healthCheck"]["command"] == ["CMD", "python", "-m", "products.healthcheck"]
    assert 0 < products["stopTimeout"] <= 120  # Fargate's ceiling
    assert "healthCheck" not in app(mixed, "web")  # no command configured: the ALB check only


def test_log_groups_have_the_stack_retention_and_key(mixed):
    groups = {g["inputs"]["name"]: (g["inputs"]["retentionInDays"], g["inputs"]["kmsKeyId"])
              for g in mixed.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups == {"/ecs/refarch-dev/products": (RETENTION, KEY), "/ecs/refarch-dev/web": (RETENTION, KEY)}


# --- environment and secrets -------------------------------------------------------------------

def test_secrets_are_injected_by_reference_never_as_environment(mixed):
    products, web = app(mixed, "products"), app(mixed, "web")
    # C2: the service holds no database or cache credential at all.
    assert products["secrets"] == []
    assert {s["name"]: s["valueFrom"] for s in web["secrets"]} == {"API_KEY": WEB["secrets"]["API_KEY"]}
    for container in (products, web):
        plain = env(container)
        assert not {"DATABASE_PASSWORD", "CACHE_AUTH_TOKEN", "CACHE_PASSWORD", "API_KEY"} & set(plain)
        assert not any("secretsmanager" in value for value in plain.values())


def test_platform_variables_only_for_what_the_service_uses(mixed):
    products, web = env(app(mixed, "products")), env(app(mixed, "web"))
    assert products["DATABASE_SSLMODE"] == "require" and products["DATABASE_PORT"] == "5432"
    assert products["DATABASE_HOST"].endswith(".rds.amazonaws.com") and products["DATABASE_NAME"] == "app"
    assert products["CACHE_TLS"] == "true" and products["CACHE_PORT"] == "6379"
    # C2: the application's own database role and cache user, both by IAM.
    assert (products["DATABASE_USER"], products["DATABASE_AUTH"]) == ("app_rw", "iam")
    assert (products["CACHE_AUTH"], products["CACHE_USER"], products["CACHE_NAME"]) == (
        "iam", "refarch-cache-app", "refarch-cache")
    assert products["PORT"] == "8080" and web["PORT"] == "3000"
    assert web["LOG_LEVEL"] == "info"
    assert not [k for k in web if k.startswith(("DATABASE_", "CACHE_"))]


# --- tracing sidecar -----------------------------------------------------------------------------

def test_adot_collector_runs_beside_the_app_when_tracing(mixed):
    defs = containers(mixed, "services-products-task")
    (collector,) = [c for c in defs if c["name"] == ADOT_CONTAINER]
    assert re.fullmatch(r"public\.ecr\.aws/aws-observability/aws-otel-collector:v\d+\.\d+\.\d+", collector["image"])
    assert collector["command"] == ["--config=/etc/ecs/ecs-default-config.yaml"]
    assert collector["essential"] is False and 0 < collector["memoryReservation"] <= 128
    assert collector["logConfiguration"]["options"]["awslogs-stream-prefix"] != \
        app(mixed, "products")["logConfiguration"]["options"]["awslogs-stream-prefix"]
    products = app(mixed, "products")
    assert products["dependsOn"] == [{"containerName": ADOT_CONTAINER, "condition": "START"}]
    assert env(products)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4317"


def test_no_collector_and_no_otel_variables_without_tracing(untraced):
    defs = containers(untraced, "services-products-task")
    assert [c["name"] for c in defs] == ["products"]
    assert "dependsOn" not in defs[0]
    assert not [k for k in env(defs[0]) if k.startswith("OTEL_")]


# --- migrations --------------------------------------------------------------------------------

def test_migration_task_runs_the_command_as_the_master_user_with_its_own_execution_role(mixed):
    migrate = mixed.one("aws:ecs/taskDefinition:TaskDefinition", "services-products-migrate")
    task = mixed.one("aws:ecs/taskDefinition:TaskDefinition", "services-products-task")["inputs"]
    assert migrate["inputs"]["family"] == "refarch-dev-products-migrate"
    for key in ("taskRoleArn", "networkMode", "cpu", "memory", "runtimePlatform"):
        assert migrate["inputs"][key] == task[key], key
    # Only the migration's execution role may read the master secret.
    role = mixed.one("aws:iam/role:Role", "services-products-migrate-execution-role")
    assert migrate["inputs"]["executionRoleArn"] == role["arn"] != task["executionRoleArn"]
    (container,) = containers(mixed, "services-products-migrate")  # no sidecar
    assert container["command"] == ["python", "-m", "products.migrate"]
    assert "portMappings" not in container and "healthCheck" not in container
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {"DATABASE_PASSWORD": f"{DB_SECRET}:password::"}
    # C2: the master user with its password, and the role it creates for the application.
    service_env = {k: v for k, v in env(app(mixed, "products")).items() if not k.startswith("OTEL_")}
    migration_env = {k: v for k, v in env(container).items() if not k.startswith("OTEL_")}
    assert migration_env == {**service_env, "DATABASE_AUTH": "password", "DATABASE_USER": "app",
                             "DATABASE_APP_USER": "app_rw"}
    deployed = mixed.outputs["deployed"]["products"]
    assert deployed["migration_task_definition_urn"] == migrate["urn"]
    assert deployed["migration_task_definition_arn"] == migrate["arn"]


def test_no_migration_task_without_a_migrate_command(mixed):
    families = {td["inputs"]["family"] for td in mixed.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    assert families == {"refarch-dev-products", "refarch-dev-products-migrate", "refarch-dev-web"}
    web = mixed.outputs["deployed"]["web"]
    assert web.get("migration_task_definition_arn") is None and web.get("migration_task_definition_urn") is None


# --- IAM -----------------------------------------------------------------------------------------

def resources_by_action(document: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            out.setdefault(action, set()).update(as_list(statement["Resource"]))
    return out


def test_execution_roles_reach_only_their_own_repository_logs_and_secrets(mixed):
    products = resources_by_action(policy(mixed, "services-products-execution-policy"))
    web = resources_by_action(policy(mixed, "services-web-execution-policy"))
    repo = mixed.one("aws:ecr/repository:Repository")["arn"]
    groups = {g["inputs"]["name"].rsplit("/", 1)[1]: g["arn"] for g in mixed.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert products["ecr:BatchGetImage"] == {repo}
    assert web["ecr:BatchGetImage"] == {"arn:aws:ecr:us-east-1:123456789012:repository/shared/web"}
    assert products["logs:PutLogEvents"] == {f"{groups['products']}:*"}
    assert web["logs:PutLogEvents"] == {f"{groups['web']}:*"}
    assert "secretsmanager:GetSecretValue" not in products
    assert web["secretsmanager:GetSecretValue"] == {WEB_SECRET}
    migrate = resources_by_action(policy(mixed, "services-products-migrate-execution-policy"))
    assert migrate["secretsmanager:GetSecretValue"] == {DB_SECRET}
    assert "services-web-migrate-execution-policy" not in {rp["name"] for rp in
                                                           mixed.of_type("aws:iam/rolePolicy:RolePolicy")}


def test_no_wildcard_actions_and_star_resources_only_where_aws_allows_nothing_else(synths):
    star_only = {"ecr:GetAuthorizationToken", *XRAY_ACTIONS, "elasticloadbalancing:DescribeListeners",
                 "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups",
                 "elasticloadbalancing:DescribeTargetHealth"}
    for case, (_, synth) in synths.items():
        for rp in synth.of_type("aws:iam/rolePolicy:RolePolicy"):
            for action, resources in resources_by_action(json.loads(rp["inputs"]["policy"])).items():
                assert "*" not in action, (case, rp["name"], action)
                assert "*" not in resources or action in star_only, (case, rp["name"], action)


def test_kms_decrypt_only_through_secrets_manager_for_the_services_own_secrets(mixed):
    (statement,) = [s for s in policy(mixed, "services-products-migrate-execution-policy")["Statement"]
                    if "kms:Decrypt" in as_list(s["Action"])]
    assert as_list(statement["Action"]) == ["kms:Decrypt"]
    assert statement["Condition"]["StringEquals"] == {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    assert set(statement["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContext:SecretARN"]) == {DB_SECRET}


def test_task_role_logs_in_to_its_data_stores_and_writes_traces_only_when_tracing(mixed, untraced):
    for svc in ("products", "web"):
        (statement,) = policy(mixed, f"services-{svc}-task-tracing")["Statement"]
        assert sorted(statement["Action"]) == sorted(XRAY_ACTIONS)
    # C2: rds-db:connect as the application's role of this instance; elasticache:Connect to the
    # replication group and the application's user.
    assert resources_by_action(policy(mixed, "services-products-task-data")) == {
        "rds-db:connect": {f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{DB_RESOURCE_ID}/app_rw"},
        "elasticache:Connect": {CACHE_GROUP_ARN, CACHE_USER_ARN}}
    task_policies = [rp["name"] for rp in mixed.of_type("aws:iam/rolePolicy:RolePolicy")
                     if rp["inputs"]["role"].endswith("-task")]
    assert sorted(task_policies) == ["services-products-task-data", "services-products-task-tracing",
                                     "services-web-task-tracing"]
    assert [rp["name"] for rp in untraced.of_type("aws:iam/rolePolicy:RolePolicy")
            if rp["inputs"]["role"].endswith("-task")] == ["services-products-task-data"]
    assert untraced.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []


def test_roles_trust_only_ecs_tasks_of_this_account_and_carry_the_boundary(mixed):
    for role in mixed.of_type("aws:iam/role:Role"):
        assert not role["inputs"].get("managedPolicyArns")
        assert role["inputs"]["permissionsBoundary"] == BOUNDARY
        (statement,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


# --- network -------------------------------------------------------------------------------------

def test_service_ingress_is_only_from_the_alb_on_the_container_port(mixed):
    for svc, port in (("products", 8080), ("web", 3000)):
        sg = sg_id(mixed, svc)
        ingress = [r for r in rules(mixed, "Ingress") if r["securityGroupId"] == sg]
        assert [(r["referencedSecurityGroupId"], r["fromPort"], r["toPort"]) for r in ingress] == [(ALB_SG, port, port)]
        assert not [r for r in ingress if r.get("cidrIpv4") or r.get("cidrIpv6")]
        alb_out = [r for r in rules(mixed, "Egress") if r["securityGroupId"] == ALB_SG and r["referencedSecurityGroupId"] == sg]
        assert [(r["fromPort"], r["toPort"]) for r in alb_out] == [(port, port)]


def test_data_stores_admit_only_the_services_that_use_them(mixed):
    products = sg_id(mixed, "products")
    for store, port in ((DB_SG, 5432), (CACHE_SG, 6379)):
        ingress = [r for r in rules(mixed, "Ingress") if r["securityGroupId"] == store]
        assert [(r["referencedSecurityGroupId"], r["fromPort"], r["toPort"]) for r in ingress] == [(products, port, port)]


def test_service_egress_is_https_plus_the_data_stores_it_uses(mixed):
    def egress(svc: str) -> set[tuple[str, int]]:
        return {(r.get("cidrIpv4") or r["referencedSecurityGroupId"], r["fromPort"])
                for r in rules(mixed, "Egress") if r["securityGroupId"] == sg_id(mixed, svc)}

    assert egress("products") == {("0.0.0.0/0", 443), (DB_SG, 5432), (CACHE_SG, 6379)}
    assert egress("web") == {("0.0.0.0/0", 443)}


def test_tasks_run_in_private_subnets_without_public_ips(synths):
    for case, (_, synth) in synths.items():
        for service in synth.of_type("aws:ecs/service:Service"):
            network = service["inputs"]["networkConfiguration"]
            assert network["subnets"] == PRIVATE_SUBNETS and network["assignPublicIp"] is False, case
            assert len(network["securityGroups"]) == 1


# --- load balancing ------------------------------------------------------------------------------

def test_target_group_health_check_follows_the_config(mixed):
    tg = mixed.one("aws:lb/targetGroup:TargetGroup", "services-web-tg")["inputs"]
    assert (tg["targetType"], tg["protocol"], tg["port"]) == ("ip", "HTTP", 3000)
    assert tg["deregistrationDelay"] == 10
    check = tg["healthCheck"]
    assert (check["path"], check["interval"], check["timeout"]) == ("/healthz", 15, 4)
    assert (check["healthyThreshold"], check["unhealthyThreshold"], check["matcher"]) == (2, 4, "200-399")


@pytest.mark.parametrize("case", ["dev", "staging", "prod"])
def test_shipped_stacks_can_roll_out_in_45_seconds(synths, case):
    cfg, synth = synths[case]
    groups = synth.of_type("aws:lb/targetGroup:TargetGroup")
    # A traffic-shifting strategy adds the alternate group, which rolls out the same way.
    assert len(groups) == len(cfg.services) * (1 if cfg.delivery.deployment.rolling else 2)
    for tg in groups:
        check = tg["inputs"]["healthCheck"]
        assert check["healthyThreshold"] * check["interval"] + tg["inputs"]["deregistrationDelay"] <= 45, tg["name"]


def test_target_group_names_fit_and_never_collide():
    long = config("dev", services=[{"name": "a" * 23 + end, "image": "nginx:1", "routes": [{"path": f"/{end}*"}]}
                                   for end in "bc"])
    names = {target_group_name("refarch-staging", svc) for svc in long.services}
    assert len(names) == 2 and all(len(n) <= 32 and n.startswith("refarch-staging-") for n in names)
    moved = long.services[0].model_copy(update={"port": 9090})
    # A port change replaces the group: the new one must not need the old one's name.
    assert target_group_name("refarch-staging", moved) != target_group_name("refarch-staging", long.services[0])


def test_one_listener_rule_per_route_with_unique_priorities(mixed):
    tgs = {tg["name"]: tg["arn"] for tg in mixed.of_type("aws:lb/targetGroup:TargetGroup")}
    found = {}
    for rule in mixed.of_type("aws:lb/listenerRule:ListenerRule"):
        i = rule["inputs"]
        assert i["listenerArn"] == LISTENER
        assert all(len(c) == 1 for c in i["conditions"])  # one match type per condition block
        conditions = {k: v["values"] for c in i["conditions"] for k, v in c.items()}
        (action,) = i["actions"]
        found[i["priority"]] = (action["targetGroupArn"], conditions)
    assert found == {
        100: (tgs["services-products-tg"], {"pathPattern": ["/products*"]}),
        110: (tgs["services-web-tg"], {"pathPattern": ["/app*"]}),
        111: (tgs["services-web-tg"], {"pathPattern": ["/*"], "hostHeader": ["www.example.com"]}),
    }


# --- the ECS service -----------------------------------------------------------------------------

def test_rollouts_keep_capacity_wait_and_roll_back_on_failure(synths):
    for case, (cfg, synth) in synths.items():
        for svc in cfg.services:
            service = synth.one("aws:ecs/service:Service", f"services-{svc.name}-service")
            i = service["inputs"]
            assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}, case
            assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (100, 200)
            assert i["waitForSteadyState"] is True and i["enableExecuteCommand"] is False
            assert i["healthCheckGracePeriodSeconds"] == svc.health_check.grace_period
            assert i["desiredCount"] == svc.desired_count
            # ECS owns the target-group pair of a traffic-shifting strategy (see test_progressive_delivery).
            owned = [] if cfg.delivery.deployment.rolling else [
                "loadBalancers[*].targetGroupArn", "loadBalancers[*].advancedConfiguration.alternateTargetGroupArn"]
            assert service["options"]["ignoreChanges"] == ["desiredCount", *owned]


def test_service_waits_for_its_listener_rules_permissions_and_network_paths(mixed):
    service = mixed.one("aws:ecs/service:Service", "services-products-service")
    needed = [r["urn"] for r in mixed.resources if r["name"].startswith("services-products-") and r["type"] in (
        "aws:lb/listenerRule:ListenerRule", "aws:iam/rolePolicy:RolePolicy",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    # 1 listener rule; 4 role policies (execution, migration execution, data access, tracing); 3+4 rules.
    assert len(needed) == 1 + 4 + 3 + 4
    assert set(needed) <= set(service["options"]["dependsOn"])
    lb = service["inputs"]["loadBalancers"]
    assert lb == [{"targetGroupArn": mixed.one("aws:lb/targetGroup:TargetGroup", "services-products-tg")["arn"],
                   "containerName": "products", "containerPort": 8080}]


@pytest.mark.parametrize(("case", "service", "strategy"), [
    ("prod", "products", [{"capacityProvider": "FARGATE", "weight": 1}]),
    ("dev", "products", [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
    ("staging", "products", [{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                             {"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
    ("mixed", "web", [{"capacityProvider": "FARGATE", "base": 1, "weight": 3},
                      {"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
])
def test_capacity_strategy_follows_spot_share(synths, case, service, strategy):
    synth = synths[case][1]
    assert synth.one("aws:ecs/service:Service", f"services-{service}-service")["inputs"]["capacityProviderStrategies"] == strategy


def test_capacity_strategy_keeps_one_on_demand_task_whenever_spot_is_mixed_in():
    for share in range(1, 100):
        fargate, spot = capacity_strategy(share)
        assert fargate["base"] == 1 and "base" not in spot
        assert spot["weight"] / (fargate["weight"] + spot["weight"]) == pytest.approx(share / 100)


def test_cluster_has_both_fargate_providers_and_insights_per_config(synths):
    for case, insights in (("dev", "disabled"), ("prod", "enabled")):
        synth = synths[case][1]
        cluster = synth.one("aws:ecs/cluster:Cluster")["inputs"]
        assert cluster["name"] == f"refarch-{case}" == synth.outputs["cluster_name"]
        assert cluster["settings"] == [{"name": "containerInsights", "value": insights}]
        providers = synth.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")["inputs"]
        assert providers["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]


def test_deployed_outputs_name_the_real_resources(mixed):
    deployed = mixed.outputs["deployed"]["products"]
    service = mixed.one("aws:ecs/service:Service", "services-products-service")
    assert deployed["service_name"] == service["inputs"]["name"] == "refarch-dev-products"
    assert deployed["service_arn"] == service["arn"]
    assert deployed["resource_id"] == "service/refarch-dev/refarch-dev-products"
    assert deployed["target_group_arn_suffix"].startswith("targetgroup/")
    assert deployed["task_definition_arn"] == service["inputs"]["taskDefinition"]
    assert deployed["security_group_id"] == sg_id(mixed, "products")
    assert deployed["log_group_name"] == "/ecs/refarch-dev/products"


def test_every_taggable_resource_is_tagged(synths):
    for case, (_, synth) in synths.items():
        untagged = [r["name"] for r in synth.resources if not r["type"].startswith("refarch:")
                    and has_property(r["type"], "tags") and not REQUIRED_TAGS <= set(r["inputs"].get("tags", {}))]
        assert untagged == [], case


def test_priorities_never_overlap_between_services_and_routes_beyond_the_slots_are_refused():
    with pytest.raises(ConfigError, match=r"services\[0\].routes: 11 routes: at most 10 per service"):
        config("dev", services=[{"name": "wide", "image": "nginx:1",
                                 "routes": [{"path": f"/r{i}/*"} for i in range(11)]}])
    fits = config("dev", services=[{"name": "wide", "image": "nginx:1",
                                    "routes": [{"path": f"/r{i}/*"} for i in range(10)]}]).services[0]
    assert max(rule_priorities(0, fits)) < min(rule_priorities(1, fits))


def test_replaced_task_definitions_stay_registered_for_break_glass_rollback(mixed):
    for td in mixed.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        assert td["inputs"]["skipDestroy"] is True, td["name"]


def test_writable_root_opt_out_is_tagged_with_its_reason_for_the_policy_pack(mixed):
    tagged = {td["inputs"]["family"]: td["inputs"]["tags"].get("writable-root-reason")
              for td in mixed.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    writable = {family: reason for family, reason in tagged.items() if reason}
    assert writable and all("web" in family for family in writable)
