"""Configuration from the platform's environment variables (no servers needed)."""

from __future__ import annotations

import pytest

from products.config import ConfigError, Settings

REQUIRED = {
    "DATABASE_HOST": "db.internal",
    "DATABASE_NAME": "products",
    "DATABASE_USER": "app",
    "DATABASE_PASSWORD": "s3cr3t-Pa55",
    "CACHE_HOST": "cache.internal",
}


def test_defaults_are_production_safe() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.port == 8080
    assert settings.database.port == 5432
    assert settings.database.sslmode == "require"
    assert settings.cache.port == 6379
    assert settings.cache.tls is True
    assert settings.cache.auth_token is None


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        REQUIRED
        | {
            "DATABASE_PORT": "6543",
            "DATABASE_SSLMODE": "disable",
            "CACHE_PORT": "6380",
            "CACHE_TLS": "false",
            "CACHE_AUTH_TOKEN": "tok-en",
            "PORT": "9000",
            "LOG_LEVEL": "debug",
        }
    )
    assert (settings.database.port, settings.database.sslmode) == (6543, "disable")
    assert (settings.cache.port, settings.cache.tls, settings.cache.auth_token) == (
        6380,
        False,
        "tok-en",
    )
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    conninfo = settings.database.conninfo()
    assert "sslmode=disable" in conninfo and "port=6543" in conninfo


def test_all_problems_are_reported_at_once() -> None:
    env = {"DATABASE_PORT": "nope", "CACHE_TLS": "maybe", "DATABASE_SSLMODE": "sometimes"}
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(env)
    message = str(excinfo.value)
    for fragment in [
        *REQUIRED,
        "DATABASE_PORT must be an integer",
        "CACHE_TLS",
        "DATABASE_SSLMODE",
    ]:
        assert fragment in message


def test_secrets_never_appear_in_repr_or_descriptions() -> None:
    settings = Settings.from_env(REQUIRED | {"CACHE_AUTH_TOKEN": "tok-en-value"})
    shown = " ".join([repr(settings), settings.database.describe(), settings.cache.describe()])
    assert "s3cr3t-Pa55" not in shown
    assert "tok-en-value" not in shown
    assert "db.internal" in shown and "cache.internal" in shown
