"""Monthly cost estimate of a synthesized stack at on-demand list prices (`invoke cost`).

Every resource in the synth output ends up in exactly one of three states: priced (with the
arithmetic shown), free (an explicit allowlist with the reason), or "not priced" (it costs money
but there is no price or usage assumption for it). Nothing is silently zero: an unknown type is
"not priced" until someone adds it (`pricers.py` or `pricers_product.py`, or `free_resources.py` with
the reason).

Usage-based charges come from the stack file's `usage` section (`infra.config.UsageConfig`); the
prices from `ops/review/prices/aws-<region>.json`, which states its source and date.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from ops.review import Index, SynthJson, is_component, layers
from ops.review.cost_model import (
    Charge,
    Ctx,
    Estimate,
    Free,
    NotPriced,
    ResourceCost,
    Usage,
    num,
    prices,
)
from ops.review.free_resources import FREE, UNPRICED
from ops.review.pricers import PRICERS

# --- the estimate --------------------------------------------------------------------------------

def estimate(document: SynthJson, usage: Usage, region: str, *, cloudwatch_free_tier: bool | None = None) -> Estimate:
    """Price every resource of a synth output for one region and a set of usage assumptions.

    `cloudwatch_free_tier`: credit CloudWatch's always-free tier (per account, so only when this
    stack has the account's tier to itself); default: the usage section's `cloudwatch_free_tier`
    field if the schema has one, else off.
    """
    table = prices(region)
    index = Index(document)
    ctx = Ctx(index, table, usage)
    if cloudwatch_free_tier is None:
        cloudwatch_free_tier = bool(getattr(usage, "cloudwatch_free_tier", False))
    ctx.free_tiers = cloudwatch_free_tier
    layer_of = layers(document)
    costed = [_price(r, ctx, layer_of.get(r["urn"], "stack"), region) for r in document["resources"]
              if not is_component(r)]
    if cloudwatch_free_tier:
        costed.append(_free_tier_credit(costed, ctx))
    return Estimate(stack=document.get("stack", ""), region=region, resources=costed,
                    assumptions=_assumptions(usage, table, cloudwatch_free_tier),
                    basis=table["basis"], compiled=table["compiled"])


def _price(r: dict, ctx: Ctx, layer: str, region: str) -> ResourceCost:
    token = r["type"]
    cost = ResourceCost(urn=r["urn"], name=r["name"], type=token, layer=layer, status="priced")
    own_region = r["inputs"].get("region")
    if own_region and own_region != region and token in PRICERS:
        cost.status, cost.reason = "not priced", f"placed in {own_region}, priced for {region} only"
        return cost
    if token in PRICERS:
        try:
            cost.charges = PRICERS[token](r, ctx)
        except Free as free:
            cost.status, cost.reason = "free", str(free)
        except NotPriced as unpriced:
            cost.status, cost.reason = "not priced", str(unpriced)
    elif token in FREE:
        cost.status, cost.reason = "free", FREE[token]
    elif token in UNPRICED:
        cost.status, cost.reason = "not priced", UNPRICED[token]
    else:
        cost.status, cost.reason = "not priced", "unknown resource type: add it to ops/review/cost.py (priced or free)"
    return cost


def _free_tier_credit(costed: list[ResourceCost], ctx: Ctx) -> ResourceCost:
    cw = ctx.p["cloudwatch"]
    free = cw["free_tier"]
    standard = sum(c.quantity for r in costed for c in r.charges
                   if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and c.unit_price == cw["alarm_metric_month"])
    dashboards = sum(1 for r in costed if r.type == "aws:cloudwatch/dashboard:Dashboard")
    logs = ctx.usage.log_gb_per_month
    return ResourceCost(
        urn="", name="CloudWatch always-free tier", type="credit", layer="free tier", status="priced",
        reason="stated per-stack assumption: this stack has the account's free tier to itself",
        charges=[
            Charge("free alarm metrics", min(standard, free["alarm_metrics"]), "alarm metric-month", -cw["alarm_metric_month"]),
            Charge("free dashboards", min(dashboards, free["dashboards"]), "dashboard-month", -cw["dashboard_month"]),
            Charge("free log ingestion", min(logs, free["logs_gb"]), "GB", -cw["logs_ingest_gb"]),
        ],
    )


def _assumptions(usage: Usage, table: dict[str, Any], free_tier: bool) -> list[str]:
    spot = table["fargate"]["spot_discount"]
    lines = [
        f"{table['hours_per_month']} hours per month; on-demand list prices, {table['region']}, compiled {table['compiled']}",
        f"requests: {usage.requests_per_month:,.0f}/month (usage.requests_per_month: CloudFront and WAF requests)",
        f"edge data transfer out: {num(float(getattr(usage, 'edge_gb_per_month', 0) or 0))} GB/month "
        f"(usage.edge_gb_per_month); CloudFront's always-free tier credited with CloudWatch's",
        f"ALB: {num(usage.alb_lcu)} LCU on average (usage.alb_lcu)",
        f"NAT gateway data processed: {num(usage.nat_gb_per_month)} GB/month across all NAT gateways (usage.nat_gb_per_month)",
        f"logs: {num(usage.log_gb_per_month)} GB/month ingested, split evenly over the log groups; stored volume = "
        f"ingestion × retention, uncompressed (usage.log_gb_per_month)",
        f"RDS backup storage beyond the free allowance: {num(usage.backup_gb_beyond_free)} GB (usage.backup_gb_beyond_free)",
        f"Fargate Spot: on-demand × {1 - spot:.2f} (Spot prices float; AWS advertises up to {spot:.0%} off)",
        "Fargate: each service at its desired count (autoscaling may add tasks up to max_count); tasks per "
        "capacity provider: `base` first, the rest by weight (fractional = expected share)",
        "not priced anywhere: data transfer out to the internet and across AZs, NAT instance egress, one-off "
        "Fargate tasks (migrations), X-Ray traces, KMS and Secrets Manager API requests, ElastiCache snapshot storage",
        "CloudWatch always-free tier: " + ("credited (stated for this stack)" if free_tier else
                                           "not credited (it is per account, not per stack)"),
    ]
    return lines


# --- comparison ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeltaRow:
    urn: str
    name: str
    type: str
    layer: str
    change: Literal["added", "removed", "changed"]
    base: float
    head: float

    @property
    def delta(self) -> float:
        return self.head - self.base


@dataclass
class CostDelta:
    base_total: float
    head_total: float
    rows: list[DeltaRow]

    @property
    def total(self) -> float:
        return self.head_total - self.base_total


def compare(base: Estimate, head: Estimate) -> CostDelta:
    """Monthly delta per resource (by URN): added, removed, or changed in price."""
    before, after = base.by_urn(), head.by_urn()
    rows = []
    for urn in sorted(set(before) | set(after)):
        b, h = before.get(urn), after.get(urn)
        ref = h or b
        assert ref is not None
        if b is None:
            change: Literal["added", "removed", "changed"] = "added"
        elif h is None:
            change = "removed"
        elif abs(h.monthly - b.monthly) > 0.005 or h.status != b.status:
            change = "changed"
        else:
            continue
        rows.append(DeltaRow(urn, ref.name, ref.type, ref.layer, change,
                             b.monthly if b else 0.0, h.monthly if h else 0.0))
    rows.sort(key=lambda row: (-abs(row.delta), row.name))
    return CostDelta(base.total, head.total, rows)


# --- rendering ----------------------------------------------------------------------------------

def money(value: float) -> str:
    return f"${value:,.2f}"


def signed(value: float) -> str:
    """A delta with its sign always shown: +$1.20, -$3.00, ±$0.00."""
    if round(value, 2) == 0:
        return "±$0.00"
    return f"{'+' if value > 0 else '-'}${abs(value):,.2f}"


def md_escape(text: str) -> str:
    """GitHub renders `$...$` as math: dollar signs in Markdown text must be escaped."""
    return text.replace("$", "\\$")


def render_markdown(est: Estimate, delta: CostDelta | None = None, *, heading: str = "###") -> str:
    m = md_escape
    lines = [f"{heading} Monthly cost: {m(money(est.total))}" + (f" ({m(signed(delta.total))} vs base)" if delta else ""),
             "", "| layer | monthly |", "| --- | ---: |"]
    lines += [f"| {layer} | {m(money(value))} |" for layer, value in est.by_layer().items()]
    lines.append(f"| **total** | **{m(money(est.total))}** |")
    unpriced = est.not_priced()
    if unpriced:
        lines += ["", "Not priced (these cost money but are not in the total):"]
        lines += [f"- `{r.name}` (`{r.type}`): " + m(r.reason or "; ".join(f"{c.what}: {c.note}" for c in r.unpriced_parts))
                  for r in unpriced]
    if delta is not None:
        # Raw HTML: no Markdown (and no math) is rendered inside <summary>, so nothing to escape.
        lines += ["", f"<details><summary>Cost delta vs base: {signed(delta.total)} "
                      f"({money(delta.base_total)} → {money(delta.head_total)})</summary>", ""]
        if delta.rows:
            lines += ["| change | resource | type | base | head | delta |", "| --- | --- | --- | ---: | ---: | ---: |"]
            lines += [f"| {row.change} | `{row.name}` | `{row.type}` | {m(money(row.base))} | {m(money(row.head))} | "
                      f"{m(signed(row.delta))} |" for row in delta.rows]
        else:
            lines.append("No resource changes price.")
        lines += ["", "</details>"]
    lines += ["", "<details><summary>Per resource</summary>", "",
              "| layer | resource | type | monthly | how |", "| --- | --- | --- | ---: | --- |"]
    for r in est.priced():
        how = "<br>".join(m(f"{c.what}: {c.formula()}") for c in r.charges)
        lines.append(f"| {r.layer} | `{r.name}` | `{r.type}` | {m(money(r.monthly))} | {how} |")
    free: dict[str, int] = defaultdict(int)
    for r in est.resources:
        if r.status == "free":
            free[r.type] += 1
    if free:
        lines += ["", "Free: " + ", ".join(f"`{t}` ×{n}" for t, n in sorted(free.items()))]
    lines += ["", "</details>", "", "<details><summary>Assumptions and price source</summary>", ""]
    lines += [f"- {m(a)}" for a in est.assumptions]
    lines += [f"- prices: {m(est.basis)}", "", "</details>"]
    return "\n".join(lines)


def print_estimate(est: Estimate, delta: CostDelta | None = None) -> None:
    from rich.table import Table

    from ops.console import out

    table = Table(title=f"{est.stack}: {money(est.total)}/month at list price ({est.region}, prices of {est.compiled})")
    for column, justify in (("layer", "left"), ("resource", "left"), ("type", "left"), ("monthly", "right"),
                            ("how", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in est.priced():
        table.add_row(r.layer, r.name, r.type, money(r.monthly), "\n".join(f"{c.what}: {c.formula()}" for c in r.charges))
    for r in est.not_priced():
        reason = r.reason or "; ".join(f"{c.what}: {c.note}" for c in r.unpriced_parts)
        table.add_row(r.layer, r.name, r.type, "not priced", reason, style="yellow")
    out.print(table)
    layer_table = Table(title="per layer")
    layer_table.add_column("layer")
    layer_table.add_column("monthly", justify="right")
    for layer, value in est.by_layer().items():
        layer_table.add_row(layer, money(value))
    layer_table.add_row("total", money(est.total), style="bold")
    out.print(layer_table)
    if delta is not None:
        delta_table = Table(title=f"delta vs base: {signed(delta.total)} ({money(delta.base_total)} → {money(delta.head_total)})")
        for column in ("change", "resource", "type", "base", "head", "delta"):
            delta_table.add_column(column)
        for row in delta.rows:
            delta_table.add_row(row.change, row.name, row.type, money(row.base), money(row.head), signed(row.delta))
        out.print(delta_table)
    for line in est.assumptions:
        out.print(f"  assumption: {line}")


def command(stack: str, compare_file: str | None = None, synth_file: str | None = None, md: str | None = None) -> Estimate:
    """`invoke cost`: estimate a stack (synthesized now or read from --synth), optionally against a base."""
    from ops import stackfile
    from ops.review import load_base, load_synth

    config = stackfile.load(stack)
    head = estimate(load_synth(stack, synth_file), config.usage, config.region)
    # The base is priced with the head's usage assumptions: the delta is what the change itself costs.
    delta = compare(estimate(load_base(stack, compare_file), config.usage, config.region), head) if compare_file else None
    print_estimate(head, delta)
    if md:
        from ops.console import write_output

        write_output(md, render_markdown(head, delta, heading="##") + "\n")
        from ops.console import err

        err.print(f"wrote {md}")
    return head

