"""Configuration read from the environment variables the platform injects.

Secrets (DATABASE_PASSWORD, CACHE_AUTH_TOKEN) are excluded from repr() so that
logging a settings object can never leak them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from psycopg.conninfo import make_conninfo

from products.credentials import ElastiCacheIamToken, PasswordFile, RdsIamToken, StaticPassword
from products.events import EmitterSettings
from products.flags import FlagSettings

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
DATABASE_AUTH_MODES = ("password", "iam")
CACHE_AUTH_MODES = ("none", "password", "iam")
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


def _region(env: _Env, needed_by: str) -> str:
    region = env.optional("AWS_REGION", env.optional("AWS_DEFAULT_REGION", ""))
    if not region:
        env.invalid.append(f"{needed_by}=iam needs AWS_REGION (ECS sets it on Fargate)")
    return region


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    name: str
    user: str
    password: str | None = field(default=None, repr=False)
    port: int = 5432
    # "password": DATABASE_PASSWORD (fixed at start) or DATABASE_PASSWORD_FILE (re-read per
    # new connection); "iam": an RDS IAM token per new connection (needs TLS).
    auth: str = "password"
    password_file: str | None = None
    region: str = ""
    sslmode: str = "require"
    sslrootcert: str | None = None
    connect_timeout: int = 5
    statement_timeout_ms: int = 5000
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 5.0
    # Migrations only: the application's login role to create and grant (C2).
    app_user: str | None = None

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
        auth = env.choice("DATABASE_AUTH", "password", DATABASE_AUTH_MODES)
        sslmode = env.choice("DATABASE_SSLMODE", "require", SSLMODES)
        password = password_file = None
        region = ""
        if auth == "password":
            password = env.secret("DATABASE_PASSWORD", required=False)
            password_file = env.optional("DATABASE_PASSWORD_FILE", "") or None
            if password is None and password_file is None:
                env.missing.append("DATABASE_PASSWORD (or DATABASE_PASSWORD_FILE)")
        else:
            region = _region(env, "DATABASE_AUTH")
            if sslmode not in TLS_SSLMODES:
                env.invalid.append(
                    "DATABASE_AUTH=iam needs DATABASE_SSLMODE " + "/".join(TLS_SSLMODES)
                )
        return cls(
            host=env.required("DATABASE_HOST"),
            port=env.integer("DATABASE_PORT", 5432, minimum=1, maximum=65535),
            name=env.required("DATABASE_NAME"),
            user=env.required("DATABASE_USER"),
            password=password,
            auth=auth,
            password_file=password_file,
            region=region,
            sslmode=sslmode,
            sslrootcert=env.optional("DATABASE_SSLROOTCERT", "") or None,
            connect_timeout=env.integer("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=300),
            statement_timeout_ms=env.integer(
                "DATABASE_STATEMENT_TIMEOUT_MS", 5000, minimum=100, maximum=3_600_000
            ),
            pool_min_size=pool_min,
            pool_max_size=pool_max,
            pool_timeout=env.number("DATABASE_POOL_TIMEOUT_SECONDS", 5.0, minimum=0.1, maximum=60),
            app_user=env.optional("DATABASE_APP_USER", "") or None,
        )

    def credential(self) -> Callable[[], str | None]:
        """Returns the password (or IAM token) to log in with; called for each new connection."""
        if self.auth == "iam":
            return RdsIamToken(self.host, self.port, self.user, self.region)
        if self.password_file:
            return PasswordFile(self.password_file)
        return StaticPassword(self.password) if self.password else (lambda: None)

    def conninfo(self, *, application_name: str = "products", app_session: bool = True) -> str:
        """libpq connection string without the credential (see ``credential()``).

        ``app_session`` adds the request-serving session options (statement timeout).
        Keepalives and ``tcp_user_timeout`` let the client notice a peer that vanished
        (a failover, a network partition) instead of waiting on a dead socket.
        """
        options = "-c TimeZone=UTC"
        if app_session:
            options += f" -c statement_timeout={self.statement_timeout_ms}"
        extra = {"sslrootcert": self.sslrootcert} if self.sslrootcert else {}
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=self.name,
            user=self.user,
            sslmode=self.sslmode,
            connect_timeout=str(self.connect_timeout),
            application_name=application_name,
            options=options,
            keepalives="1",
            keepalives_idle="30",
            keepalives_interval="10",
            keepalives_count="3",
            tcp_user_timeout="15000",
            **extra,
        )

    def describe(self) -> str:
        """Where we connect, for logs: never includes the password."""
        return (
            f"{self.user}@{self.host}:{self.port}/{self.name} "
            f"(auth={self.auth}, sslmode={self.sslmode})"
        )


@dataclass(frozen=True)
class CacheSettings:
    host: str
    port: int = 6379
    tls: bool = True
    auth_token: str | None = field(default=None, repr=False)
    # "none"; "password": CACHE_AUTH_TOKEN or CACHE_AUTH_TOKEN_FILE (re-read per new
    # connection), with CACHE_USER for an ACL user; "iam": ElastiCache IAM token for CACHE_USER.
    auth: str = ""
    user: str | None = None
    auth_token_file: str | None = None
    name: str = ""  # replication group id, signed into the IAM token
    region: str = ""
    ttl_seconds: int = 300
    timeout_seconds: float = 0.5
    # Circuit breaker: after a failure, skip the cache for this long, then probe it again.
    breaker_reset_seconds: float = 2.0

    @property
    def auth_mode(self) -> str:
        if self.auth:
            return self.auth
        return "password" if (self.auth_token or self.auth_token_file) else "none"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CacheSettings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls._read(env)
        env.check()
        return settings

    @classmethod
    def _read(cls, env: _Env) -> CacheSettings:
        token = env.secret("CACHE_AUTH_TOKEN", required=False)
        token_file = env.optional("CACHE_AUTH_TOKEN_FILE", "") or None
        default = "password" if (token or token_file) else "none"
        auth = env.choice("CACHE_AUTH", default, CACHE_AUTH_MODES)
        tls = env.boolean("CACHE_TLS", True)
        user = env.optional("CACHE_USER", "") or None
        name = region = ""
        if auth == "password" and not (token or token_file):
            env.missing.append("CACHE_AUTH_TOKEN (or CACHE_AUTH_TOKEN_FILE)")
        if auth == "iam":
            name = env.required("CACHE_NAME")
            region = _region(env, "CACHE_AUTH")
            if user is None:
                env.missing.append("CACHE_USER")
            if not tls:
                env.invalid.append("CACHE_AUTH=iam needs CACHE_TLS=true")
        return cls(
            host=env.required("CACHE_HOST"),
            port=env.integer("CACHE_PORT", 6379, minimum=1, maximum=65535),
            tls=tls,
            auth_token=token if auth == "password" else None,
            auth=auth,
            user=user,
            auth_token_file=token_file if auth == "password" else None,
            name=name,
            region=region,
            ttl_seconds=env.integer("CACHE_TTL_SECONDS", 300, minimum=1, maximum=86_400),
            timeout_seconds=env.number("CACHE_TIMEOUT_SECONDS", 0.5, minimum=0.05, maximum=30),
            breaker_reset_seconds=env.number(
                "CACHE_BREAKER_RESET_SECONDS", 2.0, minimum=0.1, maximum=300
            ),
        )

    def credential(self) -> Callable[[], str] | None:
        """Returns the AUTH password (or IAM token) for each new connection; None: no AUTH."""
        mode = self.auth_mode
        if mode == "iam":
            return ElastiCacheIamToken(self.name, self.user or "", self.region)
        if mode == "password":
            if self.auth_token_file:
                return PasswordFile(self.auth_token_file)
            return StaticPassword(self.auth_token or "")
        return None

    def describe(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.user}@" if self.user else ""
        return f"{scheme}://{user}{self.host}:{self.port} (auth={self.auth_mode})"


_LOOPBACK_URL = re.compile(r"^http://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:/\S*)?$")
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d+)?(?:/\S*)?$")


@dataclass(frozen=True)
class AuthSettings:
    """Bearer tokens on write operations (products.auth); absent when AUTH_ISSUER is not set."""

    issuer: str
    jwks_url: str
    audience: str | None = None  # `aud`, or a Cognito access token's `client_id`
    write_scopes: tuple[str, ...] = ()
    jwks_timeout_seconds: float = 2.0
    jwks_cache_seconds: int = 300

    @classmethod
    def _read(cls, env: _Env) -> AuthSettings | None:
        issuer = env.optional("AUTH_ISSUER", "")
        if not issuer:
            return None
        jwks_url = env.required("AUTH_JWKS_URL")
        for name, url in (("AUTH_ISSUER", issuer), ("AUTH_JWKS_URL", jwks_url)):
            # Keys come over TLS; plain HTTP only on this machine (tests, local rehearsals).
            if url and not (_HTTPS_URL.match(url) or _LOOPBACK_URL.match(url)):
                env.invalid.append(f"{name} must be an https:// URL (http:// only for localhost)")
        return cls(
            issuer=issuer,
            jwks_url=jwks_url,
            audience=env.optional("AUTH_AUDIENCE", "") or None,
            write_scopes=tuple(env.optional("AUTH_WRITE_SCOPES", "").split()),
            jwks_timeout_seconds=env.number(
                "AUTH_JWKS_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30
            ),
            jwks_cache_seconds=env.integer(
                "AUTH_JWKS_CACHE_SECONDS", 300, minimum=1, maximum=86_400
            ),
        )
def _analytics(env: _Env) -> EmitterSettings:
    stream = env.optional("ANALYTICS_STREAM", "") or None
    region = env.optional("AWS_REGION", env.optional("AWS_DEFAULT_REGION", ""))
    if stream and not region:
        env.invalid.append("ANALYTICS_STREAM needs AWS_REGION (ECS sets it on Fargate)")
    declared = env.optional("ANALYTICS_EVENTS", "")
    return EmitterSettings(
        stream=stream,
        region=region,
        events=frozenset(n.strip() for n in declared.split(",") if n.strip()) if declared else None,
        queue_size=env.integer("ANALYTICS_QUEUE_SIZE", 10_000, minimum=1, maximum=1_000_000),
        flush_seconds=env.number("ANALYTICS_FLUSH_SECONDS", 1.0, minimum=0.05, maximum=60),
    )


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    cache: CacheSettings
    auth: AuthSettings | None = None  # None: writes are public (dev)
    # Product events (products.events): no ANALYTICS_STREAM, a no-op sink that still counts.
    analytics: EmitterSettings = field(default_factory=EmitterSettings)
    port: int = 8080
    host: str = "0.0.0.0"  # noqa: S104 - a container must listen on all interfaces
    log_level: str = "INFO"
    health_timeout_seconds: float = 2.0
    flags: FlagSettings = field(default_factory=FlagSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls(
            database=DatabaseSettings._read(env),
            cache=CacheSettings._read(env),
            auth=AuthSettings._read(env),
            analytics=_analytics(env),
            port=env.integer("PORT", 8080, minimum=1, maximum=65535),
            host=env.optional("HOST", "0.0.0.0"),  # noqa: S104
            log_level=env.choice(
                "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True
            ),
            health_timeout_seconds=env.number(
                "HEALTH_TIMEOUT_SECONDS", 2.0, minimum=0.1, maximum=30
            ),
            flags=FlagSettings.read(env),
        )
        env.check()
        return settings
