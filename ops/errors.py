"""The one exception type a task turns into a clean one-line (or listed) error and exit code."""

from __future__ import annotations


class OpsError(Exception):
    """A refusal or failure the user can act on; `code` is the process exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code
