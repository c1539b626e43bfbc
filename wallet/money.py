"""Exact conversion between decimal strings at the edge and integer minor units inside."""

import re

from wallet.errors import InvalidRequest

UINT256_MAX = 2**256 - 1

_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


class InvalidAmount(InvalidRequest):
    problem = "invalid-amount"
    title = "The amount is not valid"


class TooManyDecimals(InvalidAmount):
    problem = "too-many-decimals"
    title = "The amount has more decimals than the asset allows"


class AmountNotPositive(InvalidAmount):
    problem = "amount-not-positive"
    title = "The amount must be greater than zero"


class AmountTooLarge(InvalidAmount):
    problem = "amount-too-large"
    title = "The amount does not fit in 256 bits"


def parse_amount(text: str, decimals: int) -> int:
    """Turn a positive decimal string like "12.50" into minor units; never rounds."""
    if text.startswith("-"):
        raise AmountNotPositive(f"{text!r} is negative")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmount(f"{text!r} is not a plain decimal number like '12.50'")
    whole, fraction = match["whole"], match["fraction"] or ""
    significant = fraction.rstrip("0")
    if len(significant) > decimals:
        raise TooManyDecimals(
            f"{text!r} has {len(significant)} decimals; this asset allows {decimals}"
        )
    units = int(whole) * 10**decimals + int(significant.ljust(decimals, "0") or "0")
    return check_units(units)


def check_units(units: int) -> int:
    """Check that an amount in minor units is positive and fits in uint256."""
    if units <= 0:
        raise AmountNotPositive("the amount must be greater than zero")
    if units > UINT256_MAX:
        raise AmountTooLarge("the amount is larger than any this service can hold")
    return units


def format_amount(units: int, decimals: int) -> str:
    """Render minor units as a decimal string with exactly `decimals` places."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    if decimals == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{decimals}d}"
