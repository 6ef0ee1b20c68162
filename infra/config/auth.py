"""`refarch:auth`: who issues the bearer tokens that routes with `auth: jwt` require.

Either the stack names its own IdP (`issuer` + `jwks_url`, optionally `audience`), or a Cognito
user pool is built for it (`cognito`, also the default when a route needs a token and the stack
names no issuer). `auth: jwt` guards a route's write methods; its reads stay public (and cacheable).
Where the token is checked is per route (`auth_enforced_by`): rules spanning sections are here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, field_validator, model_validator

from infra.config.base import Strict

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

# RFC 6749 section 3.3: a scope token is printable ASCII without space, '"' or '\'.
SCOPE = re.compile(r'^[\x21\x23-\x5B\x5D-\x7E]{1,256}$')
# Cognito custom scopes are `<resource server identifier>/<scope name>`; the name allows no '/'.
COGNITO_SCOPE = re.compile(r"^([\x21\x23-\x2E\x30-\x5B\x5D-\x7E]{1,256})/([\x21\x23-\x2E\x30-\x5B\x5D-\x7E]{1,256})$")
# Cognito's user pool domain prefix: lowercase letters, digits and '-', 1..63, no reserved words.
DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN_RESERVED = ("aws", "amazon", "cognito")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def scope_problem(value: str) -> str | None:
    if not SCOPE.match(value):
        return f"scope {value!r} is not an OAuth scope (printable ASCII, no spaces, quotes or backslashes)"
    return None


class CognitoConfig(Strict):
    # None: `<name prefix>-<account id>`, unique per account and region as Cognito requires.
    domain_prefix: str | None = None
    # Machine-to-machine access tokens live this long (Cognito: 5 minutes to 1 day).
    access_token_minutes: Annotated[int, Field(ge=5, le=1440)] = 60

    @field_validator("domain_prefix")
    @classmethod
    def _domain_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not DOMAIN_PREFIX.match(value):
            raise ValueError(f"domain_prefix {value!r}: Cognito takes 1 to 63 lowercase letters, digits and '-', "
                             f"not starting or ending with '-'")
        reserved = [word for word in DOMAIN_RESERVED if word in value]
        if reserved:
            raise ValueError(f"domain_prefix {value!r} contains {reserved[0]!r}, which Cognito reserves")
        return value


class AuthConfig(Strict):
    # The stack's own IdP: both or neither.
    issuer: str | None = None
    jwks_url: str | None = None
    audience: str | None = None  # checked against `aud` when set (Cognito access tokens carry client_id)
    cognito: CognitoConfig | None = None

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https://[A-Za-z0-9.-]+(?::\d+)?(?:/\S*)?$", value):
            raise ValueError(f"{value!r} is not an https:// URL (the ALB and the service fetch keys over TLS only)")
        return value

    @model_validator(mode="after")
    def _one_issuer(self) -> AuthConfig:
        if (self.issuer is None) != (self.jwks_url is None):
            missing = "jwks_url" if self.jwks_url is None else "issuer"
            raise ValueError(f"{missing}: an issuer of the stack's own needs both issuer and jwks_url")
        if self.issuer and self.cognito is not None:
            raise ValueError("cognito: the stack names its own issuer; drop one of them")
        if self.audience and self.cognito is not None:
            raise ValueError("audience: Cognito access tokens carry no aud claim (their client_id is checked)")
        return self

    @property
    def own_issuer(self) -> bool:
        return self.issuer is not None


def needs_tokens(config: StackConfig) -> bool:
    return any(route.auth == "jwt" for svc in config.services for route in svc.routes)


def cognito_of(config: StackConfig) -> CognitoConfig | None:
    """The user pool to build: the configured one, or the default when a route needs tokens."""
    auth = config.auth
    if auth.own_issuer or not needs_tokens(config):
        return None
    return auth.cognito or CognitoConfig()


def required_scopes(config: StackConfig) -> list[str]:
    return sorted({s for svc in config.services for route in svc.routes for s in route.scopes})


def auth_problems(config: StackConfig) -> list[str]:
    """Where each `auth: jwt` route's token is checked, and whether that place can check it."""
    problems: list[str] = []
    gateway, deployment = config.gateway, config.delivery.deployment
    cognito = not config.auth.own_issuer
    for i, svc in enumerate(config.services):
        for j, route in enumerate(svc.routes):
            where = f"services[{i}].routes[{j}]"
            if route.auth == "none":
                continue
            if config.target == "local":
                problems.append(f"{where}: auth: jwt: the local target passes no issuer to the service, so nothing "
                                f"would check the token; keep local routes auth: none")
            elif route.auth_enforced_by is None:
                # Refused rather than accepted and silently unenforced (docs/edge.md, "Authentication").
                problems.append(f"{where}: auth: jwt needs auth_enforced_by: alb (the ALB's jwt-validation action; "
                                f"HTTPS listener and rolling deployments only) or service (the service checks "
                                f"the token itself)")
            elif route.auth_enforced_by == "alb":
                if not gateway.tls:
                    problems.append(f"{where}: auth_enforced_by alb: the ALB has no HTTPS listener for its "
                                    f"jwt-validation action (set gateway.certificate_arn or gateway.domain), "
                                    f"or use auth_enforced_by: service")
                if not deployment.rolling:
                    problems.append(f"{where}: auth_enforced_by alb: strategy {deployment.strategy} shifts "
                                    f"traffic on one listener rule per service, so reads and token-checked writes "
                                    f"cannot be two rules; use auth_enforced_by: service (or strategy rolling)")
            elif config.network.nat == "none":
                problems.append(f"{where}: auth_enforced_by service: network.nat none leaves the tasks no way to "
                                f"fetch the issuer's keys (JWKS); use a NAT")
            if cognito:
                for k, scope in enumerate(route.scopes):
                    if not COGNITO_SCOPE.match(scope):
                        problems.append(f"{where}.scopes[{k}]: {scope!r} is not a Cognito custom scope "
                                        f"(<resource server>/<scope>, e.g. products/write)")
    for i, svc in enumerate(config.services):
        # The service checks every write it serves, whichever route carried it: its routes agree.
        checked = [(j, r) for j, r in enumerate(svc.routes) if r.auth_enforced_by == "service"]
        if checked and len(checked) < len(svc.routes):
            open_routes = [str(j) for j, r in enumerate(svc.routes) if r.auth_enforced_by != "service"]
            problems.append(f"services[{i}].routes: auth_enforced_by service makes {svc.name} check tokens on "
                            f"every write it serves; routes {', '.join(open_routes)} must say auth: jwt, "
                            f"auth_enforced_by: service too")
        elif len({tuple(sorted(r.scopes)) for _, r in checked}) > 1:
            problems.append(f"services[{i}].routes: {svc.name} checks one set of scopes on all its writes; "
                            f"give its routes the same scopes")
    if not needs_tokens(config) and (config.auth.cognito is not None or config.auth.own_issuer):
        problems.append("auth: no route has auth: jwt, so nothing would use this issuer; drop the section or "
                        "give routes auth: jwt")
    if cognito_of(config) is not None and not required_scopes(config):
        problems.append("auth.cognito: the machine-to-machine client (client_credentials) needs at least one "
                        "custom scope: give the auth: jwt routes scopes (e.g. products/write)")
    return problems
