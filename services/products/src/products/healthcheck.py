"""Container HEALTHCHECK probe: ``python -m products.healthcheck`` (slim images have no curl).

Exits 0 when ``GET http://127.0.0.1:$PORT/health/live`` answers 200, 1 otherwise. Liveness
only: a database or cache outage must not make the orchestrator restart a task that serves.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health/live"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - fixed local URL
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
