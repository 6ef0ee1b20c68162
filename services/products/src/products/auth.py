"""Bearer tokens on write operations: RS256 JWTs from the stack's issuer (``AUTH_ISSUER``).

Reads stay public. A write needs a token signed by a key of the issuer's JWKS (fetched with a
bounded timeout and cached), RS256 only, from the issuer, unexpired (a small leeway for clock
skew), for this service (``aud``, or a Cognito access token's ``client_id``) and carrying every
scope of ``AUTH_WRITE_SCOPES`` in its space-separated ``scope`` claim. No token or a bad one: 401
with ``WWW-Authenticate: Bearer`` (RFC 6750); a good one without the scopes: 403. When the keys
cannot be fetched the write gets 503: a token is never accepted unverified.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from products.config import AuthSettings
from products.errors import error_body

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]  # what the ALB's jwt-validation action and Cognito sign with
LEEWAY_SECONDS = 30  # clock skew accepted on exp, nbf and iat
REALM = "products"
# A JWKS refetch for an unknown kid at most this often: forged kids cannot hammer the issuer.
UNKNOWN_KID_COOLDOWN_SECONDS = 30.0
_BEARER = "bearer "


class AuthFailed(Exception):
    """Why a write is refused; rendered by ``install``'s handler in the service's error shape."""

    def __init__(self, status: int, msg: str, type_: str, scope: str = "") -> None:
        super().__init__(msg)
        self.status, self.msg, self.type_, self.scope = status, msg, type_, scope

    def response(self) -> JSONResponse:
        if self.status == 503:
            return JSONResponse(
                status_code=503,
                content=error_body([], self.msg, self.type_),
                headers={"Retry-After": "5"},
            )
        challenge = f'Bearer realm="{REALM}"'
        if self.type_ != "missing_token":  # RFC 6750 3.1: no error code when no token came
            challenge += f', error="{self.type_}"'
        if self.scope:
            challenge += f', scope="{self.scope}"'
        return JSONResponse(
            status_code=self.status,
            content=error_body(["header", "Authorization"], self.msg, self.type_),
            headers={"WWW-Authenticate": challenge},
        )


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys = jwt.PyJWKClient(
            settings.jwks_url,
            cache_jwk_set=True,
            lifespan=settings.jwks_cache_seconds,
            timeout=settings.jwks_timeout_seconds,
            cooldown_duration=UNKNOWN_KID_COOLDOWN_SECONDS,
        )
        # Cognito access tokens say what they are; an ID token is not a credential for an API.
        self._cognito = settings.issuer.startswith("https://cognito-idp.")

    async def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims, or AuthFailed saying why not."""
        if not authorization:
            raise AuthFailed(401, "a bearer token is required for writes", "missing_token")
        if authorization[: len(_BEARER)].lower() != _BEARER:
            raise AuthFailed(
                401, "the Authorization header is not a bearer token", "invalid_request"
            )
        token = authorization[len(_BEARER) :].strip()
        # urllib blocks: the JWKS fetch (at most once per cache lifespan) runs off the event loop.
        claims = await asyncio.to_thread(self._decode, token)
        self._check_claims(claims)
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning(
                "token keys unavailable from %s (%s)", self._settings.jwks_url, type(exc).__name__
            )
            raise AuthFailed(503, "token keys unavailable", "auth_unavailable") from None
        except (jwt.PyJWKClientError, jwt.PyJWKError, jwt.InvalidTokenError):
            # Unknown kid, no kid, or not a JWT at all.
            raise AuthFailed(
                401, "no key of the issuer signed this token", "invalid_token"
            ) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self._settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailed(401, "the token has expired", "invalid_token") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailed(401, "the token is not valid yet", "invalid_token") from None
        except jwt.InvalidIssuerError:
            raise AuthFailed(401, "the token is from another issuer", "invalid_token") from None
        except jwt.InvalidTokenError as exc:
            log.info("bearer token refused (%s)", type(exc).__name__)
            raise AuthFailed(401, "invalid bearer token", "invalid_token") from None
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        token_use = claims.get("token_use")
        if (self._cognito or token_use is not None) and token_use != "access":  # noqa: S105
            raise AuthFailed(401, "not an access token", "invalid_token")
        audience = self._settings.audience
        if audience:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else list(aud or [])
            # Cognito access tokens carry no aud: the app client they were issued to is client_id.
            ok = audience in audiences if audiences else claims.get("client_id") == audience
            if not ok:
                raise AuthFailed(401, "the token is for another audience", "invalid_token")
        granted = claims.get("scope")
        granted_set = set(granted.split()) if isinstance(granted, str) else set()
        missing = [s for s in self._settings.write_scopes if s not in granted_set]
        if missing:
            raise AuthFailed(
                403,
                f"the token lacks scope {' '.join(missing)}",
                "insufficient_scope",
                scope=" ".join(self._settings.write_scopes),
            )


def write_guard(settings: AuthSettings | None) -> list[Any]:
    """FastAPI dependencies for write routes: none when the service runs without an issuer."""
    if settings is None:
        return []
    verifier = TokenVerifier(settings)

    async def require_token(request: Request) -> None:
        request.state.token_claims = await verifier.verify(request.headers.get("authorization"))

    return [Depends(require_token)]


def install(app: FastAPI) -> None:
    """Renders AuthFailed (raised by the write guard) in the service's error shape."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthFailed)
        return exc.response()

    app.add_exception_handler(AuthFailed, refused)
