"""The token issuer and where tokens are checked, under the mock runtime: Cognito on staging and prod,
the service's AUTH_* environment, and the ALB's jwt-validation rules on a rolling stack with TLS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.aws.listener_rules import AUTH_ENFORCED_BY_TAG, JWT_RULE_PRIORITY_OFFSET, READ_METHODS
from ops.synth import SECRET, Synth, run

POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
RULE = "aws:lb/listenerRule:ListenerRule"
TLS = {"domain": "api.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "deletion_protection": False}
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/"


def app_env(s: Synth) -> dict[str, str]:
    task = s.one("aws:ecs/taskDefinition:TaskDefinition", "services-products-task")["inputs"]
    (app,) = [c for c in json.loads(task["containerDefinitions"]) if c["name"] == "products"]
    return {e["name"]: e["value"] for e in app["environment"]}


def products(config, **route) -> list[dict]:
    svc = config.services[0].model_dump(mode="json", exclude_defaults=True)
    return [{**svc, "routes": [{"path": "/products*", **route}]}]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_get_an_m2m_cognito_issuer(synths, stack):
    s = synths[stack]
    pool = s.one(POOL)["inputs"]
    assert pool["deletionProtection"] == ("ACTIVE" if stack == "prod" else "INACTIVE")
    assert pool["mfaConfiguration"] == "OFF" and pool["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}
    server = s.one("aws:cognito/resourceServer:ResourceServer")["inputs"]
    assert server["identifier"] == "products"
    assert server["scopes"] == [{"scopeName": "write", "scopeDescription": "products: write"}]
    client = s.one(CLIENT)["inputs"]
    assert client["allowedOauthFlows"] == ["client_credentials"] and client["allowedOauthFlowsUserPoolClient"] is True
    assert client["generateSecret"] is True and client["allowedOauthScopes"] == ["products/write"]
    assert client["explicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]  # no user sign-in on an M2M client
    assert (client["accessTokenValidity"], client["tokenValidityUnits"]) == (60, {"accessToken": "minutes"})
    domain = s.one("aws:cognito/userPoolDomain:UserPoolDomain")["inputs"]
    assert domain["domain"] == f"refarch-{stack}-123456789012"  # account id: unique per region


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_client_secret_is_only_in_secrets_manager_under_the_stack_key(synths, stack):
    s = synths[stack]
    secret = s.one("aws:secretsmanager/secret:Secret", "auth-client-secret")["inputs"]
    key = s.one("aws:kms/key:Key")
    assert secret["kmsKeyId"] == key["arn"]
    assert s.one("aws:secretsmanager/secretVersion:SecretVersion", "auth-client-secret-value")["inputs"][
        "secretString"] == SECRET
    outputs = s.to_json()["outputs"]["auth"]
    assert set(outputs) == {"issuer", "jwks_url", "token_endpoint", "client_id", "client_secret_arn"}
    assert outputs["issuer"].startswith(ISSUER) and outputs["jwks_url"] == outputs["issuer"] + "/.well-known/jwks.json"
    assert outputs["token_endpoint"] == (f"https://refarch-{stack}-123456789012.auth.us-east-1.amazoncognito.com"
                                         "/oauth2/token")
    assert "client_secret" not in outputs and SECRET not in json.dumps(s.to_json()["outputs"])


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_service_checks_tokens_from_the_pool(synths, stack):
    s, env = synths[stack], app_env(synths[stack])
    pool_id = s.one(POOL)["id"]
    assert env["AUTH_ISSUER"] == f"{ISSUER}{pool_id}"
    assert env["AUTH_JWKS_URL"] == f"{ISSUER}{pool_id}/.well-known/jwks.json"
    assert env["AUTH_AUDIENCE"] == s.one(CLIENT)["id"]  # Cognito: client_id, not aud
    assert env["AUTH_WRITE_SCOPES"] == "products/write"
    # ECS shifts one production rule: it says the service behind it checks the token.
    production = s.of_type(RULE)  # the production rule and the test rule ECS shifts
    assert len(production) == 2 and all(r["inputs"]["tags"][AUTH_ENFORCED_BY_TAG] == "service" for r in production)


def test_dev_stays_public_and_builds_no_issuer(dev):
    assert not [r for r in dev.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
                if r["name"] == "gateway-alb-out-jwks"]
    assert not dev.of_type(POOL) and not dev.of_type(CLIENT)
    assert not any(name.startswith("AUTH_") for name in app_env(dev))
    assert "auth" not in dev.to_json()["outputs"]
    assert all(AUTH_ENFORCED_BY_TAG not in r["inputs"]["tags"] for r in dev.of_type(RULE))


def test_an_own_issuer_builds_no_pool_and_reaches_the_service(config_of):
    auth = {"issuer": "https://idp.example.com/", "jwks_url": "https://idp.example.com/keys", "audience": "products"}
    base = config_of("dev")
    cfg = config_of("dev", auth=auth, services=products(base, auth="jwt", auth_enforced_by="service",
                                                         scopes=["write"]))
    s = run(cfg, "dev")
    assert not s.of_type(POOL) and not s.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    env = app_env(s)
    assert (env["AUTH_ISSUER"], env["AUTH_JWKS_URL"], env["AUTH_AUDIENCE"], env["AUTH_WRITE_SCOPES"]) == (
        "https://idp.example.com/", "https://idp.example.com/keys", "products", "write")
    assert s.to_json()["outputs"]["auth"]["token_endpoint"] is None


@pytest.fixture(scope="module")
def alb_checked() -> Synth:
    from infra.config import parse
    from ops import stackfile

    values = stackfile.read_values("dev")
    values["refarch:gateway"] = TLS
    services: Any = values["refarch:services"]
    svc = dict(services[0])
    svc["routes"] = [{"path": "/products*", "cache_seconds": 30, "auth": "jwt", "auth_enforced_by": "alb",
                      "scopes": ["products/write"]}]
    values["refarch:services"] = [svc]
    return run(parse(values, "dev", "stacks/Pulumi.dev.yaml"), "dev")


def test_alb_enforcement_splits_the_route_into_public_reads_and_checked_writes(alb_checked):
    s = alb_checked
    public = s.one(RULE, "services-products-rule-0")["inputs"]
    token = s.one(RULE, "services-products-rule-0-token")["inputs"]
    assert token["priority"] == public["priority"] + JWT_RULE_PRIORITY_OFFSET
    assert public["actions"] == [{"type": "forward", "targetGroupArn": public["actions"][0]["targetGroupArn"]}]
    methods = [c["httpRequestMethod"]["values"] for c in public["conditions"] if "httpRequestMethod" in c]
    assert methods == [list(READ_METHODS)]
    # Every other method: path only, the token checked first, then the same target group.
    assert token["conditions"] == [{"pathPattern": {"values": ["/products*"]}}]
    check, forward = sorted(token["actions"], key=lambda a: a["order"])
    pool_id = s.one(POOL)["id"]
    assert check == {"type": "jwt-validation", "order": 1, "jwtValidation": {
        "issuer": f"{ISSUER}{pool_id}", "jwksEndpoint": f"{ISSUER}{pool_id}/.well-known/jwks.json",
        "additionalClaims": [{"name": "scope", "format": "space-separated-values", "values": ["products/write"]}]}}
    assert forward == {"type": "forward", "order": 2, "targetGroupArn": public["actions"][0]["targetGroupArn"]}
    # The ALB checks: the service is not told to check again.
    assert not any(name.startswith("AUTH_") for name in app_env(s))
    listener = s.one("aws:lb/listener:Listener")["inputs"]
    assert listener["protocol"] == "HTTPS"
    # The ALB fetches the JWKS itself: HTTPS out, and only here (the shipped stacks' ALB has no egress of its own).
    out = s.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "gateway-alb-out-jwks")["inputs"]
    assert (out["fromPort"], out["toPort"], out["cidrIpv4"]) == (443, 443, "0.0.0.0/0")


def test_alb_enforcement_satisfies_the_write_auth_policy_and_every_mandatory_one(alb_checked):
    from ops.policy_run import evaluate
    from tests.policy.test_edge_policies import advisory_findings

    assert advisory_findings(alb_checked) == []
    assert [f"{v.policy}: {v.message}" for v in evaluate(alb_checked.to_json()) if v.level == "mandatory"] == []


def test_a_cached_route_with_tokens_forwards_authorization_through_its_cache_key(synths):
    # CloudFront forwards Authorization on a cached behaviour only as part of the cache key.
    def key_headers(stack: str) -> list[list[str]]:
        return [p["inputs"]["parametersInCacheKeyAndForwardedToOrigin"]["headersConfig"]["headers"]["items"]
                for p in synths[stack].of_type("aws:cloudfront/cachePolicy:CachePolicy")]

    assert all("Authorization" in items for items in key_headers("staging") + key_headers("prod"))
    assert all("Authorization" not in items for items in key_headers("dev"))  # no token on dev


def test_the_diagram_shows_the_issuer_reaching_the_alb_that_checks_its_tokens(alb_checked):
    from ops.review import diagram

    graph = diagram.build(alb_checked.to_json())
    pool = graph.by_urn[alb_checked.one("aws:cognito/userPool:UserPool")["urn"]]
    alb = graph.by_urn[alb_checked.one("aws:lb/loadBalancer:LoadBalancer")["urn"]]
    service = graph.by_urn[alb_checked.one("aws:ecs/service:Service")["urn"]]
    assert graph.edges[(pool, alb)].labels == ["JWKS"] and graph.edges[(pool, alb)].dotted
    assert not graph.has_edge(pool, service)  # the ALB checks, the service does not
