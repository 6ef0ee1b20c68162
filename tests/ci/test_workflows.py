"""The CI definitions: schema-valid, zizmor-clean, pinned, least privilege, and calling real tasks."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITLAB = ROOT / "ci" / "gitlab-ci.yml"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
INVOKE = re.compile(r"\binvoke\s+([a-z][a-z0-9-]*)(.*)")
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    return load(path)["jobs"]


def steps(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in jobs(path).items() for step in job.get("steps", [])]


def scripts() -> list[tuple[str, str]]:
    """(where, shell text) of every command CI runs: GitHub `run:` and GitLab script lines."""
    found = [(f"{path.name}:{job}", step["run"]) for path in WORKFLOWS for job, step in steps(path) if "run" in step]
    for name, job in load(GITLAB).items():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                found += [(f"gitlab-ci.yml:{name}", line) for line in job.get(key, [])]
    return found


def invocations() -> list[tuple[str, str, list[str]]]:
    """(where, task, flags) of every `invoke <task> ...` command, split at shell operators."""
    found = []
    for where, text in scripts():
        for line in text.splitlines():
            for command in re.split(r"\|\||&&|[|;]", line):
                match = INVOKE.search(command)
                if match:
                    found.append((where, match[1], FLAG.findall(match[2])))
    return found


def test_there_are_the_four_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["deliver.yml", "drift.yml", "pr.yml", "rollback.yml"]


def test_workflows_validate_against_the_github_schema() -> None:
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                             *map(str, WORKFLOWS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_pipeline_validates_against_the_gitlab_schema() -> None:
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(GITLAB)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", str(ROOT / ".github" / "workflows")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" in line:
                ref = line.split("uses:", 1)[1].split("#")[0].strip()
                assert PINNED.match(ref), f"{path.name}: {line.strip()}"
                assert re.search(r"# v\d+\.\d+\.\d+$", line), f"{path.name}: no version comment: {line.strip()}"


def test_every_invoke_command_exists_with_its_flags(collection: Any) -> None:
    seen = invocations()
    assert {task for _, task, _ in seen} >= {"lint", "typecheck", "test", "synth", "review", "report", "build",
                                              "deploy", "verify", "rollback", "promote", "drift"}
    problems = []
    for where, task, flags in seen:
        if task not in collection.task_names:
            problems.append(f"{where}: no task {task!r}")
            continue
        known = {name for arg in collection[task].get_arguments() for name in arg.names}
        problems += [f"{where}: invoke {task} has no --{flag}" for flag in flags if flag not in known]
    assert problems == []


def test_least_privilege_permissions() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow["permissions"] == {}, f"{path.name}: top-level permissions must be empty"
        for name, job in workflow["jobs"].items():
            permissions = job.get("permissions")
            assert isinstance(permissions, dict), f"{path.name}:{name}: no job-level permissions"
            assumes_role = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
            # OIDC tokens only where a role is assumed, and no long-lived keys anywhere.
            assert (permissions.get("id-token") == "write") == assumes_role, f"{path.name}:{name}"
            assert "write" not in {v for k, v in permissions.items() if k not in ("id-token", "pull-requests",
                                                                                  "issues")}, f"{path.name}:{name}"
        assert "aws-access-key-id" not in path.read_text() and "AWS_SECRET_ACCESS_KEY" not in path.read_text()


def test_checkouts_keep_no_credentials_and_runs_take_no_expressions() -> None:
    for path in WORKFLOWS:
        for job, step in steps(path):
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False or step["with"]["persist-credentials"] == "false"
            # Untrusted values reach shell code through env:, never spliced into the script.
            assert "${{" not in step.get("run", ""), f"{path.name}:{job}: {step.get('name')}"


def test_deploys_of_one_stack_never_overlap() -> None:
    deliver = jobs(WORKFLOWS[0])
    for job, stack in (("dev", "dev"), ("staging", "staging"), ("prod", "prod")):
        assert deliver[job]["environment"] == stack
        assert deliver[job]["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
    rollback = jobs(ROOT / ".github" / "workflows" / "rollback.yml")["rollback"]
    assert rollback["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    # GitLab: one resource group per stack for every job that changes it.
    gitlab = load(GITLAB)
    for name in ("deploy:dev", "rollback:dev", "promote:staging", "promote:prod", "rollback:prod"):
        assert gitlab[name]["resource_group"] == f"deploy-{name.split(':')[1]}"


def test_main_builds_once_and_promotes_through_a_protected_prod() -> None:
    deliver = jobs(WORKFLOWS[0])
    assert deliver["dev"]["needs"] == "build" and deliver["staging"]["needs"] == "dev"
    assert deliver["prod"]["needs"] == "staging" and deliver["prod"]["environment"] == "prod"
    commands = {job: [s["run"] for s in body["steps"] if "run" in s] for job, body in deliver.items()}
    assert sum("invoke build" in c for cs in commands.values() for c in cs) == 1
    assert "invoke promote --from staging --to \"$STACK\"" in commands["prod"]
    for job in ("dev", "staging", "prod"):
        [rollback] = [s for s in deliver[job]["steps"] if s.get("run", "").startswith("invoke rollback")]
        assert rollback["if"].startswith("failure()")


def test_pull_request_report_is_one_comment_per_stack() -> None:
    report = jobs(ROOT / ".github" / "workflows" / "pr.yml")["report"]
    [sticky] = [s for s in report["steps"] if "sticky-pull-request-comment" in s.get("uses", "")]
    assert sticky["with"]["header"] == "refarch-report-${{ matrix.stack }}"
    runs = [s["run"] for s in report["steps"] if "run" in s]
    assert any("--preview" in r for r in runs) and any("invoke report" in r and "--preview" not in r for r in runs)


def test_flag_parser_sees_flags_in_conditional_commands() -> None:
    # The checker itself: a made-up flag in a composed command must be seen.
    command = 'invoke verify --stack dev || invoke rollback --stack dev --yolo'
    parts = [FLAG.findall(INVOKE.search(c)[2]) for c in re.split(r"\|\||&&|[|;]", command)]
    assert parts == [["stack"], ["stack", "yolo"]]
    assert shlex.split(command)[0] == "invoke"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_have_timeouts(path: Path) -> None:
    assert all("timeout-minutes" in job for job in jobs(path).values())


def test_python_environment_is_cached() -> None:
    for path in WORKFLOWS:
        for job, step in steps(path):
            if "actions/setup-python" in step.get("uses", ""):
                assert step["with"].get("cache") == "pip", f"{path.name}:{job}"
    assert load(GITLAB)["default"]["cache"]["paths"] == [".cache/pip"]


# -- what delivery needs from CI (issue 8) ---------------------------------------------------------

DELIVER, ROLLBACK, PR, DRIFT = (ROOT / ".github" / "workflows" / n for n in
                                ("deliver.yml", "rollback.yml", "pr.yml", "drift.yml"))
LIVE_POLICY_TASKS = ("deploy", "promote", "rollback", "preview")  # `up` / `preview` with --policy-pack


def _job_stacks(path: Path, name: str) -> list[str]:
    job = jobs(path)[name]
    stack = job.get("env", {}).get("STACK", "")
    return ["dev", "staging", "prod"] if "inputs" in stack or not stack else [stack]


def test_deploy_job_timeouts_and_credentials_outlast_the_codes_worst_case() -> None:
    from ops.delivery import default_deps
    from ops.delivery.budget import worst_case_minutes

    load_config = default_deps().load_config
    bootstrap = (ROOT / "ci" / "bootstrap" / "refarch_ci_bootstrap.py").read_text()
    max_session = int(re.search(r"max_session_duration=(\d+)", bootstrap)[1])
    checked = 0
    for path, names in ((DELIVER, ("dev", "staging", "prod")), (ROLLBACK, ("rollback",))):
        for name in names:
            job = jobs(path)[name]
            worst = max(worst_case_minutes(load_config(stack)) for stack in _job_stacks(path, name))
            assert job["timeout-minutes"] >= worst, f"{path.name}:{name}: {job['timeout-minutes']} < {worst}"
            (creds,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
            duration = int(creds["with"]["role-duration-seconds"])
            assert job["timeout-minutes"] * 60 < duration <= max_session, f"{path.name}:{name}"
            checked += 1
    assert checked == 4


def test_every_live_preview_or_up_has_the_policy_pack_venv_created_first() -> None:
    checked = 0
    for path in WORKFLOWS:
        for name, job in jobs(path).items():
            runs = [s.get("run", "") for s in job.get("steps", [])]
            for i, text in enumerate(runs):
                live = any(re.search(rf"\binvoke {task}\b", text) for task in LIVE_POLICY_TASKS) or \
                    "--preview" in text
                if not live:
                    continue
                assert any("python -m venv policy/venv" in earlier for earlier in runs[:i]), f"{path.name}:{name}"
                checked += 1
    assert checked >= 5
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert "policy/venv/" in gitignore  # never a dirty tree for the deploy's preflight


def test_previews_use_each_environments_own_preview_role() -> None:
    for path, name in ((PR, "report"), (DRIFT, "drift")):
        job = jobs(path)[name]
        include = job["strategy"]["matrix"]["include"]
        assert {row["stack"]: row["preview_role"] for row in include} == {
            env: f"AWS_PREVIEW_ROLE_ARN_{env.upper()}" for env in ("dev", "staging", "prod")}
        (creds,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
        assert creds["with"]["role-to-assume"] == "${{ vars[matrix.preview_role] }}"
    for path in WORKFLOWS:
        assert "vars.AWS_PREVIEW_ROLE_ARN " not in path.read_text() + " "
        assert "vars.AWS_PREVIEW_ROLE_ARN }}" not in path.read_text()


def test_the_build_job_has_a_container_builder_and_arm64_emulation_before_building() -> None:
    uses = [s.get("uses", "") or s.get("run", "") for s in jobs(DELIVER)["build"]["steps"]]
    qemu = next(i for i, u in enumerate(uses) if u.startswith("docker/setup-qemu-action@"))
    buildx = next(i for i, u in enumerate(uses) if u.startswith("docker/setup-buildx-action@"))
    build = next(i for i, u in enumerate(uses) if "invoke build" in u)
    assert qemu < buildx < build
    steps_ = jobs(DELIVER)["build"]["steps"]
    assert steps_[buildx]["with"]["driver"] == "docker-container"
    assert "arm64" in steps_[qemu]["with"]["platforms"]


def _gitlab_job(gitlab: dict[str, Any], name: str) -> dict[str, Any]:
    """A job with its `extends` merged the way GitLab does (later templates win, variables merge)."""
    job = gitlab[name]
    parents = job.get("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        base = _gitlab_job(gitlab, parent)
        merged = {**merged, **base, "variables": {**merged.get("variables", {}), **base.get("variables", {})}}
    return {**merged, **job, "variables": {**merged.get("variables", {}), **job.get("variables", {})}}


def test_gitlab_jobs_that_copy_images_have_docker_and_a_container_builder() -> None:
    gitlab = load(GITLAB)
    for name in ("build", "promote:staging", "promote:prod"):
        job = _gitlab_job(gitlab, name)
        assert job["image"].startswith("docker:") and job["services"] == ["docker:27-dind"], name
        script = "\n".join(job["before_script"])
        assert "docker buildx create --use --driver docker-container" in script, name
        assert "tonistiigi/binfmt --install arm64" in script, name
        assert "python3 -m venv policy/venv" in script or name == "build", name


def test_gitlab_previews_use_each_environments_own_role_and_deploys_outlast_the_worst_case() -> None:
    from ops.delivery import default_deps
    from ops.delivery.budget import worst_case_minutes

    gitlab = load(GITLAB)
    for kind in ("review", "drift"):
        for env in ("dev", "staging", "prod"):
            job = _gitlab_job(gitlab, f"{kind}:{env}")
            assert job["variables"]["AWS_ROLE_ARN"] == f"$AWS_PREVIEW_ROLE_ARN_{env.upper()}"
    assert "$AWS_PREVIEW_ROLE_ARN\n" not in GITLAB.read_text()
    worst = max(worst_case_minutes(default_deps().load_config(s)) for s in ("dev", "staging", "prod"))
    for name in ("deploy:dev", "promote:staging", "promote:prod", "rollback"):
        assert int(_gitlab_job(gitlab, name)["timeout"].removesuffix("m")) >= worst, name


def test_nothing_gitlab_writes_into_the_checkout_makes_the_tree_dirty() -> None:
    text = GITLAB.read_text()
    assert "$CI_PROJECT_DIR/.aws-web-identity-token" not in text  # the ID token lives in /tmp
    ignored = subprocess.run(["git", "check-ignore", ".cache/pip/x", "policy/venv/bin/python", "out/manifest.json"],
                             cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    assert ignored == [".cache/pip/x", "policy/venv/bin/python", "out/manifest.json"]


def test_jobs_that_can_roll_back_check_out_full_history() -> None:
    for path in (DELIVER, ROLLBACK):
        for name, job in jobs(path).items():
            if any("invoke rollback" in s.get("run", "") for s in job.get("steps", [])):
                (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
                assert checkout["with"]["fetch-depth"] == 0, f"{path.name}:{name}"
    gitlab = load(GITLAB)
    for name in ("rollback:dev", "rollback:staging", "rollback:prod", "rollback"):
        assert _gitlab_job(gitlab, name)["variables"]["GIT_DEPTH"] == "0", name
