"""Schema migrations during a deploy: the migration task definitions get the new image (a targeted
`up`, or the first deploy's full one), then each runs once as a Fargate task and must exit 0 before
any service switches to the new image."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ops.console import err
from ops.delivery import Deps
from ops.delivery.pulumi_adapter import UpProgress, full_up
from ops.errors import OpsError

LOG_TAIL_LINES = 20
MIGRATION_TIMEOUT_SECONDS = 1800
MIGRATION_POLL_SECONDS = 6


def prepare_migrations(stack: Any, name: str, migrating: list[Any]) -> bool:
    """Put the new image into the migration task definitions; True if that took the full up."""
    deployed = stack.outputs().get("services") or {}
    urns = [(deployed.get(s.name) or {}).get("migration_task_definition_urn") for s in migrating]
    if not all(urns):
        err.print("first deploy: no migration task definition exists yet, so the full `up` runs first and "
                  "the migrations right after it, before verification", markup=False)
        full_up(stack, name)
        return True
    err.print(f"migrations: updating only the migration task definition(s) of "
              f"{', '.join(s.name for s in migrating)} (targeted up)", markup=False)
    progress = UpProgress(f"up --target migrations ({len(urns)})")
    try:
        stack.up(target_urns=urns, on_event=progress)
    finally:
        progress.close()
    return False


def run_migrations(clients: Any, outputs: dict[str, Any], migrating: list[Any], deps: Deps,
                   services_touched: bool) -> None:
    for svc in migrating:
        run_migration(clients, outputs, svc.name, sleep=deps.sleep, services_touched=services_touched)


def run_migration(clients: Any, outputs: dict[str, Any], service: str, *, sleep: Callable[[float], None],
                  services_touched: bool = False, timeout: float = MIGRATION_TIMEOUT_SECONDS) -> None:
    entry = (outputs.get("services") or {}).get(service) or {}
    arn = entry.get("migration_task_definition_arn")
    if not arn:
        raise OpsError(f"{service}: the stack exports no migration_task_definition_arn")
    # The family, not the exported revision: a targeted up does not refresh stack outputs, and
    # run_task takes the family's newest ACTIVE revision, which is the one the up just wrote.
    family = arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    cluster = outputs["cluster_name"]
    err.print(f"migration of {service}: ecs.run_task {family} on {cluster}", markup=False)
    started = clients.ecs.run_task(
        cluster=cluster, taskDefinition=family, launchType="FARGATE", count=1, startedBy="refarch-migrate",
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": list(outputs["private_subnet_ids"]),
            "securityGroups": [entry["security_group_id"]],
            "assignPublicIp": "DISABLED",
        }},
    )
    if started.get("failures") or not started.get("tasks"):
        reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in started.get("failures", []))
        raise OpsError(f"migration of {service} could not start: {reasons or 'no task returned'}")
    task_arn = started["tasks"][0]["taskArn"]
    task = _wait_stopped(clients.ecs, cluster, task_arn, sleep=sleep, timeout=timeout)
    containers = task.get("containers") or []
    main = [c for c in containers if c.get("name") == service] or containers
    codes = {c.get("name"): c.get("exitCode") for c in main}
    if main and all(code == 0 for code in codes.values()):
        err.print(f"migration of {service}: done (exit 0)", markup=False)
        return
    task_id = task_arn.rsplit("/", 1)[-1]
    tail = log_tail(clients.logs, entry.get("log_group_name"), [c.get("name") for c in containers], task_id)
    exit_text = ", ".join(f"{name} exit {code}" for name, code in codes.items()) or task.get("stoppedReason", "")
    state = ("the services already run the new image (first deploy)" if services_touched
             else "the running services are untouched (only the migration task definition changed)")
    raise OpsError(f"migration of {service} failed ({exit_text}; task {task_id}); {state}. "
                   f"Last {LOG_TAIL_LINES} log lines:\n" + ("\n".join(f"  {line}" for line in tail) or "  (no log lines)"))


def _wait_stopped(ecs: Any, cluster: str, task_arn: str, *, sleep: Callable[[float], None], timeout: float) -> dict:
    waited = 0.0
    while True:
        tasks = ecs.describe_tasks(cluster=cluster, tasks=[task_arn]).get("tasks") or [{}]
        if tasks[0].get("lastStatus") == "STOPPED":
            return tasks[0]
        if waited >= timeout:
            raise OpsError(f"migration task {task_arn} still not stopped after {int(timeout)}s; it keeps running "
                           f"(stop it with `aws ecs stop-task --cluster {cluster} --task {task_arn}`)")
        sleep(MIGRATION_POLL_SECONDS)
        waited += MIGRATION_POLL_SECONDS


def log_tail(logs: Any, group: str | None, containers: list[str | None], task_id: str,
             lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of the migration's log (awslogs stream `migrate/<container>/<task id>`)."""
    if not group:
        return []
    for container in containers:
        try:
            events = logs.get_log_events(logGroupName=group, logStreamName=f"migrate/{container}/{task_id}",
                                         limit=lines, startFromHead=False).get("events") or []
        except Exception as exc:  # ResourceNotFoundException: this container logged nothing
            if "ResourceNotFound" in type(exc).__name__ or "ResourceNotFound" in str(exc):
                continue
            raise
        if events:
            return [e.get("message", "").rstrip() for e in events][-lines:]
    return []
