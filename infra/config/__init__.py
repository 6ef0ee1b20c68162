"""The one typed schema for a stack file.

Every key a stack file may say is a field of a model here, one module per section. Defaults are the
production-safe choice; a stack opts out explicitly (dev says `multi_az: false`, prod never has to say
`multi_az: true`). Unknown keys are errors so that a typo never falls back silently to a default.
"""

from infra.config.analytics import AnalyticsConfig
from infra.config.auth import AuthConfig, CognitoConfig
from infra.config.base import (
    BUILD_CACHE_TAG,
    ENVIRONMENTS,
    FARGATE_SIZES,
    LOG_RETENTION_DAYS,
    MAX_AZS,
    PROJECT,
    Strict,
)
from infra.config.data import CacheConfig, DatabaseConfig
from infra.config.deployment import DeploymentConfig
from infra.config.errors import ConfigError, parse
from infra.config.flags import Flag, FlagsConfig
from infra.config.gateway import GatewayConfig, Route
from infra.config.network import NetworkConfig
from infra.config.operations import DeliveryConfig, MonitoringConfig, UsageConfig
from infra.config.services import HealthCheck, ServiceConfig
from infra.config.stack import CrossFieldError, StackConfig

__all__ = [
    "BUILD_CACHE_TAG", "ENVIRONMENTS", "FARGATE_SIZES", "LOG_RETENTION_DAYS", "MAX_AZS", "PROJECT",
    "AnalyticsConfig", "AuthConfig", "CacheConfig", "CognitoConfig", "ConfigError", "CrossFieldError",
    "DatabaseConfig", "DeliveryConfig", "DeploymentConfig", "Flag", "FlagsConfig", "GatewayConfig",
    "HealthCheck", "MonitoringConfig", "NetworkConfig", "Route", "ServiceConfig", "StackConfig", "Strict",
    "UsageConfig", "parse",
]
