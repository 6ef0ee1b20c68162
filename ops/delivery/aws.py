"""boto3 clients for the delivery pipeline, and the translation of AWS failures into one-line errors.

Endpoints come from boto3's own configuration (`AWS_ENDPOINT_URL`, profiles, env credentials):
the tests point it at a moto server that way, so there is no second mechanism to keep in sync.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, TypeVar

from ops.errors import OpsError

T = TypeVar("T")

# Adaptive retries absorb API throttling during long polls (waiters, alarm bake) without
# hiding real failures; short connect timeouts make an unreachable endpoint fail in seconds.
_RETRIES = {"mode": "standard", "max_attempts": 5}
_CONNECT_TIMEOUT = 5
_READ_TIMEOUT = 30


class Clients:
    """One boto3 session per region; each client created on first use (most tasks need two or three)."""

    def __init__(self, region: str):
        self.region = region

    @cached_property
    def session(self) -> Any:
        import boto3

        return boto3.session.Session(region_name=self.region)

    def client(self, service: str, region: str | None = None) -> Any:
        """A client for `service`; `region` only for the rare cross-region call (an ECR elsewhere)."""
        from botocore.config import Config

        config = Config(retries=_RETRIES, connect_timeout=_CONNECT_TIMEOUT, read_timeout=_READ_TIMEOUT)
        with translate_errors():
            return self.session.client(service, region_name=region or self.region, config=config)

    @cached_property
    def ecs(self) -> Any:
        return self.client("ecs")

    @cached_property
    def elbv2(self) -> Any:
        return self.client("elbv2")

    @cached_property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @cached_property
    def ecr(self) -> Any:
        return self.client("ecr")

    @cached_property
    def ssm(self) -> Any:
        return self.client("ssm")

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def sts(self) -> Any:
        return self.client("sts")

    @cached_property
    def logs(self) -> Any:
        return self.client("logs")

    @cached_property
    def appconfig(self) -> Any:
        return self.client("appconfig")


class AssumedClients(Clients):
    """Clients in another account: a session from `sts:AssumeRole` of `role_arn` (e.g. the source
    environment's promotion role, which can read its ledger and pull its images)."""

    def __init__(self, region: str, role_arn: str, via: Clients):
        super().__init__(region)
        self.role_arn, self.via = role_arn, via

    @cached_property
    def session(self) -> Any:
        import boto3

        with translate_errors(f"assuming {self.role_arn}"):
            creds = self.via.sts.assume_role(RoleArn=self.role_arn,
                                             RoleSessionName="refarch-promote")["Credentials"]
        return boto3.session.Session(region_name=self.region, aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"])


def clients(region: str) -> Clients:
    return Clients(region)


def caller(aws: Clients | None = None) -> str:
    """Who is acting, for the ledger and the lock: the STS identity ARN, else the local user name.

    Never fails: recording "who" must not be the reason a rollback cannot run.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sts = aws.sts if aws is not None else clients(os.environ.get("AWS_REGION") or os.environ.get(
            "AWS_DEFAULT_REGION") or "us-east-1").sts
        return str(sts.get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError, OpsError):
        return os.environ.get("USER") or _login() or "unknown"


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


# Error codes that mean "your credentials", not "this request": one hint fits them all.
CREDENTIAL_CODES = {
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", "RequestExpired",
}


@contextlib.contextmanager
def translate_errors(action: str = "") -> Iterator[None]:
    """Turn botocore failures into OpsError one-liners (credentials, region, endpoint, API refusals).

    Code that expects a specific ClientError (ParameterNotFound...) catches it inside this block;
    whatever escapes is a failure the user has to act on.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        TokenRetrievalError,
    )

    doing = f" ({action})" if action else ""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError, TokenRetrievalError) as exc:
        raise OpsError(
            f"AWS credentials not found{doing}: {exc}. Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            f"or run `aws sso login`"
        ) from None
    except NoRegionError:
        raise OpsError(f"AWS region not set{doing}: set AWS_REGION or the stack's aws:region") from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise OpsError(f"cannot reach AWS{doing}: {exc}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", "")
        operation = getattr(exc, "operation_name", "") or "request"
        if code in CREDENTIAL_CODES:
            raise OpsError(f"AWS credentials rejected{doing}: {code}: {message}. Refresh them and retry") from None
        raise OpsError(f"AWS refused {operation}{doing}: {code}: {message}") from None
    except BotoCoreError as exc:
        raise OpsError(f"AWS call failed{doing}: {exc}") from None


def aws_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` with botocore failures translated to OpsError."""
    with translate_errors():
        return fn(*args, **kwargs)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
