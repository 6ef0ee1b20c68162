"""`refarch:flags`: what AppConfig would refuse is refused by the schema, one line per wrong field."""

from __future__ import annotations

import pytest

from tests.config.stack_values import SRC, problems

FLAGS = "refarch:flags"


def flags(*declared, **rollout) -> dict:
    return {"declared": list(declared), **({"rollout": rollout} if rollout else {})}


def test_shipped_stacks_declare_the_sample_flag(config_of):
    for stack in ("dev", "staging", "prod"):
        flag = config_of(stack).flags.get("catalog-sort-by-price")
        assert flag.default is False and flag.description


@pytest.mark.parametrize("name", ["Sort", "1-sort", "sort by price", "s" * 65, "sort.price"])
def test_flag_keys_follow_appconfig_pattern(name):
    assert problems(refarch__flags=flags({"name": name})) == [
        f"{SRC}: {FLAGS}.declared[0].name: {name!r} is not an AppConfig flag key: a lowercase letter, then up "
        "to 63 letters, digits, '_' or '-'"]


@pytest.mark.parametrize("name", ["sort-by-price", "sort_by_price", "sortByPrice", "s" * 64])
def test_kebab_snake_and_camel_keys_are_fine(name):
    assert problems(refarch__flags=flags({"name": name})) == []


def test_duplicate_names_name_both_entries():
    assert problems(refarch__flags=flags({"name": "a"}, {"name": "b"}, {"name": "a"})) == [
        f"{SRC}: {FLAGS}.declared[2].name: 'a' is already used by flags.declared[0]"]


def test_default_must_be_a_boolean_and_unknown_keys_are_named():
    assert problems(refarch__flags=flags({"name": "a", "default": "maybe", "colour": "red"})) == [
        f"{SRC}: {FLAGS}.declared[0].default: Input should be a valid boolean (got 'maybe')",
        f"{SRC}: {FLAGS}.declared[0].colour: unknown key (known keys: name, description, default, attributes)"]


def test_each_wrong_attribute_gets_its_own_line():
    attrs = {"enabled": 1, "nested": {"a": 1}, "Bad": 1, "mixed": [1, "a"], "many": list(range(26)),
             "long": "x" * 1025, "page-size": 20, "labels": ["a", "b"], "ratio": 0.5, "on": True}
    assert problems(refarch__flags=flags({"name": "a", "attributes": attrs})) == [
        f"{SRC}: {FLAGS}.declared[0].attributes.enabled: 'enabled' is reserved by AppConfig for the flag's own "
        "value: choose another attribute name",
        f"{SRC}: {FLAGS}.declared[0].attributes.nested: {{'a': 1}} is not a value AppConfig accepts for an "
        "attribute: use a string, a number, a boolean, a list of strings or a list of numbers",
        f"{SRC}: {FLAGS}.declared[0].attributes.Bad: 'Bad' is not an AppConfig attribute name: a lowercase "
        "letter, then up to 63 letters, digits, '_' or '-'",
        f"{SRC}: {FLAGS}.declared[0].attributes.mixed: [1, 'a'] is not a value AppConfig accepts for an "
        "attribute: use a string, a number, a boolean, a list of strings or a list of numbers",
        f"{SRC}: {FLAGS}.declared[0].attributes.many: 26 items: an AppConfig attribute array holds at most 25",
        f"{SRC}: {FLAGS}.declared[0].attributes.long: a string of 1025 characters: AppConfig attribute strings "
        "hold at most 1024",
    ]


def test_too_many_attributes_and_flags():
    attrs = {f"a{i}": i for i in range(26)}
    assert problems(refarch__flags=flags({"name": "a", "attributes": attrs})) == [
        f"{SRC}: {FLAGS}.declared[0].attributes: 26 attributes, an AppConfig flag holds at most 25"]
    assert problems(refarch__flags=flags(*({"name": f"f{i}"} for i in range(101)))) == [
        f"{SRC}: {FLAGS}.declared: 101 flags, an AppConfig feature-flag profile holds at most 100"]


def test_rollout_numbers_are_appconfig_ranges():
    assert problems(refarch__flags=flags(growth_factor=0.5, bake_minutes=1441)) == [
        f"{SRC}: {FLAGS}.rollout.growth_factor: Input should be greater than or equal to 1 (got 0.5)",
        f"{SRC}: {FLAGS}.rollout.bake_minutes: Input should be less than or equal to 1440 (got 1441)"]
    assert problems(refarch__flags=flags(growth="immediate", bake_minutes=5)) == [
        f"{SRC}: {FLAGS}.rollout: bake_minutes does not apply to growth immediate (0 minutes, 100 %, no bake)"]
    assert problems(refarch__flags=flags(growth="exponential", duration_minutes=0)) == [
        f"{SRC}: {FLAGS}.rollout: duration_minutes 0 makes growth exponential immediate: say `growth: "
        "immediate` or give the rollout some minutes"]


def test_strategy_per_environment(config_of):
    assert config_of("dev").flags.rollout.strategy() == {
        "deployment_duration_in_minutes": 0, "growth_factor": 100.0, "final_bake_time_in_minutes": 0,
        "growth_type": "LINEAR"}
    assert config_of("prod").flags.rollout.strategy() == {
        "deployment_duration_in_minutes": 10, "growth_factor": 20.0, "final_bake_time_in_minutes": 10,
        "growth_type": "LINEAR"}


def test_content_is_appconfig_feature_flag_format(config_of):
    config = config_of("dev", flags=flags(
        {"name": "sort", "description": "d", "default": True, "attributes": {"size": 3, "tags": ["a"]}},
        {"name": "plain"}))
    assert config.flags.content() == {
        "version": "1",
        "flags": {"sort": {"name": "sort", "description": "d", "attributes": {
                      "size": {"constraints": {"type": "number"}},
                      "tags": {"constraints": {"type": "array", "elements": {"type": "string"}}}}},
                  "plain": {"name": "plain"}},
        "values": {"sort": {"enabled": True, "size": 3, "tags": ["a"]}, "plain": {"enabled": False}},
    }
