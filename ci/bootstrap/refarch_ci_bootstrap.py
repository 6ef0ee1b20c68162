"""What CI needs in an AWS account, created once: OIDC trust, CI roles, Pulumi state, keys, tables.

- the GitHub OIDC provider (or the account's existing one, by ARN);
- per environment E: a deploy role assumable only by a job of this repository running in the
  GitHub environment E, a read-only preview role (pull requests and the default branch), E's
  permissions boundary (every role E's stack creates carries it), E's secrets key
  (`awskms://alias/<project>-pulumi-<E>`) and, when someone may promote from E, E's
  promotion-source role (contract C1);
- the Pulumi state bucket (versioned, SSE-KMS without a bucket key so that each object is
  encrypted under its own ARN, public access blocked, TLS only) and its key;
- the deploy lock and release ledger tables of ops/delivery (contract C1), encrypted with the same key;
- the account's log resource policies that let WAF deliver to `aws-waf-logs-*` groups and the
  stacks' EventBridge rules to `/aws/events/<project>-*` groups, so no deploy role needs
  `logs:PutResourcePolicy`.

Permissions (documents in `bootstrap_documents.py` and `deploy_policies.py`): inside an account
each role reaches only its own environment's resources, by name where AWS authorizes on names and
by the creation-time `stack` tag where it authorizes on generated ids; see those modules.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

# The folder is a Pulumi project, not a package: its modules import each other by their own names.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from bootstrap_documents import (  # noqa: E402
    BOOTSTRAP_STACK,
    STACK_TAG,
    STS_AUDIENCE,
    Account,
    Names,
    boundary_name,
    deploy_subject,
    github_trust,
    key_policy,
    preview_policy,
    preview_subjects,
    promotion_source_name,
    promotion_source_policy,
    promotion_trust,
    tls_only_policy,
)
from delivery_tables import TableSpec, ledger_table, lock_table  # noqa: E402
from deploy_policies import DEPLOY_PARTS, boundary_policy, deploy_policies  # noqa: E402

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
# Noncurrent state versions are the undo history of every stack; a year of it is cheap.
STATE_VERSIONS_DAYS = 365
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


@dataclass(frozen=True)
class BootstrapConfig:
    repository: str  # owner/name on GitHub
    environments: tuple[str, ...] = ("dev", "staging", "prod")
    default_branch: str = "main"
    project: str = "refarch"
    hosted_zone_ids: tuple[str, ...] = ()
    # Env -> the DNS names its stack may write (gateway.domain): the alias record and ACM's
    # validation records. An environment without domains gets no Route 53 write and no certificate.
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Env -> role ARNs that may read its ledger and pull its images (C1). Unset: the next
    # environment's deploy role in this account, when there is one.
    promotion_readers: Mapping[str, tuple[str, ...]] | None = None
    # An account has one provider per URL: pass its ARN if it exists already.
    oidc_provider_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not REPOSITORY.match(self.repository):
            problems.append(f"github_repository: {self.repository!r} is not <owner>/<name>")
        if not self.environments:
            problems.append("environments: at least one")
        problems += [f"environments: {e!r} is not a lower-case name" for e in self.environments if not NAME.match(e)]
        if BOOTSTRAP_STACK in self.environments:
            problems.append(f"environments: {BOOTSTRAP_STACK!r} is reserved for the bootstrap's own resources")
        if len(set(self.environments)) != len(self.environments):
            problems.append("environments: listed twice")
        if not NAME.match(self.project):
            problems.append(f"project: {self.project!r} is not a lower-case name")
        for env, names in self.domains.items():
            if env not in self.environments:
                problems.append(f"domains.{env}: not one of the environments")
            problems += [f"domains.{env}: {d!r} is not a lower-case DNS name" for d in names if not DOMAIN.match(d)]
        for env, arns in (self.promotion_readers or {}).items():
            if env not in self.environments:
                problems.append(f"promotion_readers.{env}: not one of the environments")
            problems += [f"promotion_readers.{env}: {a!r} is not an IAM role ARN" for a in arns if not ROLE_ARN.match(a)]
        if problems:
            raise ValueError("invalid bootstrap config: " + "; ".join(problems))

    @classmethod
    def from_pulumi(cls) -> BootstrapConfig:
        cfg = pulumi.Config()
        readers = cfg.get_object("promotion_readers")
        return cls(
            repository=cfg.require("github_repository"),
            environments=tuple(cfg.get_object("environments") or cls.environments),
            default_branch=cfg.get("default_branch") or "main",
            project=cfg.get("project") or "refarch",
            hosted_zone_ids=tuple(cfg.get_object("hosted_zone_ids") or ()),
            domains={env: tuple(names) for env, names in (cfg.get_object("domains") or {}).items()},
            promotion_readers=None if readers is None else {env: tuple(a) for env, a in readers.items()},
            oidc_provider_arn=cfg.get("oidc_provider_arn"),
        )

    def deploy_role_name(self, env: str) -> str:
        return f"{self.project}-ci-deploy-{env}"

    def has_promotion_readers(self, env: str) -> bool:
        """Known before deploy (unlike the ARNs): whether E gets a promotion-source role at all."""
        if self.promotion_readers is not None:
            return bool(self.promotion_readers.get(env))
        return env != self.environments[-1]

    def readers_of(self, env: str, account: Account) -> list[str]:
        """Who may read E's ledger and images: the configured ARNs, or the next deploy role here."""
        if self.promotion_readers is not None:
            return list(self.promotion_readers.get(env, ()))
        i = self.environments.index(env)
        if i + 1 == len(self.environments):
            return []
        nxt = self.environments[i + 1]
        return [f"arn:{account.partition}:iam::{account.account}:role/{self.deploy_role_name(nxt)}"]


