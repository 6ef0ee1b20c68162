"""IAM auth tokens, signed offline by botocore with fixed test credentials (no network, no fake).

The tokens are parsed back and checked for what RDS and ElastiCache verify: the host it is
for, the action and user, the SigV4 service/region scope, and the 15-minute expiry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest

from products.config import ConfigError, Settings
from products.credentials import (
    TOKEN_LIFETIME_SECONDS,
    TOKEN_REFRESH_MARGIN_SECONDS,
    CredentialError,
    ElastiCacheIamToken,
    PasswordFile,
    RdsIamToken,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> botocore.session.Session:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return botocore.session.get_session()


def _parse(token: str) -> tuple[str, dict[str, str]]:
    assert "://" not in token  # a token is the presigned URL without its scheme
    parts = urlsplit(f"https://{token}")
    query = {key: values[0] for key, values in parse_qs(parts.query, strict_parsing=True).items()}
    return parts.netloc, query


def _assert_signed(query: dict[str, str], service: str, region: str) -> None:
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    key, date, cred_region, cred_service, terminator = query["X-Amz-Credential"].split("/")
    assert (key, cred_region, cred_service, terminator) == (
        ACCESS_KEY,
        region,
        service,
        "aws4_request",
    )
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert date == signed_at.strftime("%Y%m%d")
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert query["X-Amz-Expires"] == str(TOKEN_LIFETIME_SECONDS)
    assert len(query["X-Amz-Signature"]) == 64


def test_rds_token_is_a_presigned_connect_for_the_host_port_and_user(session) -> None:
    token = RdsIamToken(
        "db.abc.eu-west-1.rds.amazonaws.com", 5432, "app_rw", "eu-west-1", session
    )()
    host, query = _parse(token)
    assert host == "db.abc.eu-west-1.rds.amazonaws.com:5432"
    assert query["Action"] == "connect" and query["DBUser"] == "app_rw"
    _assert_signed(query, "rds-db", "eu-west-1")


def test_elasticache_token_is_a_presigned_connect_for_the_group_and_user(session) -> None:
    token = ElastiCacheIamToken("prod-cache", "app-user", "eu-west-1", session)()
    host, query = _parse(token)
    assert host == "prod-cache"  # the replication group id, not the endpoint
    assert query["Action"] == "connect" and query["User"] == "app-user"
    _assert_signed(query, "elasticache", "eu-west-1")


def test_elasticache_token_is_reused_then_resigned_before_it_expires(session) -> None:
    now = [1_000_000.0]
    provider = ElastiCacheIamToken(
        "prod-cache", "app-user", "eu-west-1", session, clock=lambda: now[0]
    )
    first = provider()
    issued = provider.issued_at
    now[0] += TOKEN_LIFETIME_SECONDS - TOKEN_REFRESH_MARGIN_SECONDS - 1
    assert provider() is first and provider.issued_at == issued  # still fresh: no re-signing
    now[0] += 2  # inside the refresh margin, still before the 15 minutes are up
    provider()
    assert provider.issued_at == now[0]


def test_signing_without_aws_credentials_is_a_clear_error(monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialError, match="no AWS credentials"):
        ElastiCacheIamToken("c", "u", "eu-west-1", botocore.session.get_session())()


def test_password_file_is_reread_and_problems_are_named(tmp_path) -> None:
    path = tmp_path / "secret"
    path.write_text("first\n")
    provider = PasswordFile(path)
    assert provider() == "first"
    path.write_text("second")
    assert provider() == "second"
    path.write_text("")
    with pytest.raises(CredentialError, match="is empty"):
        provider()
    path.unlink()
    with pytest.raises(CredentialError, match="cannot read password file"):
        provider()
    assert "second" not in repr(provider)


IAM_ENV = {
    "DATABASE_HOST": "db.internal",
    "DATABASE_NAME": "products",
    "DATABASE_USER": "app_rw",
    "DATABASE_AUTH": "iam",
    "DATABASE_SSLMODE": "require",
    "CACHE_HOST": "cache.internal",
    "CACHE_AUTH": "iam",
    "CACHE_USER": "app-user",
    "CACHE_NAME": "prod-cache",
    "AWS_REGION": "eu-west-1",
}


def test_the_environment_infra_sets_is_understood(session) -> None:
    settings = Settings.from_env(IAM_ENV)
    assert (settings.database.auth, settings.database.region) == ("iam", "eu-west-1")
    assert settings.database.password is None
    assert isinstance(settings.database.credential(), RdsIamToken)
    assert "password" not in settings.database.conninfo()
    cache_token = settings.cache.credential()
    assert isinstance(cache_token, ElastiCacheIamToken)
    assert (cache_token.cache_name, cache_token.user) == ("prod-cache", "app-user")
    assert settings.cache.describe() == "rediss://app-user@cache.internal:6379 (auth=iam)"
    assert "auth=iam" in settings.database.describe()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AWS_REGION": ""}, "DATABASE_AUTH=iam needs AWS_REGION"),
        ({"DATABASE_SSLMODE": "disable"}, "DATABASE_AUTH=iam needs DATABASE_SSLMODE"),
        ({"CACHE_TLS": "false"}, "CACHE_AUTH=iam needs CACHE_TLS=true"),
        ({"CACHE_NAME": ""}, "CACHE_NAME"),
        ({"CACHE_USER": ""}, "CACHE_USER"),
        ({"DATABASE_AUTH": "kerberos"}, "DATABASE_AUTH must be one of password, iam"),
        ({"CACHE_AUTH": "password"}, "CACHE_AUTH_TOKEN (or CACHE_AUTH_TOKEN_FILE)"),
    ],
)
def test_incomplete_iam_configuration_is_refused_by_name(change, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(IAM_ENV | change)


def test_password_mode_takes_a_password_or_a_file(tmp_path) -> None:
    base = {key: value for key, value in IAM_ENV.items() if not key.startswith("CACHE_AUTH")}
    base |= {"DATABASE_AUTH": "password", "CACHE_AUTH": "none"}
    with pytest.raises(ConfigError, match=r"DATABASE_PASSWORD \(or DATABASE_PASSWORD_FILE\)"):
        Settings.from_env(base)
    secret = tmp_path / "pw"
    secret.write_text("from-file")
    settings = Settings.from_env(base | {"DATABASE_PASSWORD_FILE": str(secret)})
    assert settings.database.credential()() == "from-file"
    assert settings.cache.credential() is None
