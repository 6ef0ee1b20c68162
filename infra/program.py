"""The program's entry: the stack's validated config, rendered for the target it names.

Kept apart from __main__.py so that importing it registers nothing: the synth harness and tests
call build() inside Pulumi's mock runtime.
"""

from __future__ import annotations

import pulumi

from infra import config as cfg


def load_config() -> cfg.StackConfig:
    """The stack's config as the Pulumi runtime holds it, validated; a clean error otherwise."""
    from pulumi.runtime import config as runtime_config

    # The runtime keeps every key in one map; reading it whole lets unknown keys be reported.
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    stack = pulumi.get_stack()
    try:
        return cfg.parse(values, stack, f"stacks/Pulumi.{stack}.yaml")
    except cfg.ConfigError as exc:
        raise pulumi.RunError(f"invalid stack config:\n{exc}") from None


def build(config: cfg.StackConfig | None = None) -> None:
    config = config or load_config()
    # Each target imports only its own provider SDK.
    if config.target == "local":
        from infra.local.program import build as build_local

        build_local(config)
    else:
        from infra.aws.program import build as build_aws

        build_aws(config)
