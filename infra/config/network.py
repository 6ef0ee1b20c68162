"""`refarch:network`: the VPC, its subnet tiers and NAT."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator

from infra.config.base import MAX_AZS, SUBNET_NEWBITS, SUBNET_TIERS, Strict


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
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(
                f"{value} leaves no room for {SUBNET_TIERS} subnet tiers x {MAX_AZS} AZs: "
                f"use a prefix between /16 and /24"
            )
        if not net.is_private:
            raise ValueError(f"{value} is not a private (RFC 1918) range")
        return value

    def subnet_cidrs(self) -> dict[str, list[str]]:
        """Public, private and isolated subnet CIDRs, one per AZ, from fixed slots."""
        slots = list(ipaddress.IPv4Network(self.cidr).subnets(prefixlen_diff=SUBNET_NEWBITS))
        tiers = ("public", "private", "isolated")
        return {
            tier: [str(slots[t * MAX_AZS + az]) for az in range(self.az_count)]
            for t, tier in enumerate(tiers)
        }
