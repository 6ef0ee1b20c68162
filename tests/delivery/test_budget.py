"""The worst-case run length is built from the code's own timeouts, so CI's limits follow them."""

from __future__ import annotations

import inspect

from infra.aws import deployment
from ops.delivery import budget, migrations, verify


def test_the_budget_uses_the_timeouts_the_code_sets():
    assert budget.MIGRATION_MINUTES * 60 == migrations.MIGRATION_TIMEOUT_SECONDS
    defaults = inspect.signature(verify.verify).parameters
    assert budget.STABLE_MINUTES * 60 == defaults["stable_timeout"].default
    assert budget.HEALTH_MINUTES * 60 == defaults["health_timeout"].default
    assert budget.SERVICE_TIMEOUT_MARGIN_MINUTES == deployment.SERVICE_TIMEOUT_MARGIN_MINUTES


def test_worst_case_counts_migrations_up_verify_and_an_automatic_rollback(config_of):
    config = config_of("prod")
    once = budget.up_minutes(config) + budget.verify_minutes(config)
    migrations = budget.MIGRATION_MINUTES if any(s.migrate_command for s in config.services) else 0
    assert budget.worst_case_minutes(config) == budget.SETUP_MINUTES + migrations + 2 * once
    assert budget.up_minutes(config) == config.delivery.deployment.total_bake_minutes + 20
