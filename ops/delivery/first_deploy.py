"""A brand-new stack: its ECR repositories must exist before the first `invoke build --push`.

The services layer owns the repositories (`refarch-<stack>/<service>`), so nothing else may create
them (a second owner would make the first full `up` fail on "already exists"). Before pushing into
a repository that does not exist yet, the build runs one targeted `up` of exactly those
repositories: their URNs come from the offline synth of the same config, and a repository depends
on nothing but its (component) parent. The full `up` of the first deploy then finds them in its
state, with the pushed digests already in them: nothing waits for an image that is not there.
"""

from __future__ import annotations

from typing import Any

from ops.console import err
from ops.delivery.aws import error_code, translate_errors
from ops.errors import OpsError

REPOSITORY = "aws:ecr/repository:Repository"


def missing_repositories(ecr: Any, urls: dict[str, str]) -> list[str]:
    """Services whose repository (`<registry>/<name>`) does not exist in ECR yet."""
    missing = []
    for service, url in sorted(urls.items()):
        name = url.split("/", 1)[1]
        with translate_errors(f"looking up the ECR repository {name}"):
            try:
                ecr.describe_repositories(repositoryNames=[name])
            except Exception as exc:
                if error_code(exc) != "RepositoryNotFoundException":
                    raise
                missing.append(service)
    return missing


def repository_urns(config: Any, stack: str, urls: dict[str, str]) -> dict[str, str]:
    """service -> the URN the services layer gives its repository (from the offline synth)."""
    from ops import synth

    by_name = {r["inputs"].get("name"): r["urn"] for r in synth.run(config, stack).of_type(REPOSITORY)}
    urns = {}
    for service, url in urls.items():
        name = url.split("/", 1)[1]
        if name not in by_name:
            raise OpsError(f"services[{service}]: the program declares no ECR repository {name} "
                           f"(it declares {', '.join(sorted(filter(None, by_name))) or 'none'})")
        urns[service] = by_name[name]
    return urns


def ensure_repositories(stack: str, config: Any, urls: dict[str, str], deps: Any, clients: Any,
                        dry_run: bool = False) -> list[str]:
    """Create the missing repositories with a targeted `up`; returns the services it created them for."""
    missing = missing_repositories(clients.ecr, urls)
    if not missing:
        return []
    urns = repository_urns(config, stack, {s: urls[s] for s in missing})
    targets = [urns[s] for s in missing]
    if dry_run:
        err.print(f"would run: pulumi up --stack {stack} " + " ".join(f"--target {u}" for u in targets),
                  markup=False)
        return missing
    err.print(f"first push to {', '.join(missing)}: creating the repositories first (targeted up of "
              f"{len(targets)} resource{'s' if len(targets) > 1 else ''})", markup=False)
    deps.pulumi().select(stack).up(target_urns=targets)
    still = missing_repositories(clients.ecr, {s: urls[s] for s in missing})
    if still:
        raise OpsError(f"the targeted up did not create the repositories of {', '.join(still)}: "
                       f"nothing was pushed")
    return missing
