"""API models: what a client may send and what the API returns.

``price`` is a decimal with at most 2 decimal places. It is accepted as a JSON
number or a numeric string and always returned as a string with exactly two
decimals ("19.90") so that no client ever sees a binary floating-point value.
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

NAME_MAX_LENGTH = 200
PRICE_MAX_DIGITS = 12  # NUMERIC(12, 2) in the database
CENT = Decimal("0.01")


def _normalize_price(value: Decimal) -> Decimal:
    # "+ 0" turns -0 into 0; quantize gives every price exactly two decimals.
    return (value + 0).quantize(CENT)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


def _format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


Name = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH),
]
Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=PRICE_MAX_DIGITS, decimal_places=2, allow_inf_nan=False),
    AfterValidator(_normalize_price),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]
Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(_format_timestamp, return_type=str, when_used="json"),
]


class ProductCreate(BaseModel):
    """Body of ``POST /products``. Unknown fields (including ``id``/``createdAt``) are rejected."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(examples=["Coffee mug"])
    price: Price = Field(examples=["12.50"])


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
