"""Every physical AWS name the program derives from project + stack + service, and AWS's rules for it.

The layers take their names from here, and `stack_name_problems` checks them all before any
resource exists: a stack name that cannot give valid names is refused with the reason and a
suggestion, instead of a ValueError (or an AWS error) halfway through a deployment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from infra.config.base import PROJECT

ALB_NAME_MAX = 32
TARGET_GROUP_NAME_MAX = 32
BUCKET_NAME_MAX = 63
DB_IDENTIFIER_MAX = 63
CACHE_GROUP_ID_MAX = 40
IAM_ROLE_MAX = 64
IAM_POLICY_MAX = 128
LAMBDA_NAME_MAX = 64
LOG_GROUP_MAX = 512
ECR_NAME_MAX = 256
FIREHOSE_NAME_MAX = 64
ATHENA_WORKGROUP_MAX = 128
# The longest region name (ap-southeast-7) and an account id: the access log bucket's worst case.
LONGEST_REGION = 14
ACCOUNT_ID_LEN = 12

# IAM role suffixes the service layer creates per service, and the smoke hook's roles.
SERVICE_ROLE_SUFFIXES = ("execution", "task", "migrate-execution", "traffic")
# The analytics layer's roles (infra/aws/analytics.py).
ANALYTICS_ROLE_SUFFIXES = ("firehose", "reader")

_ELB = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_S3 = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_DB = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
_ECR = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_IAM = re.compile(r"^[\w+=,.@-]+$")
_LAMBDA = re.compile(r"^[A-Za-z0-9_-]+$")
_LOG_GROUP = re.compile(r"^[\w./#-]+$")
_FIREHOSE = re.compile(r"^[A-Za-z0-9_.-]+$")
# Service names the schema accepts (others get their own error from the service's field).
_SERVICE = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
_PULUMI_STACK = re.compile(r"^[A-Za-z0-9_.-]+$")


def name_prefix(stack: str, project: str = PROJECT) -> str:
    return f"{project}-{stack}"


def alb_name(prefix: str) -> str:
    return f"{prefix}-alb"


def access_log_bucket(prefix: str, account: str, region: str) -> str:
    return f"{prefix}-alb-logs-{account}-{region}"


def db_identifier(prefix: str) -> str:
    return f"{prefix}-db"


def cache_group_id(prefix: str) -> str:
    return f"{prefix}-cache"


def cache_app_user(prefix: str) -> str:
    return f"{cache_group_id(prefix)}-app"


def analytics_bucket(prefix: str, account: str, region: str) -> str:
    # "-events-" is shorter than the access log bucket's "-alb-logs-": never the longer of the two.
    return f"{prefix}-events-{account}-{region}"


def analytics_stream(prefix: str) -> str:
    return f"{prefix}-events"


def analytics_database(prefix: str) -> str:
    # Athena wants lowercase letters, digits and underscores in names it does not quote.
    return f"{prefix}_analytics".replace("-", "_").lower()


def analytics_workgroup(prefix: str) -> str:
    return f"{prefix}-analytics"


def analytics_role(prefix: str, suffix: str) -> str:
    return f"{prefix}-analytics-{suffix}"


def boundary_name(prefix: str) -> str:
    return f"{prefix}-boundary"


def smoke_hook_function(prefix: str) -> str:
    return f"{prefix}-smoke-hook"


def service_name(prefix: str, service: str) -> str:
    """The ECS service, its roles' stem and its task definition family."""
    return f"{prefix}-{service}"


def role_name(prefix: str, service: str, suffix: str) -> str:
    return f"{service_name(prefix, service)}-{suffix}"


def ecr_repository(prefix: str, service: str) -> str:
    return f"{prefix}/{service}"


def service_log_group(prefix: str, service: str) -> str:
    return f"/ecs/{prefix}/{service}"


def target_group_name(prefix: str, service: str, port: int, alternate: bool = False) -> str:
    """`<prefix>-<service>-<hash>`, at most 32 characters.

    The hash covers the properties that force a replacement (port) so that Pulumi's
    create-before-delete never collides with the old group's name; it covers the service name
    so that truncation can never give two services one name, and the role of the group so that
    a traffic-shifting service's alternate group never takes its primary group's name.
    """
    digest = hashlib.sha256(f"{service}/{port}/HTTP/ip{'/alternate' if alternate else ''}".encode()).hexdigest()[:4]
    base = f"{prefix}-{service}"[: TARGET_GROUP_NAME_MAX - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}"


def _check(kind: str, name: str, maximum: int, pattern: re.Pattern[str], rule: str) -> str | None:
    if len(name) > maximum:
        return f"{kind} {name!r} would be {len(name)} characters, AWS allows {maximum}"
    if not pattern.match(name):
        return f"{kind} {name!r} is not valid: {rule}"
    return None


