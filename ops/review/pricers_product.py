"""Pricers of the product layers (auth, feature flags, analytics): charges that follow usage.

Apart from `pricers` because each rests on a stated usage assumption (token requests, agent polls,
events and queries a month, from `refarch:usage`) rather than on what the synth alone says.
"""

from __future__ import annotations

from ops.review.cost_model import Charge, Ctx, Free, NotPriced, num


def _user_pool_client(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    if "client_credentials" not in (inputs.get("allowedOauthFlows") or []):
        raise Free("an app client for user sign-in: users are priced as MAUs on the pool")
    cognito = ctx.p["cognito"]
    # Usage assumption: one caller that caches its access token and fetches a new one as it expires
    # (AWS's own advice for M2M), so a month is 730 h / the token's validity in requests.
    minutes = float(inputs.get("accessTokenValidity") or 60)
    if (inputs.get("tokenValidityUnits") or {}).get("accessToken", "hours") == "hours":
        minutes *= 60
    requests = ctx.hours * 60 / minutes
    return [
        Charge("Cognito M2M app client", 1, "client-month", cognito["m2m_app_client_month"]),
        Charge(f"M2M token requests (one caller caching a {num(minutes)}-minute token)", requests / 1000,
               "1k requests", cognito["m2m_token_requests_per_1k"]),
    ]
# Usage assumption for AppConfig: each running task receives its flags at start and after each flag
# change; 4 changes and 1 task replacement a month.
APPCONFIG_RECEIVED_PER_TASK_MONTH = 5
APPCONFIG_AGENT = "appconfig-agent"


def _appconfig_profile(r: dict, ctx: Ctx) -> list[Charge]:
    """The agents that poll this stack's profile: every service task with the agent sidecar."""
    import json

    seconds = ctx.hours * 3600
    polls = tasks = 0.0
    for service in ctx.index.of_type("aws:ecs/service:Service"):
        task = ctx.index.get(service["inputs"].get("taskDefinition"))
        raw = (task or {}).get("inputs", {}).get("containerDefinitions") or "[]"
        agents = [c for c in (json.loads(raw) if isinstance(raw, str) else raw) if c.get("name") == APPCONFIG_AGENT]
        if not agents:
            continue
        env = {e["name"]: e["value"] for e in agents[0].get("environment") or []}
        desired = float(service["inputs"].get("desiredCount") or 0)
        tasks += desired
        polls += desired * seconds / float(env.get("POLL_INTERVAL", 45))  # 45 s: the agent's default
    if not tasks:
        raise Free("no task polls the profile")
    price = ctx.p["appconfig"]
    return [Charge(f"configuration requests ({num(tasks)} task(s) polling)", polls, "request", price["request"]),
            Charge(f"configurations received ({APPCONFIG_RECEIVED_PER_TASK_MONTH} per task a month: start and flag "
                   f"changes)", tasks * APPCONFIG_RECEIVED_PER_TASK_MONTH, "configuration", price["received"])]


def _free(reason: str):
    def price(r: dict, ctx: Ctx) -> list[Charge]:
        raise Free(reason)
    return price
def _usage(ctx: Ctx, name: str, default: float) -> float:
    return float(getattr(ctx.usage, name, default))


def _firehose(r: dict, ctx: Ctx) -> list[Charge]:
    """Ingestion and Parquet conversion by the 5 KB-rounded volume, and the Parquet it keeps in S3."""
    fh, s3 = ctx.p["firehose"], ctx.p["s3"]
    events = _usage(ctx, "events_per_month", 0)
    # Every record is billed as at least 5 KB: the service sends one event per record, each < 5 KB.
    billed_gb = events * fh["record_increment_kb"] * 1024 / 1e9
    conversion = (r["inputs"].get("extendedS3Configuration") or {}).get("dataFormatConversionConfiguration") or {}
    charges = [Charge(f"ingestion ({num(events)} events/month, usage.events_per_month, 5 KB each as billed)",
                      billed_gb, "GB", fh["ingest_gb"])]
    if conversion.get("enabled"):
        charges.append(Charge("JSON to Parquet conversion (same billed volume)", billed_gb, "GB",
                              fh["format_conversion_gb"]))
    monthly_gb = events * _usage(ctx, "event_parquet_bytes", 100) / 1e9
    standard_days, kept_days = _event_lifecycle(ctx)
    ia_days = max(kept_days - standard_days, 0)
    # Steady state: each month's data sits in Standard for `standard_days`, then in IA until expiry.
    charges += [
        Charge(f"S3 Standard: events, {standard_days} days (usage.event_parquet_bytes per event)",
               monthly_gb * standard_days / 30, "GB-month", s3["standard_gb_month"]),
        Charge(f"S3 Standard-IA: events, days {standard_days}..{kept_days}", monthly_gb * ia_days / 30, "GB-month",
               s3["standard_ia_gb_month"]),
        # Firehose writes an object per buffer interval (or full buffer): at most one per interval.
        # The services' own metrics of what they sent and dropped (products.events, EMF), one Stream dimension.
        Charge("custom metrics ProductEvents EventsSent / EventsDropped", 2, "metric-month",
               ctx.p["cloudwatch_custom_metrics"]["metric_month"]),
        Charge("S3 PUTs (one object per buffer interval at most)",
               ctx.hours * 3600 / max(int((r["inputs"].get("extendedS3Configuration") or {}).get("bufferingInterval")
                                          or 300), 60) / 1000, "1k requests", s3["put_per_1000"]),
    ]
    return charges


def _event_lifecycle(ctx: Ctx) -> tuple[int, int]:
    """(days in Standard, days kept) of the analytics bucket's `events` lifecycle rule."""
    for lifecycle in ctx.index.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        for rule in lifecycle["inputs"].get("rules") or []:
            if rule.get("id") == "events":
                transitions = rule.get("transitions") or [{}]
                kept = int((rule.get("expiration") or {}).get("days") or 0)
                return int(transitions[0].get("days") or kept), kept
    raise NotPriced("the analytics bucket's `events` lifecycle rule is not in this stack")


def _athena_workgroup(r: dict, ctx: Ctx) -> list[Charge]:
    athena = ctx.p["athena"]
    queries = _usage(ctx, "athena_queries_per_month", 0)
    per_query_gb = max(_usage(ctx, "athena_gb_per_query", 0), athena["min_mb_per_query"] / 1000)
    return [Charge(f"data scanned ({num(queries)} queries × {num(per_query_gb)} GB, usage.athena_*; "
                   f"{athena['min_mb_per_query']} MB minimum each)", queries * per_query_gb / 1000, "TB",
                   athena["tb_scanned"])]


def _glue(r: dict, ctx: Ctx) -> list[Charge]:
    raise Free(f"Glue Data Catalog: within the first {ctx.p['glue']['free_objects']:,} objects and "
               f"{ctx.p['glue']['free_requests']:,} requests a month, which are free")


PRODUCT_PRICERS = {
    "aws:cognito/userPoolClient:UserPoolClient": _user_pool_client,
    # Cognito bills user pools per monthly active user: an M2M-only pool has none.
    "aws:cognito/userPool:UserPool": _free("billed per monthly active user; an M2M-only pool has none"),
    "aws:cognito/userPoolDomain:UserPoolDomain": _free("no charge; token requests are priced on the app client"),
    "aws:cognito/resourceServer:ResourceServer": _free("no charge"),
    "aws:appconfig/configurationProfile:ConfigurationProfile": _appconfig_profile,
    **{f"aws:appconfig/{kind}": _free("no charge: AppConfig bills configuration requests and receipts (the profile)")
       for kind in ("application:Application", "environment:Environment", "deploymentStrategy:DeploymentStrategy",
                    "hostedConfigurationVersion:HostedConfigurationVersion", "deployment:Deployment")},
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": _firehose,
    "aws:athena/workgroup:Workgroup": _athena_workgroup,
    "aws:glue/catalogDatabase:CatalogDatabase": _glue,
    "aws:glue/catalogTable:CatalogTable": _glue,
}
