"""`refarch:auth` and the routes' `auth: jwt`: who issues tokens, who checks them, and where each can."""

from __future__ import annotations

import pytest

from infra.config.auth import cognito_of, required_scopes
from tests.config.stack_values import problems

DEV = "stacks/Pulumi.dev.yaml"
PROD = "stacks/Pulumi.prod.yaml"


def products(*routes: dict, **fields) -> list[dict]:
    return [{"name": "products", "build": "services/products", "port": 8080, "cpu": 256, "memory": 512,
             "desired_count": 1, "min_count": 1, "max_count": 2, "routes": list(routes), **fields}]


JWT_SERVICE = {"path": "/products*", "auth": "jwt", "auth_enforced_by": "service", "scopes": ["products/write"]}
JWT_ALB = {**JWT_SERVICE, "auth_enforced_by": "alb"}
TLS = {"domain": "api.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "deletion_protection": False}


def test_service_enforcement_is_valid_everywhere_a_nat_exists(config_of):
    for stack in ("dev", "staging", "prod"):
        config = config_of(stack, services=products(JWT_SERVICE))
        assert config.services[0].routes[0].auth_enforced_by == "service"
        # No issuer named: Cognito builds one, with the scopes the routes require.
        assert cognito_of(config) is not None and required_scopes(config) == ["products/write"]


def test_auth_jwt_without_an_enforcer_is_refused_naming_the_choices():
    route = {"path": "/products*", "auth": "jwt", "scopes": ["products/write"]}
    assert problems("dev", refarch__services=products(route)) == [
        f"{DEV}: refarch:services[0].routes[0]: auth: jwt needs auth_enforced_by: alb (the ALB's jwt-validation "
        "action; HTTPS listener and rolling deployments only) or service (the service checks the token itself)"]


def test_enforced_by_is_alb_or_service_only():
    route = {**JWT_SERVICE, "auth_enforced_by": "the service verifies tokens itself"}
    (line,) = problems("dev", refarch__services=products(route))
    assert line.startswith(f"{DEV}: refarch:services[0].routes[0].auth_enforced_by: ")
    assert "'alb' or 'service'" in line


def test_alb_enforcement_needs_an_https_listener():
    assert problems("dev", refarch__services=products(JWT_ALB)) == [
        f"{DEV}: refarch:services[0].routes[0]: auth_enforced_by alb: the ALB has no HTTPS listener for its "
        "jwt-validation action (set gateway.certificate_arn or gateway.domain), or use auth_enforced_by: service"]


def test_alb_enforcement_needs_rolling_deployments():
    # prod has TLS and deploys canary: one production rule per service, shifted by ECS.
    assert problems("prod", refarch__services=products(JWT_ALB, desired_count=3, min_count=3, max_count=12,
                                                         cpu=512, memory=1024)) == [
        f"{PROD}: refarch:services[0].routes[0]: auth_enforced_by alb: strategy canary shifts traffic on one "
        "listener rule per service, so reads and token-checked writes cannot be two rules; use "
        "auth_enforced_by: service (or strategy rolling)"]


def test_alb_enforcement_with_tls_and_rolling_is_accepted(config_of):
    config = config_of("dev", gateway=TLS, services=products(JWT_ALB))
    assert config.services[0].routes[0].auth_enforced_by == "alb"


def test_service_enforcement_needs_a_way_out_for_the_keys():
    assert problems("dev", refarch__network={"az_count": 2, "nat": "none"}, refarch__services=products(JWT_SERVICE)) == [
        f"{DEV}: refarch:services[0].routes[0]: auth_enforced_by service: network.nat none leaves the tasks no "
        "way to fetch the issuer's keys (JWKS); use a NAT"]


@pytest.mark.parametrize(("route", "message"), [
    ({"path": "/products*", "auth_enforced_by": "service"},
     "refarch:services[0].routes[0]: auth_enforced_by applies to auth: jwt only (this route is auth: none)"),
    ({"path": "/products*", "scopes": ["products/write"]},
     "refarch:services[0].routes[0]: scopes applies to auth: jwt only (this route is auth: none)"),
    ({**JWT_SERVICE, "scopes": ["products write"]},
     "refarch:services[0].routes[0].scopes: scope 'products write' is not an OAuth scope (printable ASCII, "
     "no spaces, quotes or backslashes)"),
    ({**JWT_SERVICE, "scopes": ["products/write", "products/write"]},
     "refarch:services[0].routes[0].scopes: scopes ['products/write', 'products/write'] names a scope twice"),
    ({**JWT_SERVICE, "scopes": ["write"]},
     "refarch:services[0].routes[0].scopes[0]: 'write' is not a Cognito custom scope (<resource server>/<scope>, "
     "e.g. products/write)"),
])
def test_route_auth_fields_are_checked_with_their_path(route, message):
    assert problems("dev", refarch__services=products(route)) == [f"{DEV}: {message}"]


def test_a_cognito_client_needs_a_scope():
    route = {**JWT_SERVICE, "scopes": []}
    assert problems("dev", refarch__services=products(route)) == [
        f"{DEV}: refarch:auth.cognito: the machine-to-machine client (client_credentials) needs at least one "
        "custom scope: give the auth: jwt routes scopes (e.g. products/write)"]


def test_a_service_checking_tokens_checks_them_on_every_route():
    other = {"path": "/orders*"}
    assert problems("dev", refarch__services=products(JWT_SERVICE, other)) == [
        f"{DEV}: refarch:services[0].routes: auth_enforced_by service makes products check tokens on every write "
        "it serves; routes 1 must say auth: jwt, auth_enforced_by: service too"]
    assert problems("dev", refarch__services=products(JWT_SERVICE, {**JWT_SERVICE, "path": "/orders*",
                                                                      "scopes": ["orders/write"]})) == [
        f"{DEV}: refarch:services[0].routes: products checks one set of scopes on all its writes; give its routes "
        "the same scopes"]
    assert problems("dev", refarch__services=products(JWT_SERVICE, {**JWT_SERVICE, "path": "/orders*"})) == []


def test_an_issuer_nothing_uses_is_refused():
    assert problems("dev", refarch__auth={"cognito": {}}) == [
        f"{DEV}: refarch:auth: no route has auth: jwt, so nothing would use this issuer; drop the section or give "
        "routes auth: jwt"]


def test_an_own_issuer_takes_any_scope_and_builds_no_pool(config_of):
    auth = {"issuer": "https://idp.example.com/", "jwks_url": "https://idp.example.com/.well-known/jwks.json",
            "audience": "products-api"}
    config = config_of("dev", auth=auth, services=products({**JWT_SERVICE, "scopes": ["write"]}))
    assert cognito_of(config) is None and config.auth.audience == "products-api"


@pytest.mark.parametrize(("auth", "message"), [
    ({"issuer": "https://idp.example.com/"},
     "refarch:auth: jwks_url: an issuer of the stack's own needs both issuer and jwks_url"),
    ({"issuer": "http://idp.example.com/", "jwks_url": "https://idp.example.com/keys"},
     "refarch:auth.issuer: 'http://idp.example.com/' is not an https:// URL (the ALB and the service fetch keys "
     "over TLS only)"),
    ({"issuer": "https://idp.example.com/", "jwks_url": "https://idp.example.com/keys", "cognito": {}},
     "refarch:auth: cognito: the stack names its own issuer; drop one of them"),
    ({"cognito": {"domain_prefix": "my-cognito-pool"}},
     "refarch:auth.cognito.domain_prefix: domain_prefix 'my-cognito-pool' contains 'cognito', which Cognito "
     "reserves"),
    ({"cognito": {"domain_prefix": "-bad"}},
     "refarch:auth.cognito.domain_prefix: domain_prefix '-bad': Cognito takes 1 to 63 lowercase letters, digits "
     "and '-', not starting or ending with '-'"),
    ({"cognito": {"access_token_minutes": 2}},
     "refarch:auth.cognito.access_token_minutes: Input should be greater than or equal to 5"),
    ({"cognito": {}, "audience": "x"},
     "refarch:auth: audience: Cognito access tokens carry no aud claim (their client_id is checked)"),
    ({"isuer": "https://idp.example.com/"}, "refarch:auth.isuer:"),
])
def test_auth_section_problems_name_their_field(auth, message):
    lines = problems("dev", refarch__auth=auth, refarch__services=products(JWT_SERVICE))
    assert len(lines) == 1 and lines[0].startswith(f"{DEV}: {message}"), lines


def test_a_cached_route_may_guard_its_writes(config_of):
    # CloudFront caches GET/HEAD only, and those stay public under auth: jwt.
    config = config_of("dev", services=products({**JWT_SERVICE, "cache_seconds": 30}))
    assert config.services[0].routes[0].cache_seconds == 30


def test_the_local_target_refuses_tokens_it_would_not_check():
    (line,) = problems("local", refarch__services=products(JWT_SERVICE))
    assert "the local target passes no issuer to the service" in line
