"""Configuration read from the environment variables the platform injects.

Secrets (DATABASE_PASSWORD, CACHE_AUTH_TOKEN) are excluded from repr() so that
logging a settings object can never leak them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from psycopg.conninfo import make_conninfo

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """The environment does not describe a usable configuration (never carries secret values)."""


class _Env:
    """Reads typed values from an environment mapping, collecting every problem before failing."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.missing: list[str] = []
        self.invalid: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            self.missing.append(name)
            return ""
        return value

    def secret(self, name: str, *, required: bool) -> str | None:
        # Secrets are taken verbatim (no stripping beyond emptiness check).
        value = self._environ.get(name)
        if value is None or value == "":
            if required:
                self.missing.append(name)
            return None
        return value

    def optional(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value is None else value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.invalid.append(f"{name} must be an integer")
            return default
        if not minimum <= value <= maximum:
            self.invalid.append(f"{name} must be between {minimum} and {maximum}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.invalid.append(f"{name} must be a number")
            return default
        if not minimum <= value <= maximum:
            self.invalid.append(f"{name} must be between {minimum} and {maximum}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.invalid.append(f"{name} must be one of true/false/1/0/yes/no/on/off")
        return default

    def choice(
        self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False
    ) -> str:
        value = self.optional(name, default)
        if upper:
            value = value.upper()
        if value not in choices:
            self.invalid.append(f"{name} must be one of {', '.join(choices)}")
            return default
        return value

    def check(self) -> None:
        problems = []
        if self.missing:
            problems.append("missing environment variables: " + ", ".join(self.missing))
        problems.extend(self.invalid)
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    name: str
    user: str
    password: str | None = field(default=None, repr=False)
    port: int = 5432
    sslmode: str = "require"
    connect_timeout: int = 5
    statement_timeout_ms: int = 5000
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DatabaseSettings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls._read(env)
        env.check()
        return settings

    @classmethod
    def _read(cls, env: _Env) -> DatabaseSettings:
        pool_min = env.integer("DATABASE_POOL_MIN_SIZE", 1, minimum=0, maximum=100)
        pool_max = env.integer("DATABASE_POOL_MAX_SIZE", 10, minimum=1, maximum=100)
        if pool_max < pool_min:
            env.invalid.append("DATABASE_POOL_MAX_SIZE must be >= DATABASE_POOL_MIN_SIZE")
        return cls(
            host=env.required("DATABASE_HOST"),
            port=env.integer("DATABASE_PORT", 5432, minimum=1, maximum=65535),
            name=env.required("DATABASE_NAME"),
            user=env.required("DATABASE_USER"),
            password=env.secret("DATABASE_PASSWORD", required=True),
            sslmode=env.choice("DATABASE_SSLMODE", "require", SSLMODES),
            connect_timeout=env.integer("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=300),
            statement_timeout_ms=env.integer(
                "DATABASE_STATEMENT_TIMEOUT_MS", 5000, minimum=0, maximum=3_600_000
            ),
            pool_min_size=pool_min,
            pool_max_size=pool_max,
            pool_timeout=env.number("DATABASE_POOL_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60),
        )

    def conninfo(self, *, application_name: str = "products", app_session: bool = True) -> str:
        """libpq connection string. ``app_session`` adds the request-serving session options."""
        options = "-c TimeZone=UTC"
        if app_session:
            options += f" -c statement_timeout={self.statement_timeout_ms}"
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=self.name,
            user=self.user,
            password=self.password or None,
            sslmode=self.sslmode,
            connect_timeout=str(self.connect_timeout),
            application_name=application_name,
            options=options,
        )

    def describe(self) -> str:
        """Where we connect, for logs: never includes the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.name} (sslmode={self.sslmode})"


@dataclass(frozen=True)
class CacheSettings:
    host: str
    port: int = 6379
    tls: bool = True
    auth_token: str | None = field(default=None, repr=False)
    ttl_seconds: int = 300
    timeout_seconds: float = 0.5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CacheSettings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls._read(env)
        env.check()
        return settings

    @classmethod
    def _read(cls, env: _Env) -> CacheSettings:
        return cls(
            host=env.required("CACHE_HOST"),
            port=env.integer("CACHE_PORT", 6379, minimum=1, maximum=65535),
            tls=env.boolean("CACHE_TLS", True),
            auth_token=env.secret("CACHE_AUTH_TOKEN", required=False),
            ttl_seconds=env.integer("CACHE_TTL_SECONDS", 300, minimum=1, maximum=86_400),
            timeout_seconds=env.number("CACHE_TIMEOUT_SECONDS", 0.5, minimum=0.05, maximum=30),
        )

    def describe(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = "token" if self.auth_token else "none"
        return f"{scheme}://{self.host}:{self.port} (auth={auth})"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    cache: CacheSettings
    port: int = 8080
    host: str = "0.0.0.0"  # noqa: S104 - a container must listen on all interfaces
    log_level: str = "INFO"
    health_timeout_seconds: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings._read(env),
            cache=CacheSettings._read(env),
            port=env.integer("PORT", 8080, minimum=1, maximum=65535),
            host=env.optional("HOST", "0.0.0.0"),  # noqa: S104
            log_level=env.choice(
                "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True
            ),
            health_timeout_seconds=env.number(
                "HEALTH_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30
            ),
        )
        env.check()
        return settings