def names_of(stack: str, region: str, services: Iterable[tuple[str, int]], project: str = PROJECT
             ) -> list[tuple[str, str, int, re.Pattern[str], str]]:
    """(kind, name, max length, pattern, rule) for every physical name of the stack."""
    prefix = name_prefix(stack, project)
    region = region if isinstance(region, str) and region else "x" * LONGEST_REGION
    letters = "letters, digits and single hyphens, starting with a letter, not ending with a hyphen"
    names = [
        ("load balancer name", alb_name(prefix), ALB_NAME_MAX, _ELB,
         "letters, digits and hyphens, not starting or ending with a hyphen"),
        ("access log bucket", access_log_bucket(prefix, "0" * ACCOUNT_ID_LEN, region), BUCKET_NAME_MAX, _S3,
         "lowercase letters, digits, dots and hyphens"),
        ("RDS instance identifier", db_identifier(prefix), DB_IDENTIFIER_MAX, _DB, "lowercase " + letters),
        ("ElastiCache replication group id", cache_group_id(prefix), CACHE_GROUP_ID_MAX, _DB, "lowercase " + letters),
        ("ElastiCache user id", cache_app_user(prefix), CACHE_GROUP_ID_MAX, _DB, "lowercase " + letters),
        ("IAM permissions boundary", boundary_name(prefix), IAM_POLICY_MAX, _IAM, "letters, digits and +=,.@_-"),
        ("Lambda function", smoke_hook_function(prefix), LAMBDA_NAME_MAX, _LAMBDA, "letters, digits, - and _"),
        ("IAM role", f"{smoke_hook_function(prefix)}-invoke", IAM_ROLE_MAX, _IAM, "letters, digits and +=,.@_-"),
        ("analytics bucket", analytics_bucket(prefix, "0" * ACCOUNT_ID_LEN, region), BUCKET_NAME_MAX, _S3,
         "lowercase letters, digits, dots and hyphens"),
        ("Firehose delivery stream", analytics_stream(prefix), FIREHOSE_NAME_MAX, _FIREHOSE, "letters, digits, _ . -"),
        ("Athena workgroup", analytics_workgroup(prefix), ATHENA_WORKGROUP_MAX, _FIREHOSE, "letters, digits, _ . -"),
        *[("IAM role", analytics_role(prefix, suffix), IAM_ROLE_MAX, _IAM, "letters, digits and +=,.@_-")
          for suffix in ANALYTICS_ROLE_SUFFIXES],
    ]
    for service, port in services:
        names += [("IAM role", role_name(prefix, service, suffix), IAM_ROLE_MAX, _IAM, "letters, digits and +=,.@_-")
                  for suffix in SERVICE_ROLE_SUFFIXES]
        names += [
            ("ECR repository", ecr_repository(prefix, service), ECR_NAME_MAX, _ECR,
             "lowercase letters and digits, separated by single '.', '_', '-' or '/'"),
            ("log group", service_log_group(prefix, service), LOG_GROUP_MAX, _LOG_GROUP, "letters, digits and ._-/#"),
        ]
        names += [("target group", target_group_name(prefix, service, port, alternate), TARGET_GROUP_NAME_MAX, _ELB,
                   "letters, digits and hyphens, not starting or ending with a hyphen") for alternate in (False, True)]
    return names


def suggest_stack(stack: str, region: object = None) -> str:
    """A stack name close to `stack` that gives valid names everywhere (in `region`, else the longest)."""
    clean = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", stack.lower())).strip("-") or "dev"
    if not clean[0].isalpha():
        clean = f"s{clean}"
    while clean and stack_name_problems_bare(clean, region):
        clean = clean[:-1].rstrip("-")
    return clean or "dev"


def stack_name_problems(stack: str, region: object, services: object, project: str = PROJECT) -> list[str]:
    """Why `stack` cannot name this stack's resources (empty: it can), with a suggested name."""
    if not _PULUMI_STACK.match(stack or ""):
        return [f"stack name {stack!r}: Pulumi stack names are letters, digits, '-', '_' and '.' "
                f"(try {suggest_stack(stack or 'dev')!r})"]
    pairs: list[tuple[str, int]] = []
    if isinstance(services, list):
        for svc in services:
            if isinstance(svc, dict) and isinstance(svc.get("name"), str) and _SERVICE.match(svc["name"]):
                port = svc.get("port", 8080)
                pairs.append((svc["name"], port if isinstance(port, int) else 8080))
    problems = []
    for kind, name, maximum, pattern, rule in names_of(stack, region if isinstance(region, str) else "", pairs, project):
        problem = _check(kind, name, maximum, pattern, rule)
        if problem:
            problems.append(problem)
    if not problems:
        return []
    # Service-derived names too long may be the service's fault rather than the stack's.
    stack_only = not stack_name_problems_bare(stack, region, project)
    where = "services" if stack_only else "stack name"
    hint = ("use a shorter service name" if stack_only else f"try stack name {suggest_stack(stack, region)!r}")
    more = f"; {len(problems) - 1} more names fail the same way" if len(problems) > 1 else ""
    return [f"{where}: stack {stack!r} gives an invalid name: {problems[0]} ({hint}{more})"]


def stack_name_problems_bare(stack: str, region: object, project: str = PROJECT) -> list[str]:
    """The problems of the names that depend on the stack alone."""
    out = []
    for kind, name, maximum, pattern, rule in names_of(stack, region if isinstance(region, str) else "", [], project):
        problem = _check(kind, name, maximum, pattern, rule)
        if problem:
            out.append(problem)
    return out
