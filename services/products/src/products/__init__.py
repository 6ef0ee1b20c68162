"""Sample Product API."""

__version__ = "0.1.0"
