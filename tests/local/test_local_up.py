"""`invoke up` / `invoke down` for a local stack: refusals, secrets, and what reaches the Pulumi adapter."""

from __future__ import annotations

import stat

import pytest

from infra.local import secrets
from ops import local
from ops.errors import OpsError


class Recorder:
    """The Pulumi adapter's seam (no CLI here): records the calls the flow makes, in order."""

    def __init__(self):
        self.calls: list[tuple] = []

    def select(self, stack, create=False):
        self.calls.append(("select", stack, create))

    def up(self, target_urns=None, on_event=None):
        self.calls.append(("up",))

    def destroy(self, on_event=None):
        self.calls.append(("destroy",))

    def outputs(self):
        return {"gateway_url": "http://127.0.0.1:8080", "telemetry_ui_url": "http://127.0.0.1:16686"}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "ROOT", tmp_path)
    monkeypatch.delenv(local.IMAGES_ENV, raising=False)
    return tmp_path


def test_up_refuses_an_aws_stack_before_anything_happens(repo):
    adapter = Recorder()
    with pytest.raises(OpsError, match="stack 'dev' targets aws: .* use `invoke deploy --stack dev`"):
        local.up("dev", adapter, ping=lambda: None, build=lambda c: {}, cli=lambda: None)
    assert adapter.calls == [] and not (repo / ".local").exists()


def test_up_without_an_engine_says_so_and_writes_nothing(repo):
    def dead():
        raise ConnectionError("refused")

    adapter = Recorder()
    with pytest.raises(OpsError, match="no Docker engine answers on this machine's socket"):
        local.up("local", adapter, ping=dead, build=lambda c: {}, cli=lambda: None)
    assert adapter.calls == [] and not (repo / ".local").exists()


def test_up_writes_secrets_once_in_a_private_directory_then_creates_and_updates_the_stack(repo, capsys):
    adapter = Recorder()
    image_id = "sha256:" + "b" * 64
    outputs = local.up("local", adapter, ping=lambda: None, build=lambda c: {"products": image_id}, cli=lambda: None)
    directory = repo / ".local/secrets"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in (secrets.DATABASE_MASTER, secrets.DATABASE_APP, secrets.CACHE_APP):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o644  # read through the 0700 directory only
        assert len((directory / name).read_text()) >= 24
    password = (directory / secrets.CACHE_APP).read_text()
    assert (directory / secrets.CACHE_ACL).read_text() == f"user default off\nuser app on >{password} ~* &* +@all\n"
    assert adapter.calls == [("select", "local", True), ("up",)]
    # The program reads what was just built, so the container follows the new image.
    import json
    import os
    assert json.loads(os.environ[local.IMAGES_ENV]) == {"products": image_id}
    assert outputs["gateway_url"] == "http://127.0.0.1:8080"
    printed = capsys.readouterr().out
    assert "gateway: http://127.0.0.1:8080" in printed and "telemetry: http://127.0.0.1:16686" in printed
    assert password not in printed

    before = {p.name: p.read_text() for p in directory.iterdir()}
    local.up("local", Recorder(), ping=lambda: None, build=lambda c: {}, cli=lambda: None)
    assert {p.name: p.read_text() for p in directory.iterdir()} == before  # PostgreSQL keeps its password


def test_down_destroys_the_selected_local_stack_only(repo):
    adapter = Recorder()
    local.down("local", adapter)
    assert adapter.calls == [("select", "local", False), ("destroy",)]
    with pytest.raises(OpsError, match="targets aws"):
        local.down("prod", Recorder())


class ConfigRecorder(Recorder):
    def set_config(self, key, value, path=False):
        self.calls.append(("set_config", key, value, path))


def test_local_pin_writes_every_image_by_digest_or_nothing(repo):
    digest = "sha256:" + "e" * 64
    adapter = ConfigRecorder()
    pinned = local.pin("local", adapter, lambda ref: digest)
    assert pinned["database"] == f"postgres:16-bookworm@{digest}"
    assert ("set_config", "refarch:local.images.gateway", f"haproxy:3.2-bookworm@{digest}", True) in adapter.calls
    assert len([c for c in adapter.calls if c[0] == "set_config"]) == 5

    def unreachable(ref):
        if "haproxy" in ref:
            raise ConnectionError("no route to registry-1.docker.io")
        return digest

    adapter = ConfigRecorder()
    with pytest.raises(OpsError, match="local.images.gateway: cannot resolve haproxy:3.2-bookworm .* nothing was written"):
        local.pin("local", adapter, unreachable)
    assert not [c for c in adapter.calls if c[0] == "set_config"]


def test_up_without_the_pulumi_cli_says_so_before_building_or_writing(repo):
    def no_cli():
        raise OpsError("the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/")

    built = []
    with pytest.raises(OpsError, match="the Pulumi CLI is not installed"):
        local.up("local", Recorder(), ping=lambda: None, build=lambda c: built.append(c) or {}, cli=no_cli)
    assert built == [] and not (repo / ".local").exists()