# --- the component -------------------------------------------------------------------------------

class CiBootstrap(pulumi.ComponentResource):
    state_bucket: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    backend_url: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    secrets_providers: dict[str, pulumi.Output[str]]
    preview_role_arns: dict[str, pulumi.Output[str]]
    deploy_role_arns: dict[str, pulumi.Output[str]]
    boundary_arns: dict[str, pulumi.Output[str]]
    promotion_source_role_arns: dict[str, pulumi.Output[str]]
    lock_table: pulumi.Output[str]
    ledger_table: pulumi.Output[str]

    def __init__(self, name: str, config: BootstrapConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch-bootstrap:ci:CiBootstrap", name, None, opts)
        self._name, self._config = name, config
        invoke = pulumi.InvokeOutputOptions(parent=self)
        where = pulumi.Output.all(
            aws.get_caller_identity_output(opts=invoke).account_id,
            aws.get_region_output(opts=invoke).region,
            aws.get_partition_output(opts=invoke).partition,
        ).apply(lambda v: Account(*v))
        self._where = where
        project = config.project
        # `stack` on the bootstrap's own keys: no environment is named so, so no deploy role matches.
        tags = {"project": project, "managed-by": "pulumi", "component": "ci-bootstrap",
                STACK_TAG: BOOTSTRAP_STACK, **config.tags}
        self._tags = tags
        child = pulumi.ResourceOptions(parent=self)
        # Losing any of these loses every stack's state or secrets: `pulumi destroy` must refuse them.
        kept = pulumi.ResourceOptions(parent=self, protect=True)

        key = self._key("state-key", f"{project}: Pulumi state bucket, deploy lock and release ledger",
                        f"alias/{project}-pulumi", kept)
        bucket = self._state_bucket(key, kept, child)
        tables = {spec.name: self._table(spec, key, kept) for spec in (lock_table(project), ledger_table(project))}
        self._waf_log_delivery(child)
        self._event_log_delivery(child)

        if config.oidc_provider_arn:
            provider_arn: pulumi.Output[str] = pulumi.Output.from_input(config.oidc_provider_arn)
        else:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                # No thumbprint: IAM verifies GitHub's certificate against its own trusted CAs.
                tags={**tags, "Name": "github-actions"},
                opts=kept,
            )
            provider_arn = provider.arn

        self.secrets_providers, self.preview_role_arns, self.deploy_role_arns = {}, {}, {}
        self.boundary_arns, self.promotion_source_role_arns = {}, {}
        deploy_roles: dict[str, aws.iam.Role] = {}
        self._names: dict[str, pulumi.Output[Names]] = {}
        for env in config.environments:
            secrets_key = self._key(f"{env}-secrets-key", f"{project}: secrets of stack {env} (awskms://)",
                                    f"alias/{project}-pulumi-{env}", kept, environment=env)
            names = pulumi.Output.all(where, bucket.bucket, key.arn, secrets_key.arn).apply(_names(project, env))
            self._names[env] = names
            deploy_roles[env] = self._environment(env, names, provider_arn, list(tables.values()))
            region = where.apply(lambda w: w.region)
            self.secrets_providers[env] = pulumi.Output.concat(
                "awskms://alias/", f"{project}-pulumi-{env}", "?region=", region)
        for env in config.environments:
            self._promotion_source(env, deploy_roles)

        self.state_bucket = bucket.bucket
        self.key_arn = key.arn
        self.backend_url = pulumi.Output.concat("s3://", bucket.bucket, "?region=", where.apply(lambda w: w.region))
        self.oidc_provider_arn = provider_arn
        self.lock_table = tables[lock_table(project).name].name
        self.ledger_table = tables[ledger_table(project).name].name
        self.register_outputs({"state_bucket": self.state_bucket, "backend_url": self.backend_url})

    # --- shared resources ------------------------------------------------------------------------

    def _key(self, suffix: str, description: str, alias: str, opts: pulumi.ResourceOptions,
             **extra_tags: str) -> aws.kms.Key:
        key = aws.kms.Key(
            f"{self._name}-{suffix}",
            description=description,
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=self._where.apply(lambda w: json.dumps(key_policy(w.account, w.partition))),
            tags={**self._tags, **extra_tags, "Name": alias.removeprefix("alias/")},
            opts=opts,
        )
        aws.kms.Alias(f"{self._name}-{suffix}-alias", name=alias, target_key_id=key.key_id,
                      opts=pulumi.ResourceOptions(parent=self))
        return key

    def _state_bucket(self, key: aws.kms.Key, kept: pulumi.ResourceOptions,
                      child: pulumi.ResourceOptions) -> aws.s3.Bucket:
        name, project = self._name, self._config.project
        bucket = aws.s3.Bucket(
            f"{name}-state",
            bucket=self._where.apply(lambda w: f"{project}-pulumi-state-{w.account}-{w.region}"),
            force_destroy=False,
            tags={**self._tags, "Name": f"{project}-pulumi-state"},
            opts=kept,
        )
        aws.s3.BucketVersioning(
            f"{name}-state-versioning", bucket=bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-state-sse", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": key.arn},
                    # Off: with a bucket key the encryption context is the bucket, and every role
                    # able to read one environment's state could decrypt all of them.
                    "bucket_key_enabled": False}],
            opts=child)
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-state-private", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(
            f"{name}-state-owner", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-state-history", bucket=bucket.id,
            rules=[{"id": "expire-old-state-versions", "status": "Enabled", "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": STATE_VERSIONS_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}],
            opts=child)
        # S3 rejects concurrent policy and public-access-block updates on one bucket: serialise them.
        aws.s3.BucketPolicy(
            f"{name}-state-tls-only", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]))
        return bucket

    def _table(self, spec: TableSpec, key: aws.kms.Key, kept: pulumi.ResourceOptions) -> aws.dynamodb.Table:
        return aws.dynamodb.Table(
            f"{self._name}-{spec.name}",
            name=spec.name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=spec.partition_key,
            range_key=spec.sort_key,
            attributes=[aws.dynamodb.TableAttributeArgs(**a) for a in spec.attributes()],
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True, kms_key_arn=key.arn),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=True,
            tags={**self._tags, "Name": spec.name},
            opts=kept,
        )

    def _waf_log_delivery(self, child: pulumi.ResourceOptions) -> None:
        def document(w: Account) -> str:
            groups = f"arn:{w.partition}:logs:{w.region}:{w.account}:log-group:aws-waf-logs-*:log-stream:*"
            return json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "WafDeliversToWafLogGroups", "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": groups,
                "Condition": {"StringEquals": {"aws:SourceAccount": w.account},
                              "ArnLike": {"aws:SourceArn": f"arn:{w.partition}:logs:{w.region}:{w.account}:*"}}}]})

        aws.cloudwatch.LogResourcePolicy(f"{self._name}-waf-log-delivery", policy_name="AWSWAF-LOGS",
                                         policy_document=self._where.apply(document), opts=child)

    def _event_log_delivery(self, child: pulumi.ResourceOptions) -> None:
        """EventBridge rules of this account's stacks may write to their `/aws/events/<project>-*` groups."""
        project = self._config.project

        def document(w: Account) -> str:
            groups = f"arn:{w.partition}:logs:{w.region}:{w.account}:log-group:/aws/events/{project}-*:log-stream:*"
            return json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "EventBridgeDeliversToStackEventGroups", "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": groups,
                "Condition": {"StringEquals": {"aws:SourceAccount": w.account},
                              "ArnLike": {"aws:SourceArn": f"arn:{w.partition}:events:{w.region}:{w.account}:rule/{project}-*"}}}]})

        aws.cloudwatch.LogResourcePolicy(f"{self._name}-event-log-delivery", policy_name=f"{project}-event-logs",
                                         policy_document=self._where.apply(document), opts=child)

    # --- per environment -------------------------------------------------------------------------

    def _environment(self, env: str, names: pulumi.Output[Names], provider_arn: pulumi.Output[str],
                     tables: list[aws.dynamodb.Table]) -> aws.iam.Role:
        cfg, base, project = self._config, f"{self._name}-{env}", self._config.project
        child = pulumi.ResourceOptions(parent=self)
        env_tags = {**self._tags, "environment": env}
        aws.iam.Policy(
            f"{base}-boundary", name=boundary_name(project, env),
            description=f"Permissions boundary of every role stack {env} creates",
            policy=names.apply(lambda n: json.dumps(boundary_policy(n))),
            tags={**env_tags, "Name": boundary_name(project, env)}, opts=child)

        role = aws.iam.Role(
            f"{base}-deploy",
            name=cfg.deploy_role_name(env),
            description=f"CI deploys of stack {env}: jobs in the GitHub environment {env} only",
            assume_role_policy=provider_arn.apply(
                lambda arn: json.dumps(github_trust(arn, [deploy_subject(cfg.repository, env)]))),
            # The deploy jobs ask for 3 h (their timeout, ops/delivery/budget.py, is 160 min): a
            # prod rollout, its bake and an automatic rollback outlast the default hour.
            max_session_duration=14400,
            tags={**env_tags, "Name": cfg.deploy_role_name(env)},
            opts=child,
        )
        documents = names.apply(lambda n: deploy_policies(n, cfg.hosted_zone_ids, cfg.domains.get(env, ())))
        for part in DEPLOY_PARTS:
            policy = aws.iam.Policy(
                f"{base}-deploy-{part}", name=f"{cfg.deploy_role_name(env)}-{part}",
                description=f"CI deploys of stack {env}: {part}",
                policy=documents.apply(_part(part)), tags={**env_tags, "Name": f"{cfg.deploy_role_name(env)}-{part}"},
                opts=child)
            aws.iam.RolePolicyAttachment(f"{base}-deploy-{part}", role=role.name, policy_arn=policy.arn,
                                         opts=pulumi.ResourceOptions(parent=self, depends_on=tables))
        self.deploy_role_arns[env] = role.arn
        self.boundary_arns[env] = names.apply(lambda n: n.boundary_arn)

        preview = aws.iam.Role(
            f"{base}-preview",
            name=f"{project}-ci-preview-{env}",
            description=f"CI read-only for stack {env}: pull-request previews and the nightly drift check",
            assume_role_policy=provider_arn.apply(
                lambda arn: json.dumps(github_trust(arn, preview_subjects(cfg.repository, cfg.default_branch)))),
            tags={**env_tags, "Name": f"{project}-ci-preview-{env}"},
            opts=child,
        )
        aws.iam.RolePolicy(f"{base}-preview-read", role=preview.id, name="read-only",
                           policy=names.apply(lambda n: json.dumps(preview_policy(n))), opts=child)
        self.preview_role_arns[env] = preview.arn
        return role

    def _promotion_source(self, env: str, deploy_roles: dict[str, aws.iam.Role]) -> None:
        cfg, base = self._config, f"{self._name}-{env}"
        if not cfg.has_promotion_readers(env):
            return
        readers = self._where.apply(lambda w: cfg.readers_of(env, w))
        name = promotion_source_name(cfg.project, env)
        role = aws.iam.Role(
            f"{base}-promotion-source",
            name=name,
            description=f"Read-only: the release ledger and images of stack {env}, for promotion",
            assume_role_policy=readers.apply(lambda arns: json.dumps(promotion_trust(arns))),
            tags={**self._tags, "environment": env, "Name": name},
            # A trust policy naming a role that does not exist yet is rejected by IAM.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(deploy_roles.values())),
        )
        aws.iam.RolePolicy(f"{base}-promotion-source-read", role=role.id, name="read-only",
                           policy=self._names[env].apply(lambda n: json.dumps(promotion_source_policy(n))),
                           opts=pulumi.ResourceOptions(parent=self))
        self.promotion_source_role_arns[env] = role.arn


