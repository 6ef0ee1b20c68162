"""The release ledger against moto's DynamoDB: records, ordering, 150 kept, last good, interrupted runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ops.delivery.ledger import LEDGER_TABLE, Ledger, config_hash, new_release_id
from ops.delivery.lock import StackLock
from ops.errors import OpsError
from tests.delivery.conftest import bootstrap_tables

DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-dev-products@sha256:" + "a" * 64


@pytest.fixture
def ledger(clients) -> Ledger:
    return Ledger(clients, "dev")


def release(ledger: Ledger, sha: str, outcome: str | None, verified: bool = False, kind: str = "deploy"):
    started = ledger.begin(sha * 40, {"products": DIGEST}, "h" * 64, kind)
    if outcome is None:
        return started
    return ledger.finish(started.id, outcome, verified=verified)


def test_begin_then_finish_is_stored_in_dynamodb_with_everything_a_release_is(ledger, clients, monkeypatch):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/refarch")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("REFARCH_APPROVER", "carol")
    started = ledger.begin("abcdef1234567890", {"products": DIGEST}, "c" * 64, "deploy",
                           replaces="20260101T000000.000Z-0000000", notes=["first"])
    assert started.outcome == "deploying" and started.finished_at is None and not started.verified
    assert started.id.endswith("-abcdef1") and started.stack == "dev"
    assert started.actor.startswith("arn:aws:")  # the STS identity, not a local user name

    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/refarch-dev-products:7"
    done = ledger.finish(started.id, "succeeded", verified=True, notes=["verified in 3 checks"],
                         task_definitions={"products": arn})
    assert ledger.get(started.id) == done
    assert done.outcome == "succeeded" and done.verified and done.finished_at is not None
    assert done.images == {"products": DIGEST} and done.config_hash == "c" * 64
    assert done.replaces == "20260101T000000.000Z-0000000"
    assert done.notes == ["first", "verified in 3 checks"]
    assert done.task_definitions == {"products": arn}
    assert done.ci_run_url == "https://github.com/acme/refarch/actions/runs/4242"
    assert done.approver == "carol"

    item = clients.dynamodb.get_item(TableName=LEDGER_TABLE, Key={"stack": {"S": "dev"},
                                                                   "release_id": {"S": started.id}})["Item"]
    assert item["outcome"] == {"S": "succeeded"} and item["git_sha"] == {"S": "abcdef1234567890"}


def test_table_name_is_the_bootstraps():
    spec = bootstrap_tables().ledger_table("refarch")
    assert (spec.name, spec.partition_key, spec.sort_key) == (LEDGER_TABLE, "stack", "release_id")


def test_150_releases_are_all_kept_newest_first(ledger):
    made = [ledger.begin(f"{i:07x}", {"products": DIGEST}, "h", "deploy").id for i in range(150)]
    assert made == sorted(made)
    history = ledger.history(limit=1000)
    assert [r.id for r in history] == made[::-1]
    assert ledger.get(made[0]).git_sha == "0000000"  # the oldest is still there


def test_ledgers_of_two_stacks_are_separate(clients):
    release(Ledger(clients, "dev"), "a", "succeeded", verified=True)
    assert Ledger(clients, "staging").history() == []
    assert Ledger(clients, "staging").current() is None


def test_unknown_release_is_a_clean_error(ledger):
    with pytest.raises(OpsError, match=r"stack dev has no release '20990101T000000.000Z-nope'"):
        ledger.get("20990101T000000.000Z-nope")


def test_finish_refuses_deploying_as_an_outcome(ledger):
    started = release(ledger, "a", None)
    with pytest.raises(ValueError, match="not a final outcome"):
        ledger.finish(started.id, "deploying", verified=False)


def test_history_is_newest_first_across_pages_and_honours_limit(ledger):
    # 30 records: more than one Query page (25).
    made = [release(ledger, f"{i:x}", "succeeded", verified=True) for i in range(30)]
    ids = [r.id for r in made]
    assert ids == sorted(ids), "release ids must sort by time"
    assert [r.id for r in ledger.history()] == ids[::-1]
    assert [r.id for r in ledger.history(limit=27)] == ids[::-1][:27]


def test_current_and_last_good_skip_failed_unverified_and_running_releases(ledger):
    good_1 = release(ledger, "1", "succeeded", verified=True)
    release(ledger, "2", "failed")
    good_3 = release(ledger, "3", "succeeded", verified=True)
    unverified_4 = release(ledger, "4", "succeeded", verified=False)  # e.g. a break-glass rollback
    release(ledger, "5", "rolled back", verified=True)
    release(ledger, "6", None)  # still deploying

    assert ledger.current().id == unverified_4.id
    assert ledger.last_good().id == good_3.id
    assert ledger.last_good(before=good_3.id).id == good_1.id  # strictly older
    assert ledger.last_good(before=good_1.id) is None


def test_release_can_be_marked_rolled_back_after_failing(ledger):
    failed = release(ledger, "1", "failed")
    again = ledger.finish(failed.id, "rolled back", verified=False, notes=["rolled back by X"])
    assert again.outcome == "rolled back" and again.finished_at == failed.finished_at
    assert again.notes == ["rolled back by X"]


def test_release_ids_sort_by_time():
    early = new_release_id("f" * 40, datetime(2026, 11, 27, 18, 30, 0, 5000, tzinfo=UTC))
    late = new_release_id("0" * 40, datetime(2026, 11, 27, 18, 30, 0, 6000, tzinfo=UTC))
    assert early == "20261127T183000.005Z-fffffff"
    assert early < late


def test_config_hash_ignores_images(config_of):
    plain = config_of("dev")
    pinned = config_of("dev", images={"products": DIGEST})
    assert config_hash(plain) == config_hash(pinned)
    assert len(config_hash(plain)) == 64


@pytest.mark.parametrize("section, value", [
    ("delivery", {"protected": False, "allowed_branches": ["*"], "bake_seconds": 301}),
    ("database", {"instance_class": "db.t4g.small", "allocated_storage": 20, "max_allocated_storage": 50,
                  "multi_az": False, "backup_retention_days": 1, "deletion_protection": False}),
    ("monitoring", {"log_retention_days": 14, "container_insights": False}),
])
def test_config_hash_changes_with_any_other_setting(config_of, section, value):
    assert config_hash(config_of("dev")) != config_hash(config_of("dev", **{section: value}))


def test_config_hash_changes_with_a_service_setting(config_of):
    base = config_of("dev")
    scaled = base.model_copy(update={"services": [base.services[0].model_copy(update={"desired_count": 2})]})
    assert config_hash(base) != config_hash(scaled)


# -- interrupted runs ------------------------------------------------------------------------------

def test_crashed_deploy_is_reported_and_can_be_closed(ledger):
    release(ledger, "1", "succeeded", verified=True)
    crashed = release(ledger, "2", None)  # began, then the process died: no finish, no lock

    assert [r.id for r in ledger.interrupted()] == [crashed.id]
    closed = ledger.mark_interrupted(crashed.id)
    assert closed.outcome == "failed" and not closed.verified
    assert closed.notes[-1].startswith("interrupted: ")
    assert ledger.interrupted() == []


def test_running_deploy_holding_the_lock_is_not_interrupted(ledger, clients):
    with StackLock(clients, "dev", owner="alice"):
        running = release(ledger, "1", None)
        assert ledger.interrupted() == []
        # ... but a record from before this run took the lock is a crash that it reports.
    older = running
    with StackLock(clients, "dev", owner="bob") as lock:
        current = release(ledger, "2", None)
        lock.attach(current.id)
        assert [r.id for r in ledger.interrupted()] == [older.id]


def test_expired_lock_does_not_hide_a_crash(ledger, clients):
    StackLock(clients, "dev", owner="alice", ttl_seconds=0).acquire()  # then alice dies
    crashed = release(ledger, "1", None)
    assert [r.id for r in ledger.interrupted()] == [crashed.id]
