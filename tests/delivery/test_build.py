"""build: ECR login, the exact buildx command per built service, the manifest it writes."""

from __future__ import annotations

import base64

import pytest

from ops.delivery import build, manifest
from ops.errors import OpsError
from tests.delivery.flow_fakes import DIGEST, DockerRunner, FakeGit, RecordingStack, make_deps

SHA = "c0ffee" + "0" * 34
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "services" / "products").mkdir(parents=True)
    (tmp_path / "services" / "products" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setattr(build, "utc_now", lambda: "2026-11-27T18:30:00Z")


class NoStack(RecordingStack):
    def select(self, stack):
        raise OpsError("the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/")


@pytest.fixture
def repositories(clients):
    """The stack exists already: its repository is there."""
    clients.ecr.create_repository(repositoryName="refarch-dev/products")


def test_build_push_logs_in_builds_once_and_writes_the_manifest(aws_env, clients, tree, tmp_path, repositories):
    runner = DockerRunner()
    out = tmp_path / "out" / "manifest.json"
    built = build.run("dev", push=True, manifest_path=out,
                      deps=make_deps(stack=NoStack(), runner=runner, git=FakeGit(sha=SHA, root=tree)))
    repo = f"{REGISTRY}/refarch-dev/products"  # the services layer's name: no stack outputs yet
    login, buildx = runner.calls
    token = clients.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert login == (["docker", "login", "--username", "AWS", "--password-stdin", REGISTRY],
                     base64.b64decode(token).decode().split(":", 1)[1])
    argv = buildx[0]
    # The labels' values are build args of the Dockerfile; `created` is the commit's time, and
    # SOURCE_DATE_EPOCH the same instant, so two builds of one commit cannot differ by the clock.
    assert argv == ["docker", "buildx", "build", "--platform", "linux/arm64", "--tag", f"{repo}:{SHA}",
                    "--build-arg", f"REVISION={SHA}", "--build-arg", "CREATED=2026-11-27T18:30:00Z",
                    "--build-arg", "SOURCE=https://github.com/acme/refarch",
                    "--cache-from", f"type=registry,ref={repo}:buildcache",
                    "--cache-to", f"type=registry,ref={repo}:buildcache,mode=max",
                    "--sbom=true", "--provenance=mode=max",
                    "--metadata-file", argv[argv.index("--metadata-file") + 1], "--push", "services/products"]
    assert runner.envs[-1] == {"SOURCE_DATE_EPOCH": "1795804200"}
    assert built == manifest.read(out) == manifest.Manifest(SHA, "2026-11-27T18:30:00Z",
                                                            {"products": f"{repo}@{DIGEST}"})


def test_repository_comes_from_the_stack_outputs_when_the_stack_exists(aws_env, clients, tree, tmp_path):
    clients.ecr.create_repository(repositoryName="custom/products")
    runner = DockerRunner()
    stack = RecordingStack(outputs={"services": {"products": {"repository_url": "999999999999.dkr.ecr.us-east-1"
                                                                                ".amazonaws.com/custom/products"}}})
    build.run("dev", push=True, manifest_path=tmp_path / "m.json",
              deps=make_deps(stack=stack, runner=runner, git=FakeGit(sha=SHA, root=tree)))
    assert f"999999999999.dkr.ecr.us-east-1.amazonaws.com/custom/products:{SHA}" in runner.argvs[1]


def test_dirty_tree_is_refused_unless_allowed_and_then_never_takes_the_commit_tag(aws_env, tree, tmp_path,
                                                                                   repositories):
    runner = DockerRunner()
    deps = make_deps(stack=NoStack(), runner=runner, git=FakeGit(sha=SHA, root=tree, dirty=["services/products/x.py"]))
    with pytest.raises(OpsError, match="uncommitted changes \\(services/products/x.py\\).*--allow-dirty"):
        build.run("dev", push=True, manifest_path=tmp_path / "m.json", deps=deps)
    assert runner.calls == []
    build.run("dev", push=True, allow_dirty=True, manifest_path=tmp_path / "m.json", deps=deps)
    tag = runner.argvs[1][runner.argvs[1].index("--tag") + 1]
    assert tag.startswith(f"{REGISTRY}/refarch-dev/products:{SHA}-dirty-")
    assert f"REVISION={SHA}" in runner.argvs[1]


def test_unknown_service_is_named(tree, tmp_path):
    with pytest.raises(OpsError, match="no service named 'nope' .*services with a build: products"):
        build.run("dev", service="nope", manifest_path=tmp_path / "m.json",
                  deps=make_deps(git=FakeGit(root=tree)))


def test_dry_run_prints_the_commands_and_runs_none(aws_env, tree, tmp_path, capsys):
    runner = DockerRunner()
    out = tmp_path / "m.json"
    build.run("dev", push=True, dry_run=True, manifest_path=out,
              deps=make_deps(stack=NoStack(), runner=runner, git=FakeGit(sha=SHA, root=tree)))
    assert runner.calls == [] and not out.exists()
    err = capsys.readouterr().err
    assert "would run: SOURCE_DATE_EPOCH=1795804200 docker buildx build --platform linux/arm64" in err
    assert "would run: docker login" in err


def test_build_without_push_says_it_made_a_local_image_and_no_digest(aws_env, tree, tmp_path, capsys):
    runner = DockerRunner()
    out = tmp_path / "m.json"
    built = build.run("dev", push=False, manifest_path=out,
                      deps=make_deps(stack=NoStack(), runner=runner, git=FakeGit(sha=SHA, root=tree)))
    argv = runner.argvs[-1]
    assert "--load" in argv and "--push" not in argv
    assert not any(a.startswith(("--cache-to", "--sbom", "--provenance")) for a in argv)
    assert built is not None and built.images == {}
    printed = capsys.readouterr().out
    assert (f"products: built the local image {REGISTRY}/refarch-dev/products:{SHA}; not pushed, so no "
            f"registry digest (build with --push to get one)") in printed


class NewStack(RecordingStack):
    """A stack that was never deployed: no outputs; a targeted up creates what it targets in moto."""

    def __init__(self, ecr):
        super().__init__()
        self.ecr = ecr

    def outputs(self):
        raise OpsError("stack dev has no outputs yet")

    def up(self, target_urns=None, on_event=None):
        super().up(target_urns, on_event)
        for urn in target_urns or []:
            assert urn.split("::")[-2].endswith("$aws:ecr/repository:Repository"), urn
            self.ecr.create_repository(repositoryName=f"refarch-dev/{urn.rsplit('::', 1)[1].split('-')[-2]}")


def test_first_push_creates_exactly_the_repositories_first_with_a_targeted_up(aws_env, clients, tree, tmp_path,
                                                                              capsys):
    from ops import synth
    from ops.delivery import default_deps

    runner = DockerRunner()
    stack = NewStack(clients.ecr)
    build.run("dev", push=True, manifest_path=tmp_path / "m.json",
              deps=make_deps(stack=stack, runner=runner, git=FakeGit(sha=SHA, root=tree)))
    (urn,) = [r["urn"] for r in synth.run(default_deps().load_config("dev"), "dev").of_type(
        "aws:ecr/repository:Repository") if r["inputs"]["name"] == "refarch-dev/products"]
    assert ("up", [urn]) in stack.calls  # only the repository, nothing that would wait for an image
    assert clients.ecr.describe_repositories(repositoryNames=["refarch-dev/products"])["repositories"]
    assert any(argv[:3] == ["docker", "buildx", "build"] for argv in runner.argvs)  # pushed after it existed
    assert "first push to products: creating the repositories first" in capsys.readouterr().err


def test_first_push_stops_before_pushing_when_the_repository_is_still_missing(aws_env, clients, tree, tmp_path):
    runner = DockerRunner()

    class NoOutputs(RecordingStack):  # never deployed, and its up creates nothing
        def outputs(self):
            raise OpsError("no outputs")

    stack = NoOutputs()
    with pytest.raises(OpsError, match="targeted up did not create the repositories of products: nothing was pushed"):
        build.run("dev", push=True, manifest_path=tmp_path / "m.json",
                  deps=make_deps(stack=stack, runner=runner, git=FakeGit(sha=SHA, root=tree)))
    assert not any(argv[:3] == ["docker", "buildx", "build"] for argv in runner.argvs)


def test_build_of_a_local_stack_refuses_push_before_anything_runs(aws_env, clients, tree, tmp_path):
    runner = DockerRunner()
    with pytest.raises(OpsError, match="targets the local engine: there is no registry to push to"):
        build.run("local", push=True, manifest_path=tmp_path / "m.json",
                  deps=make_deps(stack=NoStack(), runner=runner, git=FakeGit(sha=SHA, root=tree)))
    assert runner.calls == []