def _names(project: str, env: str) -> Callable[[list[Any]], Names]:
    def make(v: list[Any]) -> Names:
        return Names(project=project, env=env, where=v[0], bucket=v[1], state_key_arn=v[2], secrets_key_arn=v[3],
                     lock_table=lock_table(project).name, ledger_table=ledger_table(project).name)
    return make


def _part(part: str) -> Callable[[dict[str, Any]], str]:
    def render(documents: dict[str, Any]) -> str:
        return json.dumps(documents[part])
    return render


def build(config: BootstrapConfig) -> CiBootstrap:
    ci = CiBootstrap("ci", config)
    # What ci/README.md tells you to copy into the repository's variables.
    pulumi.export("PULUMI_BACKEND_URL", ci.backend_url)
    pulumi.export("secrets_providers", ci.secrets_providers)
    pulumi.export("state_bucket", ci.state_bucket)
    pulumi.export("AWS_PREVIEW_ROLE_ARN", ci.preview_role_arns)
    pulumi.export("AWS_DEPLOY_ROLE_ARN", ci.deploy_role_arns)
    pulumi.export("permissions_boundary_arns", ci.boundary_arns)
    pulumi.export("promotion_source_role_arns", ci.promotion_source_role_arns)
    pulumi.export("lock_table", ci.lock_table)
    pulumi.export("ledger_table", ci.ledger_table)
    pulumi.export("oidc_provider_arn", ci.oidc_provider_arn)
    return ci
