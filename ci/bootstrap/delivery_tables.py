"""Contract C1: the deploy lock and the release ledger of ops/delivery, one pair per account.

Both tables: PAY_PER_REQUEST, SSE with the bootstrap's state key, point-in-time recovery and
deletion protection on. The lock has no TTL: an expired lock item is still the record of its
fencing token, which only ever increases.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_key: str
    sort_key: str | None = None

    def attributes(self) -> list[dict[str, str]]:
        keys = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        return [{"name": key, "type": "S"} for key in keys]


def lock_table(project: str) -> TableSpec:
    return TableSpec(name=f"{project}-deploy-locks", partition_key="stack")


def ledger_table(project: str) -> TableSpec:
    # Release ids sort by time (`YYYYMMDDTHHMMSS.mmmZ-<sha7>`, ops/delivery/ledger.py): the newest
    # release is the greatest key.
    return TableSpec(name=f"{project}-releases", partition_key="stack", sort_key="release_id")
