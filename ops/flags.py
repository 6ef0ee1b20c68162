"""`invoke flags` and `invoke flags-set`: a stack's feature flags as AppConfig serves them, and a
flag change rolled out by the environment's strategy, watched to its end and recorded in the ledger.

A change is a new hosted configuration version of the stack's profile (the declared flags, every
other flag keeping its deployed value) deployed with the stack's strategy. AppConfig itself rolls
it back when the environment's monitor (every service health alarm) fires during the rollout or
the bake; this module only reports what AppConfig decided and exits non-zero on a rollback.

moto serves AppConfig applications, profiles and hosted configuration versions, but not
environments, deployment strategies or deployments. The deployment calls (ListDeployments,
StartDeployment, GetDeployment) are therefore behind one seam, `Deployments`; everything else
goes straight through boto3.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ops.console import out
from ops.errors import OpsError

# GetDeployment states: these end a deployment; the others (BAKING, VALIDATING, DEPLOYING,
# ROLLING_BACK) are waited on.
COMPLETE, ROLLED_BACK, REVERTED = "COMPLETE", "ROLLED_BACK", "REVERTED"
FINAL = (COMPLETE, ROLLED_BACK, REVERTED)
POLL_SECONDS = 10
# Beyond the strategy's own duration and bake: AppConfig's start and rollback take a little while.
WAIT_MARGIN_SECONDS = 300
LEDGER_SHA = "flag"  # ledger records of flag changes carry no code SHA: their id ends in -flag


class Deployments(Protocol):
    """The AppConfig deployment calls moto lacks (the seam: real boto3, or a recording test double)."""

    def history(self, application: str, environment: str) -> list[dict[str, Any]]:
        """ListDeployments' items (DeploymentSummary), newest first."""

    def start(self, *, application: str, environment: str, profile: str, strategy: str, version: int,
              description: str) -> int:
        """StartDeployment; the deployment number."""

    def get(self, application: str, environment: str, number: int) -> dict[str, Any]:
        """GetDeployment: State, PercentageComplete, EventLog."""


