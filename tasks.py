"""Invoke tasks: the one interface for people and CI. Each task parses flags and delegates to `ops`.

Heavy modules (pulumi, pulumi_aws, boto3) are imported inside the tasks that need them, so
`invoke --list` and `invoke --help` stay instant.
"""

from __future__ import annotations

import functools

from invoke import Exit, task


def _friendly(fn):
    """Turn the errors a user can act on into a clean message and exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from infra.config import ConfigError
        from ops.errors import OpsError

        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise Exit(f"invalid stack config:\n{exc}", code=1) from None
        except OpsError as exc:
            raise Exit(f"error: {exc.message}", code=exc.code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


# --- architecture -------------------------------------------------------------------------------

@task(help={"stack": "stack name (stacks/Pulumi.<stack>.yaml)", "out": "write the synth JSON here"})
@_friendly
def synth(c, stack, out=None):
    """Run the Pulumi program offline under the mock runtime: no CLI, no credentials, no network."""
    from ops.synth import command

    command(stack, out)


# --- delivery (issue 3: ops/delivery/) ----------------------------------------------------------
# DELIVERY-TASKS-BEGIN
# DELIVERY-TASKS-END


# --- guardrails and CI (issue 4: policy/, ops/policy_run.py) ------------------------------------
# CI-TASKS-BEGIN
# CI-TASKS-END


# --- review (issue 5: ops/review/) --------------------------------------------------------------
# REVIEW-TASKS-BEGIN
# REVIEW-TASKS-END
