"""Offline change summary between two synth outputs."""

from __future__ import annotations

import copy

from ops.review import changes


def test_created_deleted_and_updated_by_urn_with_changed_keys(doc):
    doc.add("database", "aws:rds/instance:Instance", "db", {"instanceClass": "db.t4g.micro", "multiAz": False})
    doc.add("cache", "aws:secretsmanager/secret:Secret", "old")
    doc.add("encryption", "aws:kms/key:Key", "key", {"enableKeyRotation": True})
    base = doc.json()
    head = copy.deepcopy(base)
    head["resources"] = [r for r in head["resources"] if r["name"] != "old"]
    db = next(r for r in head["resources"] if r["name"] == "db")
    db["inputs"].update(instanceClass="db.t4g.small", multiAz=True)
    db["options"]["protect"] = True
    head["resources"].append({**copy.deepcopy(db), "urn": db["urn"].replace("::db", "::replica"), "name": "replica"})

    summary = changes.summarize(base, head)
    assert [c.name for c in summary.created] == ["replica"]
    assert [c.name for c in summary.deleted] == ["old"]
    assert [(c.name, c.keys) for c in summary.updated] == [("db", ("instanceClass", "multiAz", "options.protect"))]
    assert summary.unchanged == 1  # the key; components are not counted
    assert summary.counts() == "+1 ~1 -1"


def test_values_never_appear_only_key_names(doc):
    doc.add("cache", "aws:elasticache/replicationGroup:ReplicationGroup", "cache", {"authToken": "[secret]", "port": 6379})
    base = doc.json()
    head = copy.deepcopy(base)
    head["resources"][-1]["inputs"]["port"] = 6380
    text = changes.render_markdown(changes.summarize(base, head))
    assert "`port`" in text and "6380" not in text and "6379" not in text


def test_deletions_are_called_out_before_the_rest(doc):
    doc.add("database", "aws:rds/instance:Instance", "db")
    base = doc.json()
    head = {**base, "resources": [r for r in base["resources"] if r["name"] != "db"]}
    doc.add("encryption", "aws:kms/key:Key", "key")
    head["resources"].append(doc.resources[-1])
    text = changes.render_markdown(changes.summarize(base, head))
    assert text.index("> [!WARNING]") < text.index("<details>")
    assert "`aws:rds/instance:Instance` `db`" in text


def test_identical_outputs_have_no_changes(doc):
    doc.add("encryption", "aws:kms/key:Key", "key")
    summary = changes.summarize(doc.json(), copy.deepcopy(doc.json()))
    assert summary.empty and changes.render_markdown(summary) == "No changes (1 resources unchanged)."

