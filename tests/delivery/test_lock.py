"""The stack lock against a real moto server: one run per stack, expiry, takeover, release."""

from __future__ import annotations

import json

import pytest

from ops.delivery.lock import StackLock, lock_name
from ops.errors import OpsError


def test_second_owner_is_refused_and_told_who_holds_the_stack(clients):
    first = StackLock(clients, "dev", owner="arn:aws:iam::123456789012:user/alice").acquire()
    first.attach("20261127T183000.000Z-abc1234")

    with pytest.raises(OpsError) as refused:
        StackLock(clients, "dev", owner="arn:aws:iam::123456789012:user/bob").acquire()
    message = refused.value.message
    assert message.startswith("stack dev is locked by arn:aws:iam::123456789012:user/alice since 20")
    assert "(release 20261127T183000.000Z-abc1234)" in message
    assert first.holder()["owner"].endswith("user/alice")  # the refusal changed nothing


def test_locks_of_different_stacks_are_independent(clients):
    StackLock(clients, "dev", owner="alice").acquire()
    assert StackLock(clients, "prod", owner="bob").acquire().held


def test_release_frees_the_stack(clients):
    with StackLock(clients, "dev", owner="alice") as lock:
        assert lock.holder()["owner"] == "alice"
    assert lock.holder() is None
    assert StackLock(clients, "dev", owner="bob").acquire().holder()["owner"] == "bob"


def test_release_happens_even_when_the_run_fails(clients):
    with pytest.raises(RuntimeError), StackLock(clients, "dev", owner="alice"):
        raise RuntimeError("up failed")
    assert StackLock(clients, "dev", owner="bob").holder() is None


def test_expired_lock_is_taken_over_with_a_warning(clients, capsys):
    dead = StackLock(clients, "dev", owner="alice", ttl_seconds=0).acquire()

    taker = StackLock(clients, "dev", owner="bob").acquire()
    assert taker.holder()["owner"] == "bob"
    assert "took over the expired lock of stack dev held by alice" in capsys.readouterr().err

    # The dead run coming back must not free the stack under the new holder.
    dead.release()
    assert taker.holder()["owner"] == "bob"


def test_only_one_of_two_runs_takes_over_the_same_expired_lock(clients):
    stale = StackLock(clients, "dev", owner="alice", ttl_seconds=0).acquire()
    # carol is half-way through taking it over: she holds the one-shot marker for alice's token.
    clients.ssm.put_parameter(Name=f"/refarch/dev/lock-takeover/{stale.token}", Value="carol", Type="String")

    with pytest.raises(OpsError, match="another run is taking over the expired lock of alice"):
        StackLock(clients, "dev", owner="bob").acquire()


def test_holder_and_force_unlock(clients):
    lock = StackLock(clients, "dev", owner="alice", ttl_seconds=60)
    assert lock.holder() is None
    lock.acquire()
    record = json.loads(clients.ssm.get_parameter(Name=lock_name("dev"))["Parameter"]["Value"])
    assert record["owner"] == "alice" and record["since"] < record["expires"]

    removed = StackLock(clients, "dev", owner="ops").force_unlock()
    assert removed["owner"] == "alice"
    assert lock.holder() is None
    with pytest.raises(OpsError, match="lost its lock"):
        lock.attach("20261127T183000.000Z-abc1234")  # a run whose lock was forced must notice
