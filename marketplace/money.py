"""Amounts are integer minor units plus an ISO currency; these turn them into text and back."""

from decimal import Decimal, InvalidOperation

from marketplace.errors import ValidationError

MINOR_DIGITS = {"usd": 2, "eur": 2, "gbp": 2, "chf": 2, "cad": 2, "aud": 2, "sek": 2, "jpy": 0}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
MAX_MAJOR_DIGITS = 15
"""``parse_major`` refuses amounts of 10**15 major units (a quadrillion) or more."""


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS[currency.lower()]


def format_money(amount: int, currency: str) -> str:
    """``format_money(123456, "usd") == "$1,234.56"``; unknown symbols fall back to the code."""
    currency = currency.lower()
    digits = minor_digits(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    text = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def parse_major(text: str, currency: str) -> int:
    """``parse_major("1,000.50", "usd") == 100050``: exact decimal parsing, never a float."""
    currency = (currency or "").lower()
    if currency not in MINOR_DIGITS:
        raise ValidationError("Unknown currency.", code="invalid_currency")
    try:
        value = Decimal(str(text).replace(",", "").replace("_", "").strip())
    except InvalidOperation:
        raise ValidationError("Write the amount as a number, like 1500 or 1500.00.", code="invalid_amount") from None
    # NaN, sNaN and infinities parse but are no amount; scaling sNaN (or a huge exponent) would
    # raise instead of giving a clean error.
    if not value.is_finite():
        raise ValidationError("Write the amount as a number, like 1500 or 1500.00.", code="invalid_amount")
    if value.adjusted() >= MAX_MAJOR_DIGITS:
        raise ValidationError("That amount is too large.", code="invalid_amount")
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"{currency.upper()} amounts have at most {minor_digits(currency)} decimal places.",
            code="invalid_amount",
        )
    return int(scaled)


def major_text(amount: int, currency: str) -> str:
    """The amount as a plain decimal for a form field: ``major_text(150050, "usd") == "1500.50"``."""
    digits = minor_digits(currency)
    return str(Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))
