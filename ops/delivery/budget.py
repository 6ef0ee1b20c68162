"""The longest a delivery run of a stack can take, from the timeouts the code itself allows.

CI job timeouts and the lifetime of the CI credentials must exceed this, or a job is killed (or
its credentials expire) half-way through `up` or an automatic rollback: tests/ci checks both
against every stack file.
"""

from __future__ import annotations

from infra.config import StackConfig

# The bounds the code sets (migrations.MIGRATION_TIMEOUT_SECONDS, verify.verify's defaults, the ECS
# service's custom timeout in infra/aws/deployment.py): repeated here as minutes, checked in tests.
MIGRATION_MINUTES = 30
STABLE_MINUTES = 15
HEALTH_MINUTES = 5
SERVICE_TIMEOUT_MARGIN_MINUTES = 20
SETUP_MINUTES = 10  # checkout, installs, policy pack venv, logins


def up_minutes(config: StackConfig) -> int:
    """`up` waits for the services' rollouts: Pulumi's custom timeout of the ECS service."""
    return config.delivery.deployment.total_bake_minutes + SERVICE_TIMEOUT_MARGIN_MINUTES


def verify_minutes(config: StackConfig) -> int:
    smoke = -(-config.delivery.smoke_timeout_seconds * max(len(config.services), 1) // 60)
    return STABLE_MINUTES + HEALTH_MINUTES + -(-config.delivery.bake_seconds // 60) + smoke


def worst_case_minutes(config: StackConfig) -> int:
    """Setup, migrations, `up`, verification, then an automatic rollback (`up` and verify again)."""
    migrations = MIGRATION_MINUTES if any(s.migrate_command for s in config.services) else 0
    once = up_minutes(config) + verify_minutes(config)
    return SETUP_MINUTES + migrations + 2 * once
