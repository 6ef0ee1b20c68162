"""Run the API server: ``python -m products`` (the container's CMD)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from products import logs
from products.app import create_app
from products.config import ConfigError, Settings


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"products: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    logging.getLogger("products").info(
        "starting on %s:%d; database %s; cache %s",
        settings.host,
        settings.port,
        settings.database.describe(),
        settings.cache.describe(),
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging configured above
        proxy_headers=True,  # trust X-Forwarded-* from the ALB
        forwarded_allow_ips="*",  # only the ALB can reach the task (security group)
        # Longer than the ALB idle timeout (60 s) so the ALB, not the app,
        # closes idle keep-alive connections (avoids sporadic 502s).
        timeout_keep_alive=65,
        # ECS sends SIGTERM and waits stopTimeout (30 s by default) before SIGKILL.
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
