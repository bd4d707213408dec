"""Kubernetes resource quantities ("250m", "1.5Gi", "1e9"): parsed exactly, one definition.

The grammar is apimachinery's `resource.Quantity`; values are `decimal.Decimal`, so
`128974848000m`, `1Pi` and `2Ei` come out exact. The core writes its own parser because it
must not import the `kubernetes` package (a property test checks it agrees with
`kubernetes.utils.parse_quantity` on every valid quantity).
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

# <quantity> ::= <signedNumber><suffix>, the suffix one of three kinds.
_QUANTITY = re.compile(
    r"""
    (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))
    (?:
        (?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)          # binarySI: powers of 1024
      | (?P<decimal>[numkMGTPE])               # decimalSI: powers of 1000
      | [eE](?P<exponent>[+-]?[0-9]+)          # decimalExponent: powers of 10
    )?
    """,
    re.VERBOSE,
)
BINARY_SI: dict[str, int] = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
DECIMAL_SI: dict[str, int] = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12,
                              "P": 15, "E": 18}
# What manifests and API objects give: a string, or a number when YAML read one.
QuantityValue = str | float | Decimal
_INT64_LIMIT = 2**63
# Wide enough that no quantity the API server accepts is ever rounded.
_EXACT = decimal.Context(prec=80, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: QuantityValue) -> Decimal:
    """The exact value of a quantity ("500m" -> 0.5, "1Ki" -> 1024, "1E3" -> 1000).

    Numbers (as YAML may give them) are taken as they print. Raises QuantityError for
    anything else: empty, unknown suffix ("1ki", "1K"), exponent and suffix together,
    white space.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise QuantityError(f"{value!r} is not a quantity")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(f"{text!r} is not a quantity")
    number = Decimal(match["number"])
    try:
        if match["binary"]:
            return _EXACT.multiply(number, Decimal(1024 ** BINARY_SI[match["binary"]]))
        if match["decimal"]:
            return number.scaleb(DECIMAL_SI[match["decimal"]], _EXACT)
        if match["exponent"]:
            return number.scaleb(int(match["exponent"]), _EXACT)
    except decimal.DecimalException:
        raise QuantityError(f"{text!r} is out of range") from None
    return number


def _whole(value: QuantityValue | None, scale: int) -> int:
    """`value` times 10**scale, rounded up (as Kubernetes' Value and MilliValue do) and held
    within int64 as they are; 0 when missing or malformed (an unreadable request asks for
    nothing, as before)."""
    try:
        scaled = parse_quantity(value if value is not None else 0).scaleb(scale, _EXACT)
    except QuantityError:
        return 0
    if scaled.copy_abs() >= _INT64_LIMIT:
        return _INT64_LIMIT - 1 if scaled > 0 else -_INT64_LIMIT
    return int(scaled.to_integral_value(rounding=decimal.ROUND_CEILING))


def cpu_millicores(value: QuantityValue | None) -> int:
    """A CPU quantity in millicores: "250m" -> 250, "0.5" -> 500, "1e-4" -> 1 (rounded up)."""
    return _whole(value, 3)


def memory_bytes(value: QuantityValue | None) -> int:
    """A memory quantity in bytes: "512Mi", "1G", "1e9", "128974848000m" -> 128974848."""
    return _whole(value, 0)


def format_bytes(value: int) -> str:
    """Bytes the way a manifest would say them: "16Gi", "256Mi"; else rounded to Mi."""
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value / 2**20:.0f}Mi" if value >= 2**20 else str(value)
