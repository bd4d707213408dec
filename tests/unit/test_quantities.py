"""quantities: the Kubernetes quantity grammar, exact, and in agreement with the client library."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity as kubernetes_parse_quantity

from paless_deploy.core.manifests.quantities import (
    QuantityError,
    cpu_millicores,
    format_bytes,
    memory_bytes,
    parse_quantity,
)

# Small enough that the library's Decimal arithmetic (28 digits) never rounds, so both
# sides must agree exactly.
_digits = st.text("0123456789", min_size=1, max_size=5)
_fraction = st.text("0123456789", max_size=4)
_number = st.one_of(
    _digits,
    st.builds(lambda i, f: f"{i}.{f}", _digits, _fraction),  # "5." is valid
    st.builds(lambda f: f".{f}", st.text("0123456789", min_size=1, max_size=4)),
)
_suffix = st.one_of(
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
                     "n", "u", "m", "k", "M", "G", "T", "P", "E"]),
    st.builds(lambda e, sign: f"{e}{sign}", st.sampled_from("eE"),
              st.sampled_from(["", "+", "-"])).flatmap(
        lambda head: st.integers(0, 30).map(lambda n: f"{head}{n}")),
)
valid_quantities = st.builds(lambda sign, number, suffix: f"{sign}{number}{suffix}",
                             st.sampled_from(["", "+", "-"]), _number, _suffix)


@given(valid_quantities)
def test_agrees_with_the_kubernetes_client_on_valid_quantities(text: str) -> None:
    assert parse_quantity(text) == kubernetes_parse_quantity(text)


@given(valid_quantities)
def test_helpers_round_up_the_exact_value(text: str) -> None:
    value = parse_quantity(text)
    assume(abs(value) * 1000 < 2**63)  # beyond int64 they saturate (tested below)
    assert cpu_millicores(text) >= value * 1000 > cpu_millicores(text) - 1
    assert memory_bytes(text) >= value > memory_bytes(text) - 1


@pytest.mark.parametrize(("text", "expected"), [
    ("1e9", Decimal(10**9)),
    ("1Pi", Decimal(2**50)),
    ("128974848000m", Decimal(128974848)),
    ("0.5", Decimal("0.5")),
    ("1E3", Decimal(1000)),
    ("100k", Decimal(100000)),
    ("2Ei", Decimal(2 * 2**60)),
    ("1E", Decimal(10**18)),  # E alone is exa, not an exponent
    ("5.", Decimal(5)),
    (".5Gi", Decimal(2**29)),
    ("250m", Decimal("0.25")),
    ("123456789012345678901234567890n", Decimal("123456789012345678901.234567890")),  # exact
])
def test_values_the_old_regexes_got_wrong(text: str, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", [
    "", " 1", "1 ", "1K", "1ki", "1mi", "1e", "1e3Mi", "1.2.3", "Mi", "1_000", "NaN",
    "Infinity", "e3", "1ee3", "1Mb", "1e+-3", "1e99999999999999999999",
])
def test_malformed_quantities_raise_and_helpers_say_zero(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)
    assert (cpu_millicores(text), memory_bytes(text)) == (0, 0)


def test_numbers_from_yaml_and_missing_values() -> None:
    assert (cpu_millicores(2), cpu_millicores(0.25), cpu_millicores(None)) == (2000, 250, 0)
    assert memory_bytes(1024) == 1024
    with pytest.raises(QuantityError):
        parse_quantity(True)  # a bool is an int to Python, not a quantity


def test_helpers_round_up_and_stay_within_int64() -> None:
    assert cpu_millicores("0.0001") == 1  # as Kubernetes' MilliValue
    assert memory_bytes("0.5") == 1
    assert memory_bytes("1e100") == 2**63 - 1


def test_format_bytes() -> None:
    assert [format_bytes(v) for v in (16 * 2**30, 256 * 2**20, 3 * 2**10, 1_500_000, 12)] == [
        "16Gi", "256Mi", "3Ki", "1Mi", "12"]