class AppConfigDeployments:
    """The real calls, on the `appconfig` boto3 client."""

    def __init__(self, client: Any):
        self._client = client

    def history(self, application: str, environment: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ApplicationId": application, "EnvironmentId": environment}
        while True:
            page = self._client.list_deployments(**kwargs)
            items += page.get("Items", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return sorted(items, key=lambda d: d["DeploymentNumber"], reverse=True)

    def start(self, *, application: str, environment: str, profile: str, strategy: str, version: int,
              description: str) -> int:
        answer = self._client.start_deployment(
            ApplicationId=application, EnvironmentId=environment, DeploymentStrategyId=strategy,
            ConfigurationProfileId=profile, ConfigurationVersion=str(version), Description=description)
        return int(answer["DeploymentNumber"])

    def get(self, application: str, environment: str, number: int) -> dict[str, Any]:
        return dict(self._client.get_deployment(ApplicationId=application, EnvironmentId=environment,
                                                DeploymentNumber=number))


@dataclass(frozen=True)
class FlagIds:
    application: str
    environment: str
    profile: str
    strategy: str

    @classmethod
    def from_outputs(cls, stack: str, outputs: dict[str, Any]) -> FlagIds:
        found = outputs.get("flags") or {}
        keys = ("application_id", "environment_id", "profile_id", "strategy_id")
        if not all(found.get(k) for k in keys):
            raise OpsError(f"stack {stack} exports no AppConfig flags (outputs.flags): declare flags in "
                           f"refarch:flags and run `invoke deploy --stack {stack}` first")
        return cls(*(str(found[k]) for k in keys))


@dataclass
class FlagDeps:
    load_config: Callable[[str], Any]
    clients: Callable[[str], Any]  # region -> ops.delivery.aws.Clients
    outputs: Callable[[str], dict[str, Any]]  # stack -> its Pulumi outputs
    deployments: Callable[[Any], Deployments]  # clients -> the seam
    ledger: Callable[[Any, str], Any]  # (clients, stack) -> ops.delivery.ledger.Ledger
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def default_deps() -> FlagDeps:
    from ops import stackfile
    from ops.delivery import aws
    from ops.delivery import default_deps as delivery
    from ops.delivery.ledger import Ledger

    return FlagDeps(load_config=stackfile.load, clients=aws.clients,
                    outputs=lambda stack: delivery().pulumi().select(stack).outputs(),
                    deployments=lambda clients: AppConfigDeployments(clients.appconfig), ledger=Ledger)


@dataclass
class Deployed:
    """What the environment serves now: the newest COMPLETE deployment's version and its values."""

    version: int | None
    deployment: dict[str, Any] | None
    values: dict[str, Any] = field(default_factory=dict)
    in_progress: dict[str, Any] | None = None


def deployed(clients: Any, seam: Deployments, ids: FlagIds) -> Deployed:
    from ops.delivery.aws import translate_errors

    with translate_errors("reading the flags' deployments"):
        history = seam.history(ids.application, ids.environment)
    running = next((d for d in history if d.get("State") not in FINAL), None)
    done = next((d for d in history if d.get("State") == COMPLETE), None)
    if done is None:
        return Deployed(None, None, in_progress=running)
    version = int(done["ConfigurationVersion"])
    return Deployed(version, done, content(clients, ids, version).get("values", {}), running)


def content(clients: Any, ids: FlagIds, version: int) -> dict[str, Any]:
    from ops.delivery.aws import translate_errors

    with translate_errors(f"reading hosted configuration version {version}"):
        answer = clients.appconfig.get_hosted_configuration_version(
            ApplicationId=ids.application, ConfigurationProfileId=ids.profile, VersionNumber=version)
        raw = answer["Content"].read()
    try:
        return dict(json.loads(raw))
    except (ValueError, TypeError):
        raise OpsError(f"hosted configuration version {version} is not feature-flag JSON") from None


# --- invoke flags ------------------------------------------------------------------------------

def show(stack: str, deps: FlagDeps) -> list[dict[str, Any]]:
    """One row per declared flag: its value now (or why there is none) and its declared default."""
    from rich.table import Table

    config = deps.load_config(stack)
    clients = deps.clients(config.region)
    ids = FlagIds.from_outputs(stack, deps.outputs(stack))
    now = deployed(clients, deps.deployments(clients), ids)
    rows = []
    for flag in config.flags.declared:
        value = now.values.get(flag.name)
        current = ("on" if value["enabled"] else "off") if isinstance(value, dict) else "not deployed"
        rows.append({"name": flag.name, "value": current, "default": "on" if flag.default else "off",
                     "description": flag.description})
    where = (f"hosted version {now.version} (deployment #{now.deployment['DeploymentNumber']})"
             if now.deployment else "nothing deployed yet")
    table = Table(title=f"flags of {stack}: {where}")
    for column in ("name", "value", "default", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in ("name", "value", "default", "description")))
    out.print(table)
    if now.in_progress:
        out.print(f"deployment #{now.in_progress['DeploymentNumber']} of version "
                  f"{now.in_progress.get('ConfigurationVersion')} is {now.in_progress.get('State')} "
                  f"({now.in_progress.get('PercentageComplete', 0)} %)", markup=False)
    changes = deps.ledger(clients, stack).history(limit=5, kind="flag")
    for rel in changes:
        out.print(f"  {rel.started_at} {'; '.join(rel.notes[:1])}: {rel.outcome} by {rel.actor}", markup=False)
    undeclared = sorted(set(now.values) - {f.name for f in config.flags.declared})
    if undeclared:
        out.print(f"deployed but no longer declared: {', '.join(undeclared)} (the next change drops them)",
                  markup=False)
    return rows


# --- invoke flags-set --------------------------------------------------------------------------

@dataclass
class Change:
    name: str
    old: bool | None
    new: bool
    outcome: str  # COMPLETE, ROLLED_BACK, REVERTED, "unchanged"
    release_id: str | None = None
    deployment: int | None = None
    version: int | None = None


def parse_state(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered not in ("on", "off"):
        raise OpsError(f"flag value must be on or off, got {value!r}")
    return lowered == "on"


def set_flag(stack: str, name: str, value: str, deps: FlagDeps) -> Change:
    from ops.delivery.aws import translate_errors

    enabled = parse_state(value)
    config = deps.load_config(stack)
    declared = [f.name for f in config.flags.declared]
    if name not in declared:
        raise OpsError(f"flag {name!r} is not declared in stacks/Pulumi.{stack}.yaml (refarch:flags.declared): "
                       + (f"declared: {', '.join(declared)}" if declared else "it declares none"))
    clients = deps.clients(config.region)
    ids = FlagIds.from_outputs(stack, deps.outputs(stack))
    seam = deps.deployments(clients)
    now = deployed(clients, seam, ids)
    if now.in_progress:
        raise OpsError(f"deployment #{now.in_progress['DeploymentNumber']} of the flags of {stack} is "
                       f"{now.in_progress.get('State')}: wait for it (`invoke flags --stack {stack}`)")
    old_value = now.values.get(name)
    old = bool(old_value["enabled"]) if isinstance(old_value, dict) else None
    if old is enabled:
        out.print(f"{stack}: {name} is already {'on' if enabled else 'off'} (hosted version {now.version}): "
                  f"nothing to deploy", markup=False)
        return Change(name, old, enabled, "unchanged", version=now.version)

    document = config.flags.content()
    for flag, values in document["values"].items():  # every other flag keeps what it has now
        if isinstance(now.values.get(flag), dict):
            values["enabled"] = bool(now.values[flag]["enabled"])
    document["values"][name]["enabled"] = enabled
    body = json.dumps(document, sort_keys=True)
    change = f"{name}: {_word(old)} -> {_word(enabled)}"

    ledger = deps.ledger(clients, stack)
    release = ledger.begin(LEDGER_SHA, {}, hashlib.sha256(body.encode()).hexdigest(), "flag", notes=[change])
    try:
        with translate_errors(f"creating a hosted configuration version of the flags of {stack}"):
            version = int(clients.appconfig.create_hosted_configuration_version(
                ApplicationId=ids.application, ConfigurationProfileId=ids.profile, Content=body.encode(),
                ContentType="application/json", Description=change)["VersionNumber"])
        with translate_errors(f"starting the flags deployment of {stack}"):
            number = seam.start(application=ids.application, environment=ids.environment, profile=ids.profile,
                                strategy=ids.strategy, version=version, description=change)
        out.print(f"{stack}: {change}: deployment #{number} of hosted version {version} started "
                  f"({config.flags.rollout.growth})", markup=False)
        final = _wait(seam, ids, number, config.flags.rollout, deps)
    except BaseException as exc:
        ledger.finish(release.id, "failed", verified=False, notes=[f"not completed: {type(exc).__name__}: {exc}"])
        raise
    result = Change(name, old, enabled, final["State"], release.id, number, version)
    if final["State"] == COMPLETE:
        ledger.finish(release.id, "succeeded", verified=True, notes=[f"deployment #{number} COMPLETE"])
        out.print(f"{stack}: {change}: COMPLETE (deployment #{number})", markup=False)
        return result
    why = _reason(final)
    ledger.finish(release.id, "rolled back", verified=False,
                  notes=[f"deployment #{number} {final['State']}" + (f": {why}" if why else "")])
    raise OpsError(f"{stack}: {change}: AppConfig {final['State']} deployment #{number}"
                   + (f" ({why})" if why else "") + f"; {name} stays {_word(old)}", code=3)


def _wait(seam: Deployments, ids: FlagIds, number: int, rollout: Any, deps: FlagDeps) -> dict[str, Any]:
    from ops.delivery.aws import translate_errors

    numbers = rollout.strategy()
    budget = (numbers["deployment_duration_in_minutes"] + numbers["final_bake_time_in_minutes"]) * 60
    deadline = deps.clock() + budget + WAIT_MARGIN_SECONDS
    last = None
    while True:
        with translate_errors(f"reading deployment #{number}"):
            state = seam.get(ids.application, ids.environment, number)
        if state.get("State") in FINAL:
            return state
        shown = (state.get("State"), state.get("PercentageComplete"))
        if shown != last:
            out.print(f"  deployment #{number}: {shown[0]} ({shown[1] or 0} %)", markup=False)
            last = shown
        if deps.clock() > deadline:
            raise OpsError(f"deployment #{number} is still {state.get('State')} after "
                           f"{budget + WAIT_MARGIN_SECONDS} s: see `invoke flags` and the AppConfig console")
        deps.sleep(POLL_SECONDS)


def _reason(state: dict[str, Any]) -> str:
    """The rollback's cause as AppConfig logged it (its ROLLBACK_STARTED event names the alarm)."""
    events = [e for e in state.get("EventLog") or [] if e.get("EventType") == "ROLLBACK_STARTED"]
    return str(events[0].get("Description", "")) if events else ""


def _word(value: bool | None) -> str:
    return "unset" if value is None else "on" if value else "off"
