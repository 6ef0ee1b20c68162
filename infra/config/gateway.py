"""`refarch:gateway` and the routes services claim on it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from infra.config.base import Strict


class GatewayConfig(Strict):
    # TLS: either an existing ACM certificate, or a domain in a Route 53 zone to issue one for.
    certificate_arn: str | None = None
    domain: str | None = None
    hosted_zone_id: str | None = None
    waf: bool = True
    waf_rate_limit: Annotated[int, Field(ge=100, le=2_000_000_000)] = 2000  # requests / 5 min / IP
    access_logs: bool = True
    deletion_protection: bool = True
    idle_timeout: Annotated[int, Field(ge=1, le=4000)] = 60

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
        return self

    @property
    def tls(self) -> bool:
        return bool(self.certificate_arn or self.domain)


class Route(Strict):
    path: str = "/*"
    host: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path {value!r} must start with '/'")
        return value

    def prefix(self) -> str:
        return re.split(r"[*?]", self.path, maxsplit=1)[0]

    def overlaps(self, other: Route) -> bool:
        if (self.host or "").lower() != (other.host or "").lower():
            return False
        if self.path == other.path:
            return True
        mine, theirs = self.prefix(), other.prefix()
        wild_mine, wild_theirs = mine != self.path, theirs != other.path
        return (wild_theirs and mine.startswith(theirs)) or (wild_mine and theirs.startswith(mine))

    def __str__(self) -> str:
        return f"{self.host or '*'}{self.path}"
