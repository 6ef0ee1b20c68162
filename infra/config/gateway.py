"""`refarch:gateway` and the routes services claim on it."""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.config.auth import scope_problem
from infra.config.base import Strict

# ALB condition rules (Elastic Load Balancing: listener rule conditions).
PATTERN_MAX = 128
_PATH_CHARS = re.compile(r"^[A-Za-z0-9_\-.$/~\"'@:+&*?]+$")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-.*?]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")


def domain_name(value: str | None) -> str | None:
    """A DNS name Route 53, ACM and CloudFront all accept (None passes: the field is optional)."""
    if value is not None and not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name (lowercase labels of letters, digits and '-', "
                         f"each <= 63 characters, <= 253 in all)")
    return value


def host_pattern_problem(value: str) -> str | None:
    if len(value) > PATTERN_MAX:
        return f"host {value!r} is {len(value)} characters, an ALB host condition allows {PATTERN_MAX}"
    if not _HOST_CHARS.match(value):
        return f"host {value!r} may hold only letters, digits, '-', '.', '*' and '?' (ALB host condition)"
    if "." not in value or not re.search(r"\.[A-Za-z*?]+$", value):
        return f"host {value!r} needs a '.' and only letters after the last one (ALB host condition)"
    return None


class GatewayConfig(Strict):
    # TLS: either an existing ACM certificate, or a domain in a Route 53 zone to issue one for.
    certificate_arn: str | None = None
    domain: str | None = None
    hosted_zone_id: str | None = None
    # The regional WAF: the edge's (CLOUDFRONT scope) covers every request now, so one here only
    # with a stated reason (say, a second path to the ALB that bypasses CloudFront).
    waf: bool = False
    waf_reason: str | None = None
    waf_rate_limit: Annotated[int, Field(ge=100, le=2_000_000_000)] = 2000  # requests / 5 min / IP
    access_logs: bool = True
    deletion_protection: bool = True
    idle_timeout: Annotated[int, Field(ge=1, le=4000)] = 60

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return domain_name(value)

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and not _ZONE_ID.match(value):
            raise ValueError(f"{value!r} is not a Route 53 hosted zone id (Z followed by up to 31 "
                             f"uppercase letters and digits)")
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/", value):
            raise ValueError(f"{value!r} is not an ACM certificate ARN")
        return value

    @model_validator(mode="after")
    def _domain_needs_zone(self) -> GatewayConfig:
        if self.domain and not self.hosted_zone_id and not self.certificate_arn:
            raise ValueError("domain needs hosted_zone_id (to validate the certificate) or certificate_arn")
        if self.waf and not self.waf_reason:
            raise ValueError("waf: the edge's web ACL already filters every request; a regional one needs waf_reason")
        return self

    @property
    def tls(self) -> bool:
        return bool(self.certificate_arn or self.domain)


CACHE_SECONDS_MAX = 31_536_000  # CloudFront's largest TTL (one year)


class Route(Strict):
    path: str = "/*"
    host: str | None = None
    # jwt: write methods (POST, PUT, PATCH, DELETE) need a bearer token (RS256) from the stack's issuer
    # (refarch:auth) carrying `scopes`; reads stay public. none: everything public.
    auth: Literal["none", "jwt"] = "none"
    # Who checks the token: the ALB's jwt-validation action (HTTPS listener, rolling deployments) or
    # the service itself (infra/config/auth.py says where each is possible).
    auth_enforced_by: Literal["alb", "service"] | None = None
    scopes: list[str] = []  # all required, in the token's space-separated `scope` claim
    # > 0: CloudFront caches GET/HEAD answers this long at most (the TTL caps the origin's Cache-Control).
    cache_seconds: Annotated[int, Field(ge=0, le=CACHE_SECONDS_MAX)] = 0
    cache_query_string: bool = True  # the query string is part of the cache key (and reaches the origin)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path {value!r} must start with '/'")
        if len(value) > PATTERN_MAX:
            raise ValueError(f"path {value!r} is {len(value)} characters, an ALB path condition allows {PATTERN_MAX}")
        if not _PATH_CHARS.match(value):
            raise ValueError(f"path {value!r} may hold only letters, digits and _-.$/~\"'@:+&*? (ALB path condition)")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            problem = scope_problem(scope)
            if problem:
                raise ValueError(problem)
        if len(set(value)) != len(value):
            raise ValueError(f"scopes {value} names a scope twice")
        return value

    @model_validator(mode="after")
    def _auth_fields(self) -> Route:
        if self.auth == "none" and (self.auth_enforced_by or self.scopes):
            extra = "auth_enforced_by" if self.auth_enforced_by else "scopes"
            raise ValueError(f"{extra} applies to auth: jwt only (this route is auth: none)")
        return self

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        problem = value is not None and host_pattern_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def prefix(self) -> str:
        return re.split(r"[*?]", self.path, maxsplit=1)[0]

    def _host_key(self) -> str:
        return (self.host or "").lower()

    def _path_covers(self, other: Route) -> bool:
        """Whether every path `other` matches, this route matches too."""
        mine = self.prefix()
        return self.path == other.path or (mine != self.path and other.prefix().startswith(mine))

    def overlaps(self, other: Route) -> bool:
        """Same host, paths that can both match one request: which service gets it is a priority accident."""
        if self._host_key() != other._host_key():
            return False
        return self._path_covers(other) or other._path_covers(self)

    def shadows(self, other: Route) -> bool:
        """Whether this route, matched first, leaves `other` (another host pattern) no request at all.

        A route without a host matches every host, a wildcard host every host it matches.
        """
        if self._host_key() == other._host_key():
            return False
        if self.host is not None and (other.host is None or not fnmatch.fnmatchcase(other._host_key(), self._host_key())):
            return False
        return self._path_covers(other)

    def __str__(self) -> str:
        return f"{self.host or '*'}{self.path}"
