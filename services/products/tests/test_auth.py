"""Bearer tokens on writes: a real JWKS over HTTP, tokens signed here, the app answering 401-503.

Reads stay public; every refusal has the service's error shape and a ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from products.app import create_app
from products.auth import LEEWAY_SECONDS, AuthFailed, TokenVerifier
from products.config import AuthSettings, ConfigError, Settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

PRODUCT = {"name": "Token mug", "price": "3.50"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refusal(issuer: Any, authorization: str | None, **settings: Any) -> AuthFailed:
    verifier = TokenVerifier(issuer.settings(**settings))
    with pytest.raises(AuthFailed) as caught:
        asyncio.run(verifier.verify(authorization))
    return caught.value


def accepted(issuer: Any, token: str, **settings: Any) -> dict[str, Any]:
    return asyncio.run(TokenVerifier(issuer.settings(**settings)).verify(f"Bearer {token}"))


# --- the verifier, token by token --------------------------------------------------------------


def test_a_valid_token_is_accepted_and_the_keys_are_fetched_once(issuer) -> None:
    verifier = TokenVerifier(issuer.settings())
    for _ in range(3):
        claims = asyncio.run(verifier.verify(f"Bearer {issuer.token()}"))
        assert claims["client_id"] == issuer.client_id
    assert issuer.fetches == 1  # cached for jwks_cache_seconds


@pytest.mark.parametrize(
    ("claim", "offset", "msg"),
    [
        ("exp", -LEEWAY_SECONDS - 5, "the token has expired"),
        ("nbf", LEEWAY_SECONDS + 60, "the token is not valid yet"),
        ("iat", LEEWAY_SECONDS + 60, "the token is not valid yet"),
    ],
)
def test_times_outside_the_leeway_are_refused_with_401(issuer, claim, offset, msg) -> None:
    token = issuer.token(**{claim: int(time.time()) + offset})  # now: at run time, not collection
    failed = refusal(issuer, f"Bearer {token}")
    assert (failed.status, failed.msg, failed.type_) == (401, msg, "invalid_token")


@pytest.mark.parametrize(
    ("overrides", "msg"),
    [
        ({"iss": "https://idp.example.com/other"}, "the token is from another issuer"),
        ({"exp": None}, "invalid bearer token"),  # exp is required
        ({"client_id": "someone-else"}, "the token is for another audience"),
        ({"token_use": "id"}, "not an access token"),
    ],
)
def test_bad_claims_are_refused_with_401(issuer, overrides, msg) -> None:
    failed = refusal(issuer, f"Bearer {issuer.token(**overrides)}")
    assert (failed.status, failed.msg, failed.type_) == (401, msg, "invalid_token")


def test_clock_skew_inside_the_leeway_is_accepted(issuer) -> None:
    assert accepted(issuer, issuer.token(exp=int(time.time()) - LEEWAY_SECONDS + 10))


def test_aud_is_checked_when_the_token_has_one(issuer) -> None:
    assert accepted(issuer, issuer.token(aud=["test-client", "other"], client_id=None))
    failed = refusal(issuer, f"Bearer {issuer.token(aud='other-api', client_id=None)}")
    assert failed.msg == "the token is for another audience"
    # Without a configured audience, an aud claim is not held against the token.
    assert accepted(issuer, issuer.token(aud="other-api"), audience=None)


def test_hs256_signed_with_the_public_key_is_refused(issuer) -> None:
    # The classic algorithm confusion: HMAC keyed with the public key everyone can fetch.
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = _b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    failed = refusal(issuer, f"Bearer {header}.{payload}.{_b64(signature)}")
    assert (failed.status, failed.msg) == (401, "invalid bearer token")


def test_an_unsigned_token_is_refused(issuer) -> None:
    header = _b64(json.dumps({"alg": "none", "kid": issuer.kid}).encode())
    payload = _b64(json.dumps(issuer.claims()).encode())
    assert refusal(issuer, f"Bearer {header}.{payload}.").status == 401


def test_a_tampered_payload_is_refused(issuer) -> None:
    header, _, signature = issuer.token(scope="products/read").split(".")
    forged = _b64(json.dumps(issuer.claims(scope="products/write")).encode())
    failed = refusal(issuer, f"Bearer {header}.{forged}.{signature}")
    assert (failed.status, failed.msg) == (401, "invalid bearer token")


def test_an_unknown_kid_or_a_foreign_key_is_refused(issuer) -> None:
    failed = refusal(issuer, f"Bearer {issuer.token(kid='not-a-key')}")
    assert (failed.status, failed.msg) == (401, "no key of the issuer signed this token")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refusal(issuer, f"Bearer {issuer.token(key=stranger)}").msg == "invalid bearer token"


@pytest.mark.parametrize(
    ("authorization", "type_"),
    [
        (None, "missing_token"),
        ("Basic dXNlcjpwdw==", "invalid_request"),
        ("Bearer junk", "invalid_token"),
    ],
)
def test_no_token_or_not_a_bearer_token_is_401(issuer, authorization, type_) -> None:
    failed = refusal(issuer, authorization)
    assert (failed.status, failed.type_) == (401, type_)


def test_a_valid_token_without_the_scope_is_403(issuer) -> None:
    failed = refusal(issuer, f"Bearer {issuer.token(scope='products/read')}")
    assert (failed.status, failed.type_) == (403, "insufficient_scope")
    assert failed.msg == "the token lacks scope products/write"
    # Scopes are space-separated: one of several granted is enough.
    assert accepted(issuer, issuer.token(scope="openid products/write"))


def test_unreachable_keys_are_503_never_an_accepted_token(issuer) -> None:
    issuer.available = False
    failed = refusal(issuer, f"Bearer {issuer.token()}")
    assert (failed.status, failed.type_) == (503, "auth_unavailable")


def test_the_key_fetch_is_bounded_by_its_timeout(issuer, unused_port) -> None:
    import socket

    # A listener that accepts and never answers: the fetch must give up after the timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", unused_port))
        silent.listen()
        url = f"http://127.0.0.1:{unused_port}/.well-known/jwks.json"
        started = time.monotonic()
        failed = refusal(issuer, f"Bearer {issuer.token()}", jwks_url=url, jwks_timeout_seconds=0.3)
        assert failed.status == 503 and time.monotonic() - started < 3


def test_settings_come_from_the_environment() -> None:
    env = {
        "DATABASE_HOST": "db",
        "DATABASE_NAME": "p",
        "DATABASE_USER": "u",
        "DATABASE_PASSWORD": "pw",
        "CACHE_HOST": "cache",
        "CACHE_TLS": "false",
    }
    assert Settings.from_env(env).auth is None
    auth = Settings.from_env(
        env
        | {
            "AUTH_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc",
            "AUTH_JWKS_URL": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/jwks.json",
            "AUTH_AUDIENCE": "client123",
            "AUTH_WRITE_SCOPES": "products/write products/admin",
        }
    ).auth
    assert auth is not None and auth.write_scopes == ("products/write", "products/admin")
    assert auth.audience == "client123"
    with pytest.raises(ConfigError, match="missing environment variables: AUTH_JWKS_URL"):
        Settings.from_env(env | {"AUTH_ISSUER": "https://idp.example.com/"})
    with pytest.raises(
        ConfigError, match=r"AUTH_JWKS_URL must be an https:// URL \(http:// only for localhost\)"
    ):
        Settings.from_env(
            env
            | {
                "AUTH_ISSUER": "https://idp.example.com/",
                "AUTH_JWKS_URL": "http://idp.example.com/k",
            }
        )


# --- the app: writes guarded, reads public -----------------------------------------------------


@pytest.fixture
def secured(settings: Settings, issuer) -> Any:
    with TestClient(create_app(dataclasses.replace(settings, auth=issuer.settings()))) as client:
        yield client


def test_post_without_a_token_is_401_in_the_error_shape(secured) -> None:
    response = secured.post("/products", json=PRODUCT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="products"'
    assert response.json() == {
        "detail": [
            {
                "loc": ["header", "Authorization"],
                "msg": "a bearer token is required for writes",
                "type": "missing_token",
            }
        ]
    }


def test_post_with_an_expired_token_says_invalid_token(secured, issuer) -> None:
    token = issuer.token(exp=int(time.time()) - 600)
    response = secured.post("/products", json=PRODUCT, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="products", error="invalid_token"'
    assert token not in response.text  # never echoed


def test_post_without_the_scope_is_403(secured, issuer) -> None:
    token = issuer.token(scope="products/read")
    response = secured.post("/products", json=PRODUCT, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="products", error="insufficient_scope", scope="products/write"'
    )
    assert response.json()["detail"][0]["type"] == "insufficient_scope"


def test_post_with_a_valid_token_creates_and_reads_stay_public(secured, issuer) -> None:
    response = secured.post(
        "/products", json=PRODUCT, headers={"Authorization": f"Bearer {issuer.token()}"}
    )
    assert response.status_code == 201, response.text
    product_id = response.json()["id"]
    assert secured.get(f"/products/{product_id}").status_code == 200
    assert secured.get("/products").status_code == 200


def test_jwks_down_makes_writes_503_and_leaves_reads_alone(secured, issuer) -> None:
    issuer.available = False
    response = secured.post(
        "/products", json=PRODUCT, headers={"Authorization": f"Bearer {issuer.token()}"}
    )
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["detail"][0]["type"] == "auth_unavailable"
    assert secured.get("/products").status_code == 200


def test_the_openapi_document_declares_bearer_auth_on_writes_only(secured, client) -> None:
    doc = secured.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearerJWT"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An RS256 access token from the stack's issuer with the write scopes",
    }
    post = doc["paths"]["/products"]["post"]
    assert post["security"] == [{"bearerJWT": []}] and {"401", "403", "503"} <= set(
        post["responses"]
    )
    assert "security" not in doc["paths"]["/products"]["get"]
    assert "security" not in doc["paths"]["/products/{product_id}"]["get"]
    # Without an issuer the service checks nothing, and its document claims nothing.
    plain = client.get("/openapi.json").json()
    assert "securitySchemes" not in plain["components"]
    assert "security" not in plain["paths"]["/products"]["post"]


def test_settings_repr_and_errors_never_carry_a_token(issuer) -> None:
    token = issuer.token(scope="products/read")
    failed = refusal(issuer, f"Bearer {token}")
    assert token not in str(failed) and token not in json.dumps(failed.response().body.decode())
    assert isinstance(issuer.settings(), AuthSettings)
