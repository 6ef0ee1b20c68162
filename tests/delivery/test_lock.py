"""The stack lock against moto's DynamoDB: one run per stack, racing runs, dead holders, fencing."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time

import pytest

from ops.delivery.aws import Clients
from ops.delivery.ledger import Ledger
from ops.delivery.lock import LOCK_TABLE, StackLock
from ops.errors import OpsError
from tests.delivery.conftest import REGION, _dynamodb, _point_at, bootstrap_tables, create_delivery_tables, free_port


def _item(clients, stack="dev"):
    return clients.dynamodb.get_item(TableName=LOCK_TABLE, Key={"stack": {"S": stack}}, ConsistentRead=True)["Item"]


def _expire(lock: StackLock) -> None:
    """The holder's process is gone: nobody renews, and its lease runs out (TTL 1 s here)."""
    lock._stop_heartbeat()
    time.sleep(1.05)


def test_table_name_is_the_bootstraps():
    assert bootstrap_tables().lock_table("refarch").name == LOCK_TABLE


def test_second_owner_is_refused_and_told_who_holds_the_stack(clients):
    first = StackLock(clients, "dev", owner="arn:aws:iam::123456789012:user/alice").acquire()
    first.attach("20261127T183000.000Z-abc1234")

    with pytest.raises(OpsError) as refused:
        StackLock(clients, "dev", owner="arn:aws:iam::123456789012:user/bob").acquire()
    message = refused.value.message
    assert message.startswith("stack dev is locked by arn:aws:iam::123456789012:user/alice since 20")
    assert "(release 20261127T183000.000Z-abc1234)" in message
    assert first.holder()["owner"].endswith("user/alice")  # the refusal changed nothing


# DynamoDB applies the writes to one item one at a time; the moto server is threaded and does
# not, so the race runs against a moto server of its own that serves one request at a time.
_SERIAL_MOTO = """
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
"""


@pytest.fixture
def serial_clients(monkeypatch):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERIAL_MOTO, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "serial moto server did not start"
                time.sleep(0.1)
        _point_at(monkeypatch, url)
        create_delivery_tables(_dynamodb(url))
        yield Clients(REGION)
    finally:
        proc.kill()
        proc.wait()


def test_runs_racing_for_one_stack_exactly_one_wins(serial_clients):
    start = threading.Barrier(8)
    won: list[StackLock] = []
    refused: list[str] = []

    def run(i: int) -> None:
        lock = StackLock(serial_clients, "dev", owner=f"run-{i}")
        start.wait()
        try:
            won.append(lock.acquire())
        except OpsError as exc:
            refused.append(exc.message)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7
    assert all(m.startswith(f"stack dev is locked by {won[0].owner} since") for m in refused)
    assert int(_item(serial_clients)["fence"]["N"]) == won[0].fence == 1


def test_runs_racing_to_take_over_one_expired_lock_exactly_one_wins(serial_clients):
    dead = StackLock(serial_clients, "dev", owner="alice", ttl_seconds=0).acquire()
    start = threading.Barrier(6)
    won: list[StackLock] = []

    def run(i: int) -> None:
        lock = StackLock(serial_clients, "dev", owner=f"run-{i}")
        start.wait()
        with contextlib.suppress(OpsError):
            won.append(lock.acquire())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and won[0].fence == dead.fence + 1
    assert StackLock(serial_clients, "dev", owner="x").holder()["owner"] == won[0].owner


def test_locks_of_different_stacks_are_independent(clients):
    StackLock(clients, "dev", owner="alice").acquire()
    assert StackLock(clients, "prod", owner="bob").acquire().held


def test_release_frees_the_stack_and_the_fence_keeps_growing(clients):
    with StackLock(clients, "dev", owner="alice") as lock:
        assert lock.holder()["owner"] == "alice"
    assert lock.holder() is None
    bob = StackLock(clients, "dev", owner="bob").acquire()
    assert bob.holder()["owner"] == "bob"
    assert (lock.fence, bob.fence) == (1, 2)


def test_release_happens_even_when_the_run_fails(clients):
    with pytest.raises(RuntimeError), StackLock(clients, "dev", owner="alice"):
        raise RuntimeError("up failed")
    assert StackLock(clients, "dev", owner="bob").holder() is None


def test_a_dead_holder_is_taken_over_and_cannot_extend_or_free_the_lock(clients, capsys):
    dead = StackLock(clients, "dev", owner="alice", ttl_seconds=1).acquire()
    _expire(dead)
    # Woken up before anyone took it: the lease already expired, so it may not be extended.
    with pytest.raises(OpsError, match="this run lost its lock"):
        dead.renew()
    taker = StackLock(clients, "dev", owner="bob").acquire()
    assert taker.holder()["owner"] == "bob" and taker.fence == 2
    assert "took over the expired lock of stack dev held by alice" in capsys.readouterr().err
    dead.release()  # the dead run coming back must not free the stack under the new holder
    assert taker.holder()["owner"] == "bob"


def test_a_takeover_that_dies_half_way_leaves_nothing_to_wedge(clients):
    # There is no takeover state: taking over is one conditional write. A taker that dies right
    # after it (before attaching a release or renewing) is itself just an expiring holder.
    StackLock(clients, "dev", owner="alice", ttl_seconds=0).acquire()
    carol = StackLock(clients, "dev", owner="carol", ttl_seconds=1).acquire()
    _expire(carol)
    bob = StackLock(clients, "dev", owner="bob").acquire()
    assert bob.holder()["owner"] == "bob" and bob.fence == 3
    with pytest.raises(OpsError, match="lost its lock"):
        carol.attach("20261127T183000.000Z-abc1234")


def test_the_heartbeat_keeps_a_long_step_locked(clients):
    with StackLock(clients, "dev", owner="alice", ttl_seconds=1, heartbeat_seconds=0.2) as lock:
        time.sleep(2.2)  # a migration or an `up` twice as long as the TTL
        with pytest.raises(OpsError, match="locked by alice"):
            StackLock(clients, "dev", owner="bob").acquire()
        lock.check()
    assert lock.holder() is None


def test_a_run_whose_lock_expired_records_nothing_more_in_the_ledger(clients):
    lock = StackLock(clients, "dev", owner="alice", ttl_seconds=1).acquire()
    ledger = Ledger(clients, "dev").fenced_by(lock)
    release = ledger.begin("a" * 40, {}, "h", "deploy")
    _expire(lock)
    StackLock(clients, "dev", owner="bob").acquire()
    with pytest.raises(OpsError, match="this run lost its lock .*release .* was not recorded"):
        ledger.finish(release.id, "succeeded", verified=True)
    assert Ledger(clients, "dev").get(release.id).outcome == "deploying"


def test_holder_and_force_unlock(clients):
    lock = StackLock(clients, "dev", owner="alice", ttl_seconds=60)
    assert lock.holder() is None
    lock.acquire()
    holder = lock.holder()
    assert holder["owner"] == "alice" and holder["since"] < holder["expires"]

    removed = StackLock(clients, "dev", owner="ops").force_unlock()
    assert removed["owner"] == "alice"
    assert lock.holder() is None
    assert StackLock(clients, "dev", owner="ops").force_unlock() is None
    with pytest.raises(OpsError, match="lost its lock"):
        lock.attach("20261127T183000.000Z-abc1234")  # a run whose lock was forced must notice
