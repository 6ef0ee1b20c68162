"""The token issuer: a Cognito user pool for machine-to-machine tokens, or the stack's own IdP.

Built when a route has `auth: jwt` (infra/config/auth.py). The pool has no users: one app client
gets access tokens with the client_credentials grant at the domain's /oauth2/token, carrying the
resource servers' custom scopes the routes require. So MFA is off (it applies to user sign-in
only) and so are advanced security features (they score user sign-ins).

The client secret never appears in an output: it goes to a Secrets Manager secret under the stack
key, readable with IAM by whoever is granted it; the stack exports only the secret's ARN.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.auth import AuthConfig, CognitoConfig
from infra.tags import with_name

TOKEN_PATH = "/oauth2/token"
JWKS_PATH = "/.well-known/jwks.json"


def issuer_url(region: str, pool_id: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("https://cognito-idp.", region, ".amazonaws.com/", pool_id)


@dataclass
class AuthArgs:
    config: AuthConfig
    cognito: CognitoConfig | None  # the pool to build (infra.config.auth.cognito_of); None: own issuer
    scopes: list[str]  # every scope a route requires
    name_prefix: str
    region: str
    kms_key_arn: pulumi.Input[str]
    protect: bool  # prod: deletion protection on the pool, and the secret kept on delete
    tags: dict[str, str]


class Auth(pulumi.ComponentResource):
    issuer: pulumi.Output[str]
    jwks_url: pulumi.Output[str]
    audience: pulumi.Output[str] | None
    token_endpoint: pulumi.Output[str] | None
    client_id: pulumi.Output[str] | None
    client_secret_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: AuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:auth:Auth", name, None, opts)
        cfg = args.config
        if args.cognito is None:
            assert cfg.issuer and cfg.jwks_url  # the schema guarantees both
            self.issuer = pulumi.Output.from_input(cfg.issuer)
            self.jwks_url = pulumi.Output.from_input(cfg.jwks_url)
            self.audience = pulumi.Output.from_input(cfg.audience) if cfg.audience else None
            self.token_endpoint = self.client_id = self.client_secret_arn = None
        else:
            self._cognito(name, args, args.cognito)
        self.register_outputs({"issuer": self.issuer, "jwks_url": self.jwks_url})

    def _cognito(self, name: str, args: AuthArgs, cognito: CognitoConfig) -> None:
        prefix = args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        pool = aws.cognito.UserPool(
            f"{name}-pool",
            name=f"{prefix}-m2m",
            deletion_protection="ACTIVE" if args.protect else "INACTIVE",
            mfa_configuration="OFF",  # no users sign in: machine-to-machine clients only
            # Lite: M2M tokens are billed per client and request whatever the tier; nothing here needs more.
            user_pool_tier="LITE",
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(allow_admin_create_user_only=True),
            tags=with_name(args.tags, f"{prefix}-m2m"),
            # A new pool is a new issuer: every client id, secret and token would change with it.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        # Cognito domain prefixes are unique per region across all accounts: the account id makes it ours.
        domain_prefix = (pulumi.Output.from_input(cognito.domain_prefix) if cognito.domain_prefix
                         else account.apply(lambda a: f"{prefix}-{a}"))
        domain = aws.cognito.UserPoolDomain(
            f"{name}-domain", domain=domain_prefix, user_pool_id=pool.id, opts=child)

        by_server: dict[str, list[str]] = defaultdict(list)
        for scope in args.scopes:
            identifier, _, scope_name = scope.partition("/")
            by_server[identifier].append(scope_name)
        servers = [
            aws.cognito.ResourceServer(
                f"{name}-server-{identifier}",
                identifier=identifier,
                name=f"{prefix}-{identifier}",
                user_pool_id=pool.id,
                scopes=[aws.cognito.ResourceServerScopeArgs(scope_name=s, scope_description=f"{identifier}: {s}")
                        for s in names],
                opts=child,
            )
            for identifier, names in sorted(by_server.items())
        ]
        client = aws.cognito.UserPoolClient(
            f"{name}-client",
            name=f"{prefix}-m2m",
            user_pool_id=pool.id,
            generate_secret=True,
            allowed_oauth_flows=["client_credentials"],
            allowed_oauth_flows_user_pool_client=True,
            allowed_oauth_scopes=args.scopes,
            supported_identity_providers=["COGNITO"],
            # No user sign-in flows (Cognito's default would allow SRP and custom auth): tokens come from
            # /oauth2/token only; refresh is the one flow Cognito keeps on every client.
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
            access_token_validity=cognito.access_token_minutes,
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(access_token="minutes"),
            enable_token_revocation=True,
            prevent_user_existence_errors="ENABLED",
            # The scopes must exist before a client may be allowed them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=servers),
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-client-secret",
            name_prefix=f"{prefix}/auth/m2m-client-",
            description=f"{prefix}: the M2M app client's id and secret (client_credentials at the token endpoint)",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=30 if args.protect else 0,
            tags=with_name(args.tags, f"{prefix}-m2m-client"),
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-client-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(pulumi.Output.json_dumps(  # type: ignore[arg-type]
                {"client_id": client.id, "client_secret": client.client_secret})),
            opts=child,
        )
        self.issuer = issuer_url(args.region, pool.id)
        self.jwks_url = pulumi.Output.concat(self.issuer, JWKS_PATH)
        # Cognito access tokens carry no aud: the service checks client_id against this.
        self.audience = client.id
        self.client_id = client.id
        self.token_endpoint = pulumi.Output.concat(
            "https://", domain.domain, ".auth.", args.region, ".amazoncognito.com", TOKEN_PATH)
        self.client_secret_arn = secret.arn
