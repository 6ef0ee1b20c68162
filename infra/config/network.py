"""`refarch:network`: the VPC, its subnet tiers and NAT."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.config import catalog
from infra.config.base import MAX_AZS, SUBNET_NEWBITS, SUBNET_TIERS, Strict

# An ALB needs a /27 or larger subnet with at least 8 free addresses in each of its AZs.
ALB_SUBNET_PREFIX = 27
MAX_VPC_PREFIX = ALB_SUBNET_PREFIX - SUBNET_NEWBITS


class NetworkConfig(Strict):
    cidr: str = "10.0.0.0/16"
    az_count: Annotated[int, Field(ge=2, le=MAX_AZS)] = 3
    # none: no egress at all; instance: one NAT instance (cheap, not HA);
    # single: one NAT gateway; per-az: one NAT gateway per AZ (HA).
    nat: Literal["none", "instance", "single", "per-az"] = "per-az"
    nat_instance_type: str = "t4g.nano"
    flow_logs: bool = True

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid IPv4 CIDR ({exc})") from None
        if not 16 <= net.prefixlen <= MAX_VPC_PREFIX:
            raise ValueError(
                f"{value} leaves no room for {SUBNET_TIERS} subnet tiers x {MAX_AZS} AZs of at least "
                f"/{ALB_SUBNET_PREFIX} (what an ALB needs): use a prefix between /16 and /{MAX_VPC_PREFIX}"
            )
        if not net.is_private:
            raise ValueError(f"{value} is not a private (RFC 1918) range")
        return value

    @model_validator(mode="after")
    def _nat_instance_type(self) -> NetworkConfig:
        if self.nat != "instance":
            return self
        value = self.nat_instance_type
        if not catalog.in_table(value, catalog.ARM64_INSTANCE_TYPES):
            family = value.partition(".")[0]
            why = ("is an x86 type" if family in catalog.X86_FAMILIES else "is not an EC2 instance type we know")
            raise ValueError(f"nat_instance_type {value!r} {why}: the NAT instance runs the Amazon Linux 2023 "
                             f"arm64 AMI, use a Graviton type such as t4g.nano "
                             f"(families: {catalog.families(catalog.ARM64_INSTANCE_TYPES)})")
        return self

    def subnet_cidrs(self) -> dict[str, list[str]]:
        """Public, private and isolated subnet CIDRs, one per AZ, from fixed slots."""
        slots = list(ipaddress.IPv4Network(self.cidr).subnets(prefixlen_diff=SUBNET_NEWBITS))
        tiers = ("public", "private", "isolated")
        return {
            tier: [str(slots[t * MAX_AZS + az]) for az in range(self.az_count)]
            for t, tier in enumerate(tiers)
        }
