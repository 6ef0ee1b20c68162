"""`refarch:edge`: the CloudFront distribution in front of the (internal) gateway and the web client."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator

from infra.config.base import Strict
from infra.config.gateway import domain_name

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

# CloudFront only takes viewer certificates from ACM in us-east-1.
EDGE_REGION = "us-east-1"
_CERT = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/")


class EdgeConfig(Strict):
    # The viewer-facing name; defaults to gateway.domain (the name then points at CloudFront, and the
    # ALB keeps it only as its origin name). Without one, viewers use the *.cloudfront.net name.
    domain: str | None = None
    certificate_arn: str | None = None  # ACM in us-east-1; else one is issued for `domain`
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    waf_rate_limit: Annotated[int, Field(ge=100, le=2_000_000_000)] = 2000  # requests / 5 min / IP
    logging: bool = True  # standard logging (v2) to a KMS-encrypted log group
    web_client: bool = True  # the static client in clients/web at `/`
    # CloudFront's flat-rate plans (since 2025-11-18) bundle the distribution, its web ACL and their
    # log ingestion for one monthly price, no overage (traffic past the allowance is throttled):
    # free = $0 for 1 M requests and 100 GB a month. Pay-as-you-go bills each part by use.
    pricing_plan: Literal["pay-as-you-go", "free", "pro", "business", "premium"] = "pay-as-you-go"

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return domain_name(value)

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = _CERT.match(value)
        if not match:
            raise ValueError(f"{value!r} is not an ACM certificate ARN")
        if match.group(1) != EDGE_REGION:
            raise ValueError(f"{value!r} is in {match.group(1)}: CloudFront takes certificates from {EDGE_REGION} only")
        return value


def viewer_domain(config: StackConfig) -> str | None:
    return config.edge.domain or config.gateway.domain


def edge_problems(config: StackConfig) -> list[str]:
    """Rules spanning edge and gateway: a viewer domain needs a certificate or a zone to issue one.

    A cached route may have auth: jwt: the token guards its writes, and CloudFront caches only GET and
    HEAD answers, which are public (infra/config/auth.py).
    """
    problems: list[str] = []
    edge, gateway = config.edge, config.gateway
    domain = viewer_domain(config)
    if domain and not edge.certificate_arn and not gateway.hosted_zone_id:
        problems.append(f"edge.domain: {domain!r} needs edge.certificate_arn (us-east-1) or gateway.hosted_zone_id "
                        f"to issue one")
    for i, svc in enumerate(config.services):
        for j, route in enumerate(svc.routes):
            where = f"services[{i}].routes[{j}]"
            if route.cache_seconds and route.host:
                problems.append(f"{where}: cache_seconds on a host route ({route.host}): CloudFront behaviours match "
                                f"paths only")
    return problems
