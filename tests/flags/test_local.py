"""The local target: the flags file the service reads through FLAGS_URL, as the agent would answer."""

from __future__ import annotations

import asyncio
import json

from infra.local import flags as local_flags
from ops.synth import synth_stack

SORT = "catalog-sort-by-price"


def test_the_service_mounts_the_flags_file_read_only_and_points_flags_url_at_it():
    synth = synth_stack("local")
    service = synth.one("docker:index/container:Container", "products-service")["inputs"]
    env = dict(e.split("=", 1) for e in service["envs"])
    assert env["FLAGS_URL"] == "file:///run/flags/flags.json"
    assert json.loads(env["FLAGS_DEFAULTS"]) == {SORT: False}
    mount = next(m for m in service["mounts"] if m["target"] == local_flags.MOUNT)
    assert mount["readOnly"] is True and mount["type"] == "bind"
    assert mount["source"].endswith("/.local/flags/local.json")
    migration = synth.one("docker:index/container:Container", "products-migrate")["inputs"]
    assert not [e for e in migration["envs"] if e.startswith("FLAGS_")]


def test_the_file_keeps_hand_edits_and_follows_the_declarations(tmp_path, config_of):
    path = tmp_path / "flags" / "local.json"
    config = config_of("local").flags
    assert local_flags.ensure(path, config) is True
    assert json.loads(path.read_text()) == {SORT: {"enabled": False}}
    assert local_flags.ensure(path, config) is False  # nothing to change
    path.write_text(json.dumps({SORT: {"enabled": True}, "gone": {"enabled": True}}))
    local_flags.ensure(path, config)
    assert json.loads(path.read_text()) == {SORT: {"enabled": True}}  # the edit kept, the stray dropped


def test_the_services_flag_code_reads_the_file_unchanged(tmp_path, config_of):
    from products.flags import Flags, FlagSettings

    path = tmp_path / "local.json"
    local_flags.ensure(path, config_of("local").flags)
    client = Flags(FlagSettings(url=f"file://{path}", defaults={SORT: True}, ttl_seconds=0))
    assert (asyncio.run(client.get(SORT)).enabled, asyncio.run(client.get(SORT)).source) == (False, "agent")
    path.write_text(json.dumps({SORT: {"enabled": True}}))
    assert asyncio.run(client.get(SORT)).enabled is True
    path.unlink()
    assert (asyncio.run(client.get(SORT)).enabled, asyncio.run(client.get(SORT)).source) == (True, "default")
