"""The cost estimate's model: charges, priced resources, the estimate, and the shipped price tables."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from ops.errors import OpsError
from ops.review import Index

PRICES_DIR = Path(__file__).resolve().parent / "prices"
# Layers in the order a reader walks the architecture; anything else sorts after them.
LAYER_ORDER = ("network", "edge", "client", "gateway", "services", "autoscaling", "database", "cache", "analytics", "monitoring",
               "encryption", "stack", "free tier")

Status = Literal["priced", "free", "not priced"]


class Usage(Protocol):
    """What the estimate reads from `StackConfig.usage` (a protocol so tests can pass their own)."""

    requests_per_month: float
    alb_lcu: float
    log_gb_per_month: float
    nat_gb_per_month: float
    backup_gb_beyond_free: float


@dataclass(frozen=True)
class Charge:
    """One priced dimension of a resource: quantity x unit price per month."""

    what: str
    quantity: float
    unit: str
    unit_price: float | None  # None: this part costs money but is not priced
    note: str = ""

    @property
    def monthly(self) -> float | None:
        return None if self.unit_price is None else self.quantity * self.unit_price

    def formula(self) -> str:
        if self.unit_price is None:
            return f"not priced: {self.note}" if self.note else "not priced"
        return f"{num(self.quantity)} {self.unit} × ${self.unit_price:g}"


@dataclass
class ResourceCost:
    urn: str
    name: str
    type: str
    layer: str
    status: Status
    charges: list[Charge] = field(default_factory=list)
    reason: str = ""  # why free / why not priced

    @property
    def monthly(self) -> float:
        return sum(c.monthly or 0.0 for c in self.charges)

    @property
    def unpriced_parts(self) -> list[Charge]:
        return [c for c in self.charges if c.unit_price is None]


@dataclass
class Estimate:
    stack: str
    region: str
    resources: list[ResourceCost]
    assumptions: list[str]
    basis: str
    compiled: str

    @property
    def total(self) -> float:
        return sum(r.monthly for r in self.resources)

    def by_layer(self) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        for r in self.resources:
            if r.status != "free":
                sums[r.layer] += r.monthly
        return dict(sorted(sums.items(), key=lambda kv: layer_key(kv[0])))

    def not_priced(self) -> list[ResourceCost]:
        """Resources (or parts of them) that cost money but have no figure in the total."""
        return [r for r in self.resources if r.status == "not priced" or r.unpriced_parts]

    def priced(self) -> list[ResourceCost]:
        return sorted((r for r in self.resources if r.status == "priced"),
                      key=lambda r: (layer_key(r.layer), -r.monthly, r.name))

    def by_urn(self) -> dict[str, ResourceCost]:
        return {r.urn: r for r in self.resources}


class NotPriced(Exception):  # noqa: N818 - a pricer's verdict, not an error
    """Raised by a pricer: this resource costs money, but the table cannot say how much."""


class Free(Exception):  # noqa: N818 - a pricer's verdict, not an error
    """Raised by a pricer: this particular configuration of a usually paid type costs nothing."""


# --- price table -------------------------------------------------------------------------------

@cache
def prices(region: str) -> dict[str, Any]:
    path = PRICES_DIR / f"aws-{region}.json"
    if not path.is_file():
        shipped = sorted(p.stem.removeprefix("aws-") for p in PRICES_DIR.glob("aws-*.json"))
        raise OpsError(
            f"no price table for region {region!r}: the repository ships {', '.join(shipped)} only "
            f"({PRICES_DIR.relative_to(PRICES_DIR.parents[2])}/aws-<region>.json); add one taken from the "
            f"AWS pricing pages or the Price List API offer files, with its source and date"
        )
    return json.loads(path.read_text())

def layer_key(layer: str) -> tuple[int, str]:
    return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), layer)


def num(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


class Ctx:
    """What every pricer needs: the table, the usage assumptions, and the stack's other resources."""

    def __init__(self, index: Index, table: dict[str, Any], usage: Usage):
        self.index, self.p, self.usage = index, table, usage
        self.hours: float = table["hours_per_month"]
        self.nat_gateways = sum(1 for _ in index.of_type("aws:ec2/natGateway:NatGateway"))
        self.log_groups = sum(1 for _ in index.of_type("aws:cloudwatch/logGroup:LogGroup"))
        self.databases = sum(1 for _ in index.of_type("aws:rds/instance:Instance"))
        self.eip_instances = {r["inputs"].get("instance") for r in index.of_type("aws:ec2/eip:Eip")}
        # The stack has its account's always-free tiers to itself (CloudWatch's, CloudFront's).
        self.free_tiers = False
