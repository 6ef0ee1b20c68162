"""The pack's layout: every topic module is in the one list, and every policy name is unique."""

from __future__ import annotations

from ops.policy_run import PACK_DIR, load_policies


def test_every_topic_module_is_part_of_the_pack() -> None:
    pack = load_policies()
    modules = {path.stem for path in PACK_DIR.glob("*_policies.py")} - {"refarch_policies"}
    assert {topic.__name__ for topic in pack.TOPICS} == modules
    names = [p.name for p in pack.POLICIES]
    for topic in pack.TOPICS:
        assert topic.POLICIES, topic.__name__
        assert {p.name for p in topic.POLICIES} <= set(names), topic.__name__
    assert len(names) == len(set(names)) == sum(len(t.POLICIES) for t in pack.TOPICS)


def test_topic_modules_stay_small() -> None:
    for path in PACK_DIR.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name
