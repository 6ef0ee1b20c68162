"""The published contract: the OpenAPI document, written out so it says exactly what the
server enforces (patterns and bounds from ``products.models``, every status each operation
can answer, the one error shape of ``products.errors``, the response headers)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from products.errors import MAX_BODY_BYTES, MAX_ERRORS
from products.models import NAME_MAX_LENGTH, NAME_PATTERN, PRICE_PATTERN

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_TOO_LARGE = _error(f"Request body larger than {MAX_BODY_BYTES} bytes")
_INVALID = _error(f"Invalid request: every problem, at most {MAX_ERRORS} listed")
_DB_DOWN = _error("Database unavailable (retry later)", _RETRY_AFTER)
_PRODUCT_ID = {
    "name": "product_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}

SCHEMAS: dict[str, Any] = {
    "ProductCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "price"],
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": NAME_MAX_LENGTH,
                "pattern": NAME_PATTERN,
                "description": "No control characters, no whitespace at either end",
                "examples": ["Coffee mug"],
            },
            "price": {
                "type": "string",
                "pattern": PRICE_PATTERN,
                "description": "Decimal 0 to 9999999999.99, at most two decimals",
                "examples": ["12.50"],
            },
        },
    },
    "Product": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "name", "price", "createdAt"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_LENGTH},
            "price": {"type": "string", "pattern": r"^(?:0|[1-9][0-9]{0,9})\.[0-9]{2}$"},
            "createdAt": {"type": "string", "format": "date-time"},
        },
    },
    "Error": {
        "type": "object",
        "additionalProperties": False,
        "required": ["detail"],
        "properties": {
            "detail": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ERRORS,
                "items": _ref("ErrorItem"),
            }
        },
    },
    "ErrorItem": {
        "type": "object",
        "additionalProperties": False,
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
    },
    "Live": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Ready": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "database", "cache"],
        "properties": {
            "status": {"enum": ["ok", "degraded", "error"]},
            "database": {"enum": ["ok", "error"]},
            "cache": {"enum": ["ok", "degraded"]},
        },
    },
}


def _ready(operation_id: str, summary: str) -> dict[str, Any]:
    ready = {
        "description": "Status of each dependency",
        "content": {_JSON: {"schema": _ref("Ready")}},
    }
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "responses": {
                "200": {**ready, "description": "The database answers; the cache may be degraded"},
                "413": _TOO_LARGE,
                "503": {**ready, "description": "The database does not answer"},
            },
        }
    }


PATHS: dict[str, Any] = {
    "/products": {
        "post": {
            "operationId": "createProduct",
            "summary": "Create a product",
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("ProductCreate")}},
            },
            "responses": {
                "201": {
                    "description": "Created",
                    "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
                    "content": {_JSON: {"schema": _ref("Product")}},
                    "links": {
                        "GetProduct": {
                            "operationId": "getProduct",
                            "parameters": {"product_id": "$response.body#/id"},
                        }
                    },
                },
                "413": _TOO_LARGE,
                "415": _error("Content-Type is not application/json"),
                "422": _INVALID,
                "503": _DB_DOWN,
            },
        },
        "get": {
            "operationId": "listProducts",
            "summary": "The newest products, newest first",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                }
            ],
            "responses": {
                "200": {
                    "description": "Products",
                    "content": {_JSON: {"schema": {"type": "array", "items": _ref("Product")}}},
                },
                "413": _TOO_LARGE,
                "422": _INVALID,
                "503": _DB_DOWN,
            },
        },
    },
    "/products/{product_id}": {
        "get": {
            "operationId": "getProduct",
            "summary": "One product (cache-aside)",
            "parameters": [_PRODUCT_ID],
            "responses": {
                "200": {
                    "description": "The product",
                    "headers": {"X-Cache": {"required": True, "schema": {"enum": ["hit", "miss"]}}},
                    "content": {_JSON: {"schema": _ref("Product")}},
                },
                "404": _error("No product with this id"),
                "413": _TOO_LARGE,
                "422": _INVALID,
                "503": _DB_DOWN,
            },
        },
    },
    "/health/live": {
        "get": {
            "operationId": "live",
            "summary": "Liveness: the process serves (never touches the database or the cache)",
            "responses": {
                "200": {"description": "Serving", "content": {_JSON: {"schema": _ref("Live")}}},
                "413": _TOO_LARGE,
            },
        }
    },
    "/health/ready": _ready("ready", "Readiness: the database answers"),
    "/health": _ready("health", "Alias of /health/ready"),
}


_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "The bearer challenge (RFC 6750), with error and scope where they apply",
        "required": True,
        "schema": {"type": "string", "pattern": "^Bearer "},
    }
}
BEARER = "bearerJWT"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An RS256 access token from the stack's issuer with the write scopes",
    }
}
# Answers every write operation gains when the service checks tokens (products.auth).
WRITE_AUTH_RESPONSES: dict[str, Any] = {
    "401": _error("No bearer token, or one that is invalid or expired", _CHALLENGE),
    "403": _error("The token lacks a required scope", _CHALLENGE),
}
_KEYS_DOWN = "the issuer's keys unavailable"
WRITES = ("post", "put", "patch", "delete")


def _secured(paths: dict[str, Any]) -> dict[str, Any]:
    """The paths with every write operation requiring the bearer token."""
    out: dict[str, Any] = {}
    for path, operations in paths.items():
        out[path] = {}
        for method, operation in operations.items():
            if method in WRITES:
                responses = {**operation["responses"], **WRITE_AUTH_RESPONSES}
                down = responses.get("503", _DB_DOWN)
                described = f"{down['description']}, or {_KEYS_DOWN}"
                responses["503"] = {**down, "description": described}
                operation = {**operation, "security": [{BEARER: []}], "responses": responses}
            out[path][method] = operation
    return out


def build_openapi(app: FastAPI, *, secured: bool = False) -> dict[str, Any]:
    """The document; `secured`: the service checks bearer tokens on writes (AUTH_ISSUER set)."""
    if app.openapi_schema is None:
        components: dict[str, Any] = {"schemas": SCHEMAS}
        if secured:
            components["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = {
            "openapi": "3.1.0",
            "info": {
                "title": app.title,
                "version": app.version,
                "description": "Every error answer has the `Error` shape. Every path also "
                "answers HEAD (as GET, without a body) and OPTIONS (204 with "
                "`Allow`); other methods get 405 with `Allow`.",
            },
            "paths": _secured(PATHS) if secured else PATHS,
            "components": components,
        }
    return app.openapi_schema
