"""Credentials asked for on every new connection, so a rotation never needs a restart.

* ``RdsIamToken``: an RDS IAM authentication token (a SigV4-presigned ``connect`` URL for
  ``rds-db``), generated locally by botocore for each new PostgreSQL connection. A token is
  valid 15 minutes but only checked at login, so an open connection outlives it.
* ``ElastiCacheIamToken``: the ElastiCache IAM token (a SigV4-presigned ``connect`` request
  for service ``elasticache``, valid 15 minutes), cached and re-signed before it expires.
* ``PasswordFile``: a password read from a file on each new connection (a mounted, rotated
  secret; the tests rotate a role's password this way while the service runs).
* ``StaticPassword``: a password fixed at start (``DATABASE_PASSWORD`` injected by ECS).

Signing is local (no network); only resolving the task role's credentials may call the
container credentials endpoint, and botocore caches those until shortly before they expire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKEN_LIFETIME_SECONDS = 900  # what AWS allows for both RDS and ElastiCache IAM tokens
# Re-sign this long before expiry: a connection may take a while to reach AUTH.
TOKEN_REFRESH_MARGIN_SECONDS = 180


class CredentialError(Exception):
    """A credential could not be produced (no AWS credentials, unreadable secret file)."""


class StaticPassword:
    def __init__(self, password: str) -> None:
        self._password = password

    def __call__(self) -> str:
        return self._password

    def __repr__(self) -> str:
        return "StaticPassword(***)"


class PasswordFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __call__(self) -> str:
        try:
            value = self.path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise CredentialError(f"cannot read password file {self.path}: {exc.strerror}") from exc
        if not value:
            raise CredentialError(f"password file {self.path} is empty")
        return value

    def __repr__(self) -> str:
        return f"PasswordFile({str(self.path)!r})"


def _botocore_session() -> Any:
    # Imported lazily: only IAM mode needs botocore, and its import costs ~0.2 s.
    import botocore.session

    return botocore.session.get_session()


class RdsIamToken:
    """``rds.generate_db_auth_token`` for one host, port and user; a fresh token per call."""

    def __init__(
        self, host: str, port: int, user: str, region: str, session: Any | None = None
    ) -> None:
        self.host, self.port, self.user, self.region = host, port, user, region
        self._session = session
        self._client: Any = None
        self._lock = threading.Lock()

    def _rds(self) -> Any:
        with self._lock:
            if self._client is None:
                session = self._session or _botocore_session()
                self._client = session.create_client("rds", region_name=self.region)
            return self._client

    def __call__(self) -> str:
        from botocore.exceptions import BotoCoreError

        try:
            return str(
                self._rds().generate_db_auth_token(
                    DBHostname=self.host, Port=self.port, DBUsername=self.user, Region=self.region
                )
            )
        except BotoCoreError as exc:
            raise CredentialError(f"cannot sign an RDS IAM token: {type(exc).__name__}") from exc

    def __repr__(self) -> str:
        return f"RdsIamToken({self.user}@{self.host}:{self.port}, {self.region})"


class ElastiCacheIamToken:
    """The IAM auth token of ``user`` for replication group ``cache_name``, refreshed early."""

    def __init__(
        self,
        cache_name: str,
        user: str,
        region: str,
        session: Any | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache_name, self.user, self.region = cache_name, user, region
        self._session = session
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self.issued_at: float | None = None

    def _sign(self) -> str:
        from botocore.auth import SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        try:
            credentials = (self._session or _botocore_session()).get_credentials()
            if credentials is None:
                raise CredentialError("no AWS credentials to sign the ElastiCache IAM token")
            request = AWSRequest(
                method="GET",
                url=f"http://{self.cache_name}/",
                params={"Action": "connect", "User": self.user},
            )
            SigV4QueryAuth(
                credentials.get_frozen_credentials(),
                "elasticache",
                self.region,
                expires=TOKEN_LIFETIME_SECONDS,
            ).add_auth(request)
        except BotoCoreError as exc:
            raise CredentialError(
                f"cannot sign an ElastiCache IAM token: {type(exc).__name__}"
            ) from exc
        return str(request.url).removeprefix("http://")

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            fresh_until = (self.issued_at or 0) + TOKEN_LIFETIME_SECONDS
            if self._token is None or now >= fresh_until - TOKEN_REFRESH_MARGIN_SECONDS:
                self._token, self.issued_at = self._sign(), now
            return self._token

    def __repr__(self) -> str:
        return f"ElastiCacheIamToken({self.user}@{self.cache_name}, {self.region})"
