"""Flag operations against the delivery tests' real moto server (AppConfig profiles, hosted
versions, the ledger's DynamoDB table); the deployment calls moto lacks go through the seam."""

from __future__ import annotations

from tests.delivery.conftest import _session_clients, aws_env, clients, moto_server  # noqa: F401
