"""API models: what a client may send and what the API returns.

The schema published in OpenAPI is exactly what the server enforces:

* ``name``: 1-200 characters, no control characters (C0, DEL, C1: NUL included), no
  surrogates, no whitespace at either end (refused, not trimmed, so the length the
  schema states is the length stored).
* ``price``: a decimal string, 0 to 9999999999.99, at most two decimals, no sign, exponent
  or leading zeros (``"12.50"``, ``"7"``, ``"0.5"``). Always returned with exactly two
  decimals so that no client ever parses money as a binary float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

NAME_MAX_LENGTH = 200
PRICE_MAX_DIGITS = 12  # NUMERIC(12, 2) in the database
CENT = Decimal("0.01")
_FORBIDDEN = r"\u0000-\u001f\u007f-\u009f"  # C0, DEL, C1 (NUL, tab, newline, ESC, ...)
# Spelled out rather than "\s", whose meaning differs between Python and ECMA-262 regexes.
_SPACE = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# First and last character: neither space nor forbidden; in between: not forbidden.
NAME_PATTERN = rf"^[^{_SPACE}{_FORBIDDEN}](?:[^{_FORBIDDEN}]*[^{_SPACE}{_FORBIDDEN}])?$"
PRICE_PATTERN = r"^(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?$"
# What a pattern mismatch means, in words (the 422 says this instead of the regex).
PATTERN_MESSAGES = {
    "name": "must not contain control characters nor start or end with whitespace",
    "price": 'must be a decimal string such as "12.50": 0 to 9999999999.99, at most two decimals',
}


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


def _format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _no_trailing_newline(value: str) -> str:
    # Python's "$" also matches before a final newline; ECMA-262 (JSON Schema's dialect)
    # does not. A name ending in "\n" is refused, as the published pattern says. Unpaired
    # surrogates (JSON "\ud800") are not text at all; no portable pattern can name them.
    if value.endswith("\n") or any("\ud800" <= char <= "\udfff" for char in value):
        raise PydanticCustomError("string_pattern_mismatch", "String should match pattern")
    return value


def _price_from_text(value: str) -> Decimal:
    return Decimal(value).quantize(CENT)


Name = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN),
    AfterValidator(_no_trailing_newline),
]
PriceText = Annotated[
    str,
    StringConstraints(strict=True, pattern=PRICE_PATTERN),
    AfterValidator(_no_trailing_newline),
]
Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=PRICE_MAX_DIGITS, decimal_places=2, allow_inf_nan=False),
    AfterValidator(lambda v: (v + 0).quantize(CENT)),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(_format_timestamp, return_type=str, when_used="json"),
]


class ProductCreate(BaseModel):
    """Body of ``POST /products``. Unknown fields (including ``id``/``createdAt``) are rejected."""

    # python-re: the server checks the very pattern the schema publishes (surrogate ranges
    # included, which the default Rust engine cannot express).
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    name: Name = Field(examples=["Coffee mug"])
    price: PriceText = Field(examples=["12.50"])

    @property
    def price_value(self) -> Decimal:
        return _price_from_text(self.price)


class Product(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    id: UUID
    name: str
    price: Price
    created_at: Timestamp = Field(alias="createdAt")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> Product:
        return cls.model_validate_json(data)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Product:
        return cls.model_validate(
            {
                "id": row["id"],
                "name": row["name"],
                "price": row["price"],
                "createdAt": row["created_at"],
            }
        )
