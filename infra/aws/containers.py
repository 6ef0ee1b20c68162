"""The container definitions of a service's task definitions: the app, its migration and the
ADOT collector, from the service's config and what the data layers hand the services layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.config import ServiceConfig
from infra.config.services import IMAGE_USER

if TYPE_CHECKING:
    from infra.aws.flags import FlagNames
    from infra.aws.services import ServicesArgs

# Seconds between SIGTERM and SIGKILL. The ALB has already drained the task by then (ECS stops
# it only after deregistration), so this only has to cover closing connections and flushing.
STOP_TIMEOUT = 30
TMP_VOLUME = "tmp"

# Pinned: a collector upgrade is a reviewed change, never a surprise on the next task start.
ADOT_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
ADOT_CONFIG = "--config=/etc/ecs/ecs-default-config.yaml"
ADOT_CONTAINER = "otel-collector"
ADOT_MEMORY_RESERVATION = 64  # MiB, soft: the collector idles at ~40 MiB
OTLP_ENDPOINT = "http://localhost:4317"  # tasks share a network namespace in awsvpc mode

# AppConfig agent 2.x, pinned by digest. The digest could not be resolved from here (no registry
# access): it is the one public repositories pin for this tag; verify with
# `docker buildx imagetools inspect public.ecr.aws/aws-appconfig/aws-appconfig-agent:2.x` before merge.
APPCONFIG_AGENT_IMAGE = ("public.ecr.aws/aws-appconfig/aws-appconfig-agent:2.x"
                         "@sha256:5e23ec8b3eb883680cdf1e4224c8d0f99405e14eb67131a2def7316eaa418f1a")
APPCONFIG_AGENT_CONTAINER = "appconfig-agent"
APPCONFIG_AGENT_MEMORY_RESERVATION = 32  # MiB, soft
APPCONFIG_POLL_SECONDS = 45  # the agent's default; the cost estimate prices this rate

# Container health check limits (ECS rejects larger values than the ALB accepts).
CONTAINER_CHECK_TIMEOUT_MAX = 60
CONTAINER_CHECK_START_PERIOD_MAX = 300


class ContainerDefinitions:
    """Builds container definitions for every service of one Services layer."""

    def __init__(self, args: ServicesArgs):
        self._args = args

    def environment(self, svc: ServiceConfig) -> dict[str, pulumi.Input[str]]:
        args = self._args
        env: dict[str, pulumi.Input[str]] = {**svc.environment, "PORT": str(svc.port)}
        if svc.uses_database:
            db = args.database
            # C2: the application's own role with IAM tokens; never the master user, no password.
            env |= {"DATABASE_HOST": db.endpoint, "DATABASE_PORT": db.port.apply(str),
                    "DATABASE_NAME": db.db_name, "DATABASE_USER": db.app_username, "DATABASE_AUTH": "iam",
                    "DATABASE_SSLMODE": "require"}
        if svc.uses_cache:
            cache = args.cache
            env |= {"CACHE_HOST": cache.endpoint, "CACHE_PORT": cache.port.apply(str), "CACHE_TLS": "true",
                    "CACHE_AUTH": "iam", "CACHE_USER": cache.user_name, "CACHE_NAME": cache.replication_group_id}
        if args.auth is not None and any(r.auth_enforced_by == "service" for r in svc.routes):
            # products.auth: writes need an RS256 token from this issuer with these scopes.
            env |= {"AUTH_ISSUER": args.auth.issuer, "AUTH_JWKS_URL": args.auth.jwks_url,
                    "AUTH_WRITE_SCOPES": " ".join(sorted({s for r in svc.routes for s in r.scopes}))}
            if args.auth.audience is not None:
                env["AUTH_AUDIENCE"] = args.auth.audience
        if args.flags:
            env |= {"FLAGS_URL": args.flags.url, "FLAGS_DEFAULTS": args.flags.defaults}
        if args.analytics is not None:
            # The service drops (and counts) any event the stack file does not declare.
            env |= {"ANALYTICS_STREAM": args.analytics.stream_name, "ANALYTICS_EVENTS": ",".join(args.analytics.events)}
        if args.tracing:
            env |= {
                "OTEL_SERVICE_NAME": svc.name,
                "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_PROPAGATORS": "tracecontext,baggage,xray",
                "OTEL_RESOURCE_ATTRIBUTES": f"deployment.environment={args.tags.get('environment', '')}",
                # Traces only: the task role may write to X-Ray and nowhere else, so metrics and
                # logs sent to the collector would only be dropped with permission errors.
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
            }
        return env

    def secrets(self, svc: ServiceConfig) -> dict[str, pulumi.Input[str]]:
        return dict(svc.secrets)

    def migration_access(self, svc: ServiceConfig, env: dict[str, pulumi.Input[str]],
                          secrets: dict[str, pulumi.Input[str]],
                          ) -> tuple[dict[str, pulumi.Input[str]], dict[str, pulumi.Input[str]]]:
        """C2: migrations log in as the master user and create the application's role."""
        if not svc.uses_database:
            return env, secrets
        db = self._args.database
        return (
            {**env, "DATABASE_AUTH": "password", "DATABASE_USER": db.username, "DATABASE_APP_USER": db.app_username},
            # The RDS-managed secret is JSON; ECS extracts one key with `<arn>:<key>::`.
            {**secrets, "DATABASE_PASSWORD": pulumi.Output.concat(db.master_secret_arn, ":password::")},
        )

    def log_config(self, log_group: aws.cloudwatch.LogGroup, stream_prefix: str) -> dict[str, Any]:
        return {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group.name, "awslogs-region": self._args.region,
            "awslogs-stream-prefix": stream_prefix}}

    def hardened(self, svc: ServiceConfig, name: str, image: pulumi.Input[str],
                  log_group: aws.cloudwatch.LogGroup, stream_prefix: str,
                  env: dict[str, pulumi.Input[str]], secrets: dict[str, pulumi.Input[str]]) -> dict[str, Any]:
        """What every container running the service's image shares: identity, FS, env, secrets."""
        container: dict[str, Any] = {
            "name": name,
            "image": image,
            "essential": True,
            "user": IMAGE_USER,  # ECS would otherwise trust the image
            "privileged": False,
            "readonlyRootFilesystem": svc.read_only_root_filesystem,
            "environment": [{"name": k, "value": env[k]} for k in sorted(env)],
            # Injected by ECS at start from Secrets Manager: never in the task definition itself.
            "secrets": [{"name": k, "valueFrom": secrets[k]} for k in sorted(secrets)],
            "logConfiguration": self.log_config(log_group, stream_prefix),
            "stopTimeout": STOP_TIMEOUT,
        }
        if svc.read_only_root_filesystem:
            container["mountPoints"] = [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}]
        return container

    def flags_agent(self, flags: FlagNames, log_group: aws.cloudwatch.LogGroup) -> dict[str, Any]:
        """The AppConfig agent beside the app: serves the stack's flags on localhost:2772."""
        return {
            "name": APPCONFIG_AGENT_CONTAINER,
            "image": APPCONFIG_AGENT_IMAGE,
            # Flags fall back to their declared defaults without it (services/products flags.py).
            "essential": False,
            "memoryReservation": APPCONFIG_AGENT_MEMORY_RESERVATION,
            "user": IMAGE_USER,  # ECS would otherwise trust the image
            "privileged": False,
            "readonlyRootFilesystem": True,
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
            # Fetched at start, so the app's first read is served from the agent's cache.
            "environment": [{"name": "PREFETCH_LIST", "value": flags.path},
                            {"name": "POLL_INTERVAL", "value": str(APPCONFIG_POLL_SECONDS)}],
            "logConfiguration": self.log_config(log_group, "appconfig"),
        }

    def app_container(self, svc: ServiceConfig, image: pulumi.Input[str], log_group: aws.cloudwatch.LogGroup,
                       env: dict[str, pulumi.Input[str]], secrets: dict[str, pulumi.Input[str]]) -> dict[str, Any]:
        container = self.hardened(svc, svc.name, image, log_group, "app", env, secrets)
        container["portMappings"] = [{"containerPort": svc.port, "protocol": "tcp"}]
        check = svc.health_check
        if check.command:
            container["healthCheck"] = {
                "command": check.command,
                "interval": check.interval,
                "timeout": min(check.timeout, CONTAINER_CHECK_TIMEOUT_MAX),
                "retries": check.unhealthy_threshold,
                "startPeriod": min(check.grace_period, CONTAINER_CHECK_START_PERIOD_MAX),
            }
        return container

    def migration_container(self, svc: ServiceConfig, image: pulumi.Input[str], log_group: aws.cloudwatch.LogGroup,
                             env: dict[str, pulumi.Input[str]], secrets: dict[str, pulumi.Input[str]]) -> dict[str, Any]:
        # No collector (and no flags agent) runs beside a one-off task: switch the SDK off rather
        # than let it retry an endpoint that is not there.
        plain = {k: v for k, v in env.items() if not k.startswith(("OTEL_", "FLAGS_"))}
        if self._args.tracing:
            plain["OTEL_SDK_DISABLED"] = "true"
        container = self.hardened(svc, svc.name, image, log_group, "migrate", plain, secrets)
        container["command"] = list(svc.migrate_command or [])
        return container

    def collector(self, log_group: aws.cloudwatch.LogGroup) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": ADOT_CONTAINER,
            "image": ADOT_IMAGE,
            "command": [ADOT_CONFIG],
            # Losing traces must never take the service down with it.
            "essential": False,
            "memoryReservation": ADOT_MEMORY_RESERVATION,
            "user": IMAGE_USER,  # ECS would otherwise trust the image
            "privileged": False,
            "readonlyRootFilesystem": True,
            "logConfiguration": self.log_config(log_group, "otel"),
        }
        return container

